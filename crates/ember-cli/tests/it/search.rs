//! `ember search` and `ember ensemble` as a user runs them.

use assert_cmd::Command;
use std::path::PathBuf;

fn mnist() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data/mnist-subset")
}

fn ember() -> Command {
    let mut c = Command::cargo_bin("ember").unwrap();
    c.env("EMBER_OFFLINE", "1");
    c
}

fn stdout(c: &mut Command) -> String {
    let a = c.assert().success();
    String::from_utf8_lossy(&a.get_output().stdout).to_string()
}

#[test]
fn search_resume_and_ensemble() {
    let dir = tempfile::tempdir().unwrap();
    let space = dir.path().join("space.toml");
    std::fs::write(
        &space,
        format!(
            "[base]\nmodel = \"lenet5_modern\"\ndataset = \"mnist\"\ndata_dir = \"{}\"\n\
             val_split = 0.1\ntrain_limit = 800\nepochs = 2\nbatch_size = 32\noptimizer = \"adam\"\n\
             workers = 1\ndiagnostics = false\n\n\
             [space.lr]\ntype = \"float\"\nlow = 0.0005\nhigh = 0.005\nlog = true\n",
            mnist().display()
        ),
    )
    .unwrap();
    let out = dir.path().join("search");
    let search = |trials: &str| {
        let mut c = ember();
        c.args([
            "search",
            "--space",
            space.to_str().unwrap(),
            "--strategy",
            "random",
        ])
        .args([
            "--trials",
            trials,
            "--seed",
            "3",
            "--out",
            out.to_str().unwrap(),
        ]);
        c
    };
    let said = stdout(&mut search("2"));
    assert!(
        said.contains("rank") && said.contains("val_accuracy"),
        "{said}"
    );
    // Run again with a larger budget: the two trials are kept, one more runs.
    let said = stdout(&mut search("3"));
    assert!(
        said.contains("resuming the search") && said.contains("2 trials finished"),
        "{said}"
    );
    let csv = std::fs::read_to_string(out.join("results.csv")).unwrap();
    assert_eq!(csv.lines().count(), 4, "header and three trials:\n{csv}");
    assert!(out.join("best.toml").is_file() && out.join("search.png").is_file());

    // The ensemble of two trials on the test split.
    let runs: Vec<String> = (0..2)
        .map(|i| out.join(format!("trial-00{i}")).display().to_string())
        .collect();
    let said = stdout(ember().args(["ensemble", "--runs"]).args(&runs).args([
        "--data-dir",
        mnist().to_str().unwrap(),
        "--json",
    ]));
    let json: serde_json::Value = serde_json::from_str(said.trim()).unwrap();
    assert_eq!(json["n"], 1000);
    assert_eq!(json["members"].as_array().unwrap().len(), 2);
    let acc = json["ensemble"].as_f64().unwrap();
    assert!(acc > 0.5 && acc <= 1.0, "{json}");

    // A bad space file is an error that names the knob.
    std::fs::write(
        &space,
        "[base]\nmodel = \"lenet5_modern\"\n[space.lr]\ntype = \"float\"\nlow = 1\nhigh = 0.1\n",
    )
    .unwrap();
    let a = search("2").assert().failure();
    let err = String::from_utf8_lossy(&a.get_output().stderr).to_string();
    assert!(err.contains("space.lr") && err.contains("below"), "{err}");
}
