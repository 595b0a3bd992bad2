//! `ember train`, `ember eval` and `ember predict` as a user runs them.

use assert_cmd::Command;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn mnist() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data/mnist-subset")
}

fn ember() -> Command {
    let mut c = Command::cargo_bin("ember").unwrap();
    c.env("EMBER_OFFLINE", "1");
    c
}

fn train_args(out: &Path, epochs: usize) -> Vec<String> {
    [
        "train",
        "--model",
        "lenet5_modern",
        "--dataset",
        "mnist",
        "--data-dir",
        mnist().to_str().unwrap(),
        "--train-limit",
        "1536",
        "--epochs",
        &epochs.to_string(),
        "--batch-size",
        "32",
        "--optimizer",
        "adam",
        "--lr",
        "0.002",
        "--schedule",
        "cosine",
        "--workers",
        "1",
        "--out",
        out.to_str().unwrap(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// The run's `report.json`, and `ember eval --json` of the run on the shipped MNIST subset.
fn report_and_eval(out: &Path) -> (serde_json::Value, serde_json::Value) {
    let report =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    let assert = ember()
        .args([
            "eval",
            "--run",
            out.to_str().unwrap(),
            "--data-dir",
            mnist().to_str().unwrap(),
            "--json",
        ])
        .assert()
        .success();
    (
        report,
        serde_json::from_slice(&assert.get_output().stdout).unwrap(),
    )
}

#[test]
fn train_then_eval_then_predict() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let assert = ember().args(train_args(&out, 2)).assert().success();
    let stdout = String::from_utf8_lossy(&assert.get_output().stdout).to_string();
    assert!(
        stdout.contains("epoch 2/2 done"),
        "one summary line per epoch:\n{stdout}"
    );
    assert!(
        !stdout.contains("ProgressSnapshot"),
        "no debug structs:\n{stdout}"
    );
    assert!(stdout.contains("test accuracy"), "{stdout}");

    // eval --json agrees with the report written at the end of training.
    let (report, json) = report_and_eval(&out);
    assert_eq!(json["n"], 1000);
    let acc = json["accuracy"].as_f64().unwrap();
    assert!(
        (acc - report["accuracy"].as_f64().unwrap()).abs() < 1e-9,
        "{json} vs report"
    );
    assert!(acc > 0.6, "{acc}");
    assert!(json["top5"].as_f64().unwrap() >= acc);
    assert_eq!(json["weights"], "best");

    // The error analysis: each class's recall is its accuracy, the support-weighted recall
    // the accuracy, and the top losses are the highest, with p = exp(-loss).
    let per_class = report["per_class"].as_array().unwrap();
    let scores = report["class_scores"].as_object().unwrap();
    assert_eq!(scores.len(), 10);
    for (c, acc_c) in per_class.iter().enumerate() {
        let recall = scores[&c.to_string()]["recall"].as_f64().unwrap();
        assert!(
            (recall - acc_c.as_f64().unwrap()).abs() < 1e-12,
            "class {c}"
        );
        let f1 = scores[&c.to_string()]["f1"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&f1));
    }
    let weighted = report["weighted_avg"]["recall"].as_f64().unwrap();
    assert!((weighted - acc).abs() < 1e-9, "{weighted} vs {acc}");
    let top = report["top_losses"].as_array().unwrap();
    assert_eq!(top.len(), 16);
    let losses: Vec<f64> = top.iter().map(|t| t["loss"].as_f64().unwrap()).collect();
    assert!(losses.windows(2).all(|w| w[0] >= w[1]), "{losses:?}");
    assert!(
        losses[15] > report["loss"].as_f64().unwrap(),
        "above the mean loss"
    );
    for t in top {
        let (loss, p) = (
            t["loss"].as_f64().unwrap(),
            t["probability"].as_f64().unwrap(),
        );
        assert!((p - (-loss).exp()).abs() < 1e-12);
        assert!(t["index"].as_u64().unwrap() < 1000);
    }
    assert!(
        top.iter().filter(|t| t["actual"] != t["predicted"]).count() >= 12,
        "the highest losses are mistakes: {top:?}"
    );
    let text = std::fs::read_to_string(out.join("report.txt")).unwrap();
    assert!(
        text.contains("weighted avg") && text.contains("most confused"),
        "{text}"
    );
    let grid = image::open(out.join("top_losses.png")).unwrap();
    assert!(grid.width() >= 4 * 112 && grid.height() >= 4 * 112);
    // The last epoch's weights on request, and a clear error for a name it does not know.
    let last = ember()
        .args(["eval", "--run", out.to_str().unwrap()])
        .args([
            "--data-dir",
            mnist().to_str().unwrap(),
            "--weights",
            "final",
            "--json",
        ])
        .assert()
        .success();
    let last: serde_json::Value = serde_json::from_slice(&last.get_output().stdout).unwrap();
    assert_eq!(last["weights"], "final");
    assert!(last["accuracy"].as_f64().unwrap() > 0.6, "{last}");
    let bad = ember()
        .args(["eval", "--run", out.to_str().unwrap(), "--weights", "last"])
        .assert()
        .failure();
    let stderr = String::from_utf8_lossy(&bad.get_output().stderr);
    assert!(stderr.contains("`best`, `final`, `ema`"), "{stderr}");
    let no_ema = ember()
        .args(["eval", "--run", out.to_str().unwrap(), "--weights", "ema"])
        .assert()
        .failure();
    let stderr = String::from_utf8_lossy(&no_ema.get_output().stderr);
    assert!(
        stderr.contains("no ema.bpk") && stderr.contains("--ema-decay 0.999)"),
        "{stderr}"
    );

    // predict: a digit the model gets right comes out on top.
    let png = dir.path().join("digit.png");
    let ds = ember_data::mnist::MnistDataset::load(
        &mnist(),
        ember_data::mnist::MnistVariant::Digits,
        ember_data::Split::Test,
    )
    .unwrap();
    use burn::data::dataset::Dataset;
    let item = ds.get(0).unwrap();
    let bytes: Vec<u8> = item
        .image
        .data
        .iter()
        .map(|v| (v * 255.0).round() as u8)
        .collect();
    image::save_buffer(&png, &bytes, 28, 28, image::ColorType::L8).unwrap();
    let assert = ember()
        .args([
            "predict",
            "--run",
            out.to_str().unwrap(),
            "--json",
            png.to_str().unwrap(),
        ])
        .assert()
        .success();
    let line: serde_json::Value = serde_json::from_slice(&assert.get_output().stdout).unwrap();
    let top = line["top"].as_array().unwrap();
    assert_eq!(top.len(), 5);
    let p: Vec<f64> = top
        .iter()
        .map(|t| t["probability"].as_f64().unwrap())
        .collect();
    assert!(p.windows(2).all(|w| w[0] >= w[1]), "sorted: {p:?}");
    assert!(p.iter().sum::<f64>() <= 1.0 + 1e-5);
    assert_eq!(
        top[0]["class"].as_str().unwrap(),
        format!("{}", item.label),
        "digit 7 is the first test image"
    );

    // ember viz: every picture of the run, with the sizes its arithmetic implies.
    let run = out.to_str().unwrap();
    let viz = |args: &[&str]| -> String {
        let a = ember().arg("viz").args(args).assert().success();
        String::from_utf8_lossy(&a.get_output().stdout).to_string()
    };
    let dims = |p: std::path::PathBuf| image::image_dimensions(&p).unwrap();
    let said = viz(&["filters", "--run", run]);
    assert!(said.contains("conv1.conv: 6 filters of 1x5x5"), "{said}");
    // 6 tiles in a 3x2 grid, each 5x5 kernel scaled to at least 64 px, 2 px gaps.
    let (w, h) = dims(out.join("filters-conv1_conv.png"));
    assert_eq!((w, h), (3 * (65 + 2) + 2, 2 * (65 + 2) + 2));
    let said = viz(&[
        "features",
        "--run",
        run,
        "--image",
        png.to_str().unwrap(),
        "--layer",
        "conv2",
    ]);
    assert!(said.contains("16 maps of 10x10"), "{said}");
    assert!(out.join("features-conv2.png").is_file());
    let said = viz(&[
        "patches",
        "--run",
        run,
        "--data-dir",
        mnist().to_str().unwrap(),
        "--layer",
        "conv2",
        "--channels",
        "3",
        "--top",
        "4",
        "--limit",
        "200",
    ]);
    assert!(said.contains("receptive field 14x14 px, jump 2"), "{said}");
    // 3 rows of 4 crops of the 14x14 field, scaled 4x.
    assert_eq!(
        dims(out.join("patches-conv2.png")),
        (4 * 58 + 2, 3 * 58 + 2)
    );
    let curves = dir.path().join("two.png");
    viz(&["curves", run, run, "--out", curves.to_str().unwrap()]);
    assert!(curves.is_file());
    let said = viz(&["gradients", run]);
    assert!(
        said.contains("conv1.conv") && said.contains("fc3"),
        "{said}"
    );
    assert!(out.join("gradients.png").is_file());
    // A layer that does not exist is named with the ones that do.
    let a = ember()
        .args([
            "viz",
            "features",
            "--run",
            run,
            "--image",
            png.to_str().unwrap(),
            "--layer",
            "conv9",
        ])
        .assert()
        .failure();
    let err = String::from_utf8_lossy(&a.get_output().stderr).to_string();
    assert!(
        err.contains("conv9") && err.contains("conv1, pool1, conv2"),
        "{err}"
    );

    // The saved config repeats the run elsewhere.
    let again = dir.path().join("again");
    ember()
        .args([
            "train",
            "--config",
            out.join("config.toml").to_str().unwrap(),
            "--out",
            again.to_str().unwrap(),
        ])
        .assert()
        .success();
    assert!(again.join("metrics.csv").is_file());
}

#[test]
fn a_killed_run_resumes_from_its_last_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("killed");
    let bin = assert_cmd::cargo::cargo_bin("ember");
    let mut child = std::process::Command::new(bin)
        .args(train_args(&out, 6))
        .env("EMBER_OFFLINE", "1")
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    // Burn writes the three files of a checkpoint in no fixed order: wait for all of them.
    let complete = || {
        ["model", "optim", "scheduler"]
            .iter()
            .all(|k| out.join(format!("checkpoint/{k}-1.bpk")).exists())
    };
    while !complete() {
        assert!(
            start.elapsed() < Duration::from_secs(300),
            "no checkpoint after 5 minutes"
        );
        if let Ok(Some(status)) = child.try_wait() {
            panic!("training ended before it could be killed: {status}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!out.join("final.bpk").exists(), "killed before the end");

    let assert = ember()
        .args(["train", "--resume", out.to_str().unwrap()])
        .assert()
        .success();
    let stdout = String::from_utf8_lossy(&assert.get_output().stdout).to_string();
    assert!(stdout.contains("resuming"), "{stdout}");
    let metrics = std::fs::read_to_string(out.join("metrics.csv")).unwrap();
    let epochs: Vec<&str> = metrics
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap())
        .collect();
    assert_eq!(epochs, ["1", "2", "3", "4", "5", "6"], "{metrics}");
    assert!(out.join("final.bpk").is_file());
}

#[test]
fn bad_input_is_a_clear_error_before_training() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("bad");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--model", "resnet19"], "unknown model `resnet19`"),
        (
            vec!["--model", "lenet5_modern", "--dataset", "svhn"],
            "unknown dataset",
        ),
        (vec!["--model", "lenet5_modern", "--lr", "0"], "--lr"),
        (
            vec!["--model", "lenet5_modern", "--batch-size", "0"],
            "--batch-size",
        ),
        (
            vec![
                "--model",
                "lenet5_modern",
                "--val-split",
                "0",
                "--early-stop-patience",
                "3",
            ],
            "validation split",
        ),
        (vec!["--model", "vgg11"], "--resize"),
        (
            vec!["--model", "lenet5_modern", "--optimizer", "adamax"],
            "unknown optimizer",
        ),
        (
            vec!["--model", "lenet5_modern", "--backend", "cuda"],
            "not compiled",
        ),
    ];
    for (extra, needle) in cases {
        let mut args = vec![
            "train",
            "--data-dir",
            mnist().to_str().unwrap().to_owned().leak(),
            "--out",
            out.to_str().unwrap().to_owned().leak(),
        ];
        args.extend(extra.iter().copied());
        if !extra.contains(&"--dataset") {
            args.extend(["--dataset", "mnist"]);
        }
        let assert = ember().args(&args).assert().failure();
        let stderr = String::from_utf8_lossy(&assert.get_output().stderr).to_string();
        assert!(stderr.contains(needle), "{extra:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert!(!out.join("checkpoint").exists());
    }
    // A foreign checkpoint.
    let fake = dir.path().join("fake");
    std::fs::create_dir_all(&fake).unwrap();
    let info = r#"{"model":"lenet5_modern","model_config":{"arch":"lenet"},"input":[1,28,28],"classes":["0","1","2","3","4","5","6","7","8","9"],"eval_transforms":[],"dataset":"mnist"}"#;
    std::fs::write(fake.join("run.json"), info).unwrap();
    std::fs::write(fake.join("best.bpk"), b"not a burnpack file").unwrap();
    let assert = ember()
        .args([
            "eval",
            "--run",
            fake.to_str().unwrap(),
            "--data-dir",
            mnist().to_str().unwrap(),
        ])
        .assert()
        .failure();
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).to_string();
    assert!(
        stderr.contains("best.bpk") && stderr.contains("weights"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    let assert = ember()
        .args([
            "eval",
            "--run",
            dir.path().join("nothing").to_str().unwrap(),
        ])
        .assert()
        .failure();
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).to_string();
    assert!(stderr.contains("run directory"), "{stderr}");
}

#[test]
fn eval_matches_classes_by_name_and_refuses_a_folder_test_split() {
    let dir = tempfile::tempdir().unwrap();
    // A run on digits 5-9 only, in that order: its label 0 is the digit 5.
    let out = dir.path().join("five");
    let mut args = train_args(&out, 1);
    args.extend(["--classes", "5-9"].map(String::from));
    ember().args(&args).assert().success();
    let (report, json) = report_and_eval(&out);
    // The test split's digits 5-9, scored with the run's labels: the same as the training report.
    let test = ember_data::mnist::MnistDataset::load(
        &mnist(),
        ember_data::mnist::MnistVariant::Digits,
        ember_data::Split::Test,
    )
    .unwrap();
    use ember_data::ClassificationDataset;
    let fives = (0..burn::data::dataset::Dataset::len(&test))
        .filter(|&i| test.label(i).unwrap() >= 5)
        .count();
    assert_eq!(json["n"].as_u64().unwrap() as usize, fives);
    let acc = json["accuracy"].as_f64().unwrap();
    assert!(
        (acc - report["accuracy"].as_f64().unwrap()).abs() < 1e-9,
        "{json} vs {report}"
    );
    assert!(acc > 0.5, "labels mapped by name, not by position: {acc}");

    // A run on a folder: `eval` defaults to its held-out images; `--split test` (which would be
    // the whole folder, training images included) is refused with the way out.
    let folder = dir.path().join("folder");
    for (digit, colour) in [("a", 40u8), ("b", 220u8)] {
        std::fs::create_dir_all(folder.join(digit)).unwrap();
        for i in 0..20 {
            image::GrayImage::from_pixel(28, 28, image::Luma([colour.wrapping_add(i)]))
                .save(folder.join(digit).join(format!("{i}.png")))
                .unwrap();
        }
    }
    let run = dir.path().join("folder-run");
    ember()
        .args([
            "train",
            "--model",
            "lenet5_modern",
            "--dataset",
            &format!("folder:{}", folder.display()),
            "--val-split",
            "0.25",
            "--epochs",
            "1",
            "--batch-size",
            "8",
            "--workers",
            "1",
            "--out",
            run.to_str().unwrap(),
        ])
        .assert()
        .success();
    // validation.txt names the 10 held-out images (5 per class, stratified), `class/file`.
    let held_out = std::fs::read_to_string(run.join("validation.txt")).unwrap();
    let names: Vec<&str> = held_out.lines().collect();
    assert_eq!(names.len(), 10, "{held_out}");
    let mut unique = names.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 10, "{held_out}");
    for class in ["a", "b"] {
        let of_class: Vec<_> = names
            .iter()
            .filter(|n| n.starts_with(&format!("{class}/")))
            .collect();
        assert_eq!(of_class.len(), 5, "{held_out}");
        assert!(
            of_class.iter().all(|n| folder.join(n).is_file()),
            "{held_out}"
        );
    }
    let assert = ember()
        .args(["eval", "--run", run.to_str().unwrap(), "--json"])
        .assert()
        .success();
    let json: serde_json::Value = serde_json::from_slice(&assert.get_output().stdout).unwrap();
    assert_eq!(json["n"], 10, "the run's 25% validation split of 40 images");
    // The best epoch was chosen on these images: the report and eval say so.
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).to_string();
    assert!(stderr.contains("--weights final"), "{stderr}");
    let report = std::fs::read_to_string(run.join("report.txt")).unwrap();
    assert!(
        report
            .lines()
            .next()
            .unwrap()
            .contains("chosen on these images"),
        "{report}"
    );
    let assert = ember()
        .args(["eval", "--run", run.to_str().unwrap(), "--split", "test"])
        .assert()
        .failure();
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).to_string();
    assert!(
        stderr.contains("no test split") && stderr.contains("--split val"),
        "{stderr}"
    );
}
