//! `ember finetune` and `ember export` as a user runs them.

use assert_cmd::Command;
use std::path::PathBuf;

fn mnist() -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../data/mnist-subset")
        .display()
        .to_string()
}

fn ember(args: &[&str]) -> assert_cmd::assert::Assert {
    Command::cargo_bin("ember")
        .unwrap()
        .env("EMBER_OFFLINE", "1")
        .args(args)
        .args(
            ["--workers", "1", "--no-diagnostics"]
                .iter()
                .filter(|_| matches!(args[0], "train" | "finetune")),
        )
        .assert()
}

fn text(a: &assert_cmd::assert::Assert) -> String {
    let o = a.get_output();
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn pretrain_finetune_export_and_finetune_from_the_export() {
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n).display().to_string();
    let data = mnist();
    let common = [
        "--dataset",
        "mnist",
        "--data-dir",
        &data,
        "--batch-size",
        "32",
        "--optimizer",
        "adam",
        "--lr",
        "0.002",
    ];
    let src = p("src");
    let mut args = vec![
        "train",
        "--model",
        "lenet5_bn",
        "--classes",
        "0-4",
        "--epochs",
        "1",
        "--train-limit",
        "512",
        "--out",
        &src,
    ];
    args.extend(common);
    ember(&args).success();

    // From the run: the model comes from it; other classes get a new head.
    let tuned = p("tuned");
    let mut args = vec![
        "finetune",
        "--from",
        &src,
        "--classes",
        "5,6,7,8,9",
        "--per-class",
        "20",
        "--epochs",
        "2",
        "--freeze",
        "stages:2",
        "--unfreeze-after",
        "1",
        "--out",
        &tuned,
    ];
    args.extend(common);
    let out = ember(&args).success();
    let t = text(&out);
    assert!(t.contains("new head: fc3.weight, fc3.bias"), "{t}");
    assert!(
        t.contains("epochs 1-1:") && t.contains("epochs 2-2:"),
        "{t}"
    );
    let config = std::fs::read_to_string(dir.path().join("tuned/config.toml")).unwrap();
    assert!(
        config.contains("[finetune]") && config.contains("freeze = \"stages:2\""),
        "{config}"
    );
    assert!(config.contains("model = \"lenet5_bn\""), "{config}");

    // Export to safetensors, then fine-tune from the file.
    let file = p("lenet.safetensors");
    ember(&["export", "--from", &tuned, "--out", &file]).success();
    let again = p("again");
    let mut args = vec![
        "finetune",
        "--from",
        &file,
        "--model",
        "lenet5_bn",
        "--classes",
        "5-9",
        "--per-class",
        "10",
        "--epochs",
        "1",
        "--freeze",
        "all-but-head",
        "--out",
        &again,
    ];
    args.extend(common);
    let t = text(&ember(&args).success());
    // Same classes, a file (not a run): everything loads, the head included.
    assert!(t.contains("tensors loaded"), "{t}");
    assert!(
        !t.contains("missing") && !t.contains("unexpected") && !t.contains("new head"),
        "{t}"
    );
    assert!(t.contains("frozen"), "{t}");

    // The wrong model: every mismatch named, and nothing trained.
    let wrong = p("wrong");
    let mut args = vec![
        "finetune",
        "--from",
        &file,
        "--model",
        "lenet5_modern",
        "--classes",
        "5-9",
        "--epochs",
        "1",
        "--out",
        &wrong,
    ];
    args.extend(common);
    let t = text(&ember(&args).failure());
    assert!(
        t.contains("lenet.safetensors") && t.contains("bn1.gamma"),
        "{t}"
    );
    assert!(t.contains("--allow-partial"), "{t}");
    assert!(!dir.path().join("wrong/checkpoint").exists());

    // A bad --freeze is refused by the parser.
    let t = text(&ember(&["finetune", "--from", &file, "--freeze", "half"]).failure());
    assert!(t.contains("all-but-head"), "{t}");
}
