//! `ember augment` as a user runs it.

use assert_cmd::Command;
use std::path::Path;

fn subset() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../data/mnist-subset")
        .display()
        .to_string()
}

#[test]
fn writes_the_same_png_for_the_same_seed() {
    let dir = tempfile::tempdir().unwrap();
    let run = |seed: &str, out: &str| {
        Command::cargo_bin("ember")
            .unwrap()
            .args([
                "augment",
                "--dataset",
                "mnist",
                "--data-dir",
                &subset(),
                "--augment",
                r#"[{ type = "random_crop", size = [28, 28], padding = 2 },
                    { type = "rand_augment" }, { type = "normalize" }]"#,
                "--seed",
                seed,
                "--rows",
                "4",
                "--out",
            ])
            .arg(dir.path().join(out))
            .assert()
            .success();
        std::fs::read(dir.path().join(out)).unwrap()
    };
    let a = run("1", "a.png");
    assert_eq!(&a[1..4], b"PNG");
    assert_eq!(a, run("1", "b.png"), "same seed, same bytes");
    assert_ne!(a, run("2", "c.png"));
}

#[test]
fn a_bad_pipeline_is_refused_with_its_reason() {
    let out = Command::cargo_bin("ember")
        .unwrap()
        .args(["augment", "--dataset", "mnist", "--data-dir", &subset()])
        .args(["--augment", r#"[{ type = "rand_augment" }]"#])
        .assert()
        .failure();
    let err = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(err.contains("no `normalize`"), "{err}");
    let out = Command::cargo_bin("ember")
        .unwrap()
        .args(["augment", "--dataset", "mnist", "--augment", "autoaugment"])
        .assert()
        .failure();
    let err = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(
        err.contains("unknown augmentation preset `autoaugment`"),
        "{err}"
    );
}

#[test]
fn bad_datasets_fail_clearly() {
    let out = Command::cargo_bin("ember")
        .unwrap()
        .args(["augment", "--dataset", "imagenet"])
        .assert()
        .failure();
    assert!(
        String::from_utf8_lossy(&out.get_output().stderr).contains("unknown dataset `imagenet`")
    );
    let dir = tempfile::tempdir().unwrap();
    let out = Command::cargo_bin("ember")
        .unwrap()
        .env("EMBER_OFFLINE", "1")
        .args(["augment", "--dataset", "cifar100", "--data-dir"])
        .arg(dir.path())
        .assert()
        .failure();
    let err = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(
        err.contains("train.bin") && err.contains("cifar-100-binary.tar.gz"),
        "{err}"
    );
    let out = Command::cargo_bin("ember")
        .unwrap()
        .args(["augment", "--dataset", "folder:/nonexistent/x"])
        .assert()
        .failure();
    assert!(String::from_utf8_lossy(&out.get_output().stderr).contains("/nonexistent/x"));
}
