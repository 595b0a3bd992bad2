//! `ember summary` as a user runs it.

use assert_cmd::Command;
use serde_json::Value;

fn ember() -> Command {
    Command::cargo_bin("ember").expect("the ember binary is built")
}

fn json_summary(args: &[&str]) -> Value {
    let out = ember()
        .arg("summary")
        .args(args)
        .arg("--json")
        .assert()
        .success();
    serde_json::from_slice(&out.get_output().stdout).expect("--json prints one JSON document")
}

#[test]
fn json_has_the_documented_fields_and_canonical_totals() {
    let v = json_summary(&["--model", "resnet18"]);
    assert_eq!(v["total_params"], 11_689_512);
    let macs = v["total_macs"].as_u64().unwrap();
    assert!((1_810_000_000..1_820_000_000).contains(&macs), "{macs}");
    let layers = v["layers"].as_array().unwrap();
    let first = &layers[0];
    for field in ["name", "output_shape", "params", "macs", "receptive_field"] {
        assert!(first.get(field).is_some(), "layer rows have `{field}`");
    }
    assert_eq!(first["name"], "stem.conv");
    assert_eq!(first["output_shape"], serde_json::json!([64, 112, 112]));
    assert_eq!(first["receptive_field"], 7);
    let last = layers.last().unwrap();
    assert_eq!(last["output_shape"], serde_json::json!([1000]));
    let sum: u64 = layers.iter().map(|l| l["params"].as_u64().unwrap()).sum();
    assert_eq!(sum, 11_689_512, "rows add up to the total");

    for (model, params) in [
        ("vgg16", 138_357_544u64),
        ("densenet121", 7_978_856),
        ("googlenet", 6_624_904),
    ] {
        assert_eq!(
            json_summary(&["--model", model])["total_params"],
            params,
            "{model}"
        );
    }
}

#[test]
fn input_and_classes_reshape_the_network() {
    let v = json_summary(&[
        "--model",
        "lenet5_modern",
        "--input",
        "1,32,32",
        "--classes",
        "26",
    ]);
    let layers = v["layers"].as_array().unwrap();
    let fc1 = layers.iter().find(|l| l["name"] == "fc1").unwrap();
    assert_eq!(fc1["params"], 16 * 6 * 6 * 120 + 120);
    assert_eq!(
        layers.last().unwrap()["output_shape"],
        serde_json::json!([26])
    );
}

#[test]
fn list_names_every_model_once() {
    let out = ember().args(["summary", "--list"]).assert().success();
    let text = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    for name in [
        "softmax_regression",
        "lenet5_bn",
        "alexnet",
        "vgg19_bn",
        "nin",
        "googlenet",
        "resnet152",
        "resnet18_cifar",
        "resnext50_32x4d",
        "densenet121",
    ] {
        assert_eq!(text.matches(&format!("| `{name}` |")).count(), 1, "{name}");
    }
    assert!(text.contains("| `resnet50` | 3x224x224 | 1000 | 25,557,032 |"));
}

#[test]
fn bad_names_and_inputs_fail_with_a_clear_message() {
    let out = ember()
        .args(["summary", "--model", "resnet-18"])
        .assert()
        .failure();
    let err = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(
        err.contains("unknown model `resnet-18`, did you mean `resnet18`?"),
        "{err}"
    );

    let out = ember()
        .args(["summary", "--model", "vgg11", "--input", "3,16,16"])
        .assert()
        .failure();
    let err = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    // 16 -> 8 -> 4 -> 2 -> 1: the fifth block's 2x2 pool has nothing left to pool.
    assert!(
        err.contains("layer `blocks.4.pool` (max pool 2x2/2) cannot take its input 512x1x1"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");

    let out = ember()
        .args(["summary", "--model", "vgg11", "--input", "3,224"])
        .assert()
        .failure();
    assert!(String::from_utf8_lossy(&out.get_output().stderr).contains("is not C,H,W"));
    ember()
        .args(["summary", "--model", "vgg11", "--classes", "0"])
        .assert()
        .failure();
    let out = ember()
        .args(["summary", "--model", "vgg11", "--backend", "cuda"])
        .assert()
        .failure();
    assert!(String::from_utf8_lossy(&out.get_output().stderr).contains("not compiled"));
}
