//! Weights in and out: torchvision state dicts (committed fixture made by
//! scripts/torchvision_fixture.py), Ember's safetensors and burnpack files, and the errors of
//! weights that do not fit.

use burn::store::ModuleSnapshot;
use burn::tensor::{Device, Tensor, TensorData};
use ember_models::zoo::densenet::DenseNetConfig;
use ember_models::zoo::resnet::ResNetConfig;
use ember_models::zoo::vgg::{VGG11, VggConfig};
use ember_models::{Model, ModelConfig};
use ember_train::weights::{self, Layout, LoadOptions};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/torchvision")
}

/// The script's input: x[n,c,y,x] = sin(0.37 (7n + 3c) + 0.11 y + 0.07 x).
fn fixed_input(shape: [usize; 4], device: &Device) -> Tensor<4> {
    let [n, c, h, w] = shape;
    let mut v = Vec::with_capacity(n * c * h * w);
    for a in 0..n {
        for b in 0..c {
            for y in 0..h {
                for x in 0..w {
                    let t = 0.37 * (a * 7 + b * 3) as f64 + 0.11 * y as f64 + 0.07 * x as f64;
                    v.push(t.sin() as f32);
                }
            }
        }
    }
    Tensor::from_data(TensorData::new(v, shape), device)
}

fn expected(dir: &Path, name: &str) -> ([usize; 4], Vec<f32>) {
    let text = std::fs::read_to_string(dir.join("outputs.json")).unwrap();
    let all: serde_json::Value = serde_json::from_str(&text).unwrap();
    let entry = &all[name];
    let shape: Vec<usize> = serde_json::from_value(entry["input"].clone()).unwrap();
    let out: Vec<f32> = serde_json::from_value(entry["output"].clone()).unwrap();
    ([shape[0], shape[1], shape[2], shape[3]], out)
}

fn outputs(model: &Model, shape: [usize; 4], device: &Device) -> Vec<f32> {
    model
        .forward(fixed_input(shape, device))
        .into_data()
        .try_to_vec::<f32>()
        .unwrap()
}

fn assert_close(got: &[f32], want: &[f32], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: output size");
    let scale = want.iter().fold(1e-3f32, |m, v| m.max(v.abs()));
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= 1e-4 * scale + 1e-5,
            "{what}: output {i} is {g}, PyTorch gave {w}"
        );
    }
}

fn narrow(name: &str) -> ModelConfig {
    match name {
        "resnet_narrow" => ModelConfig::Resnet(
            ResNetConfig::basic([1, 1, 1, 1])
                .with_base_channels(2)
                .with_num_classes(5),
        ),
        "resnext_narrow" => ModelConfig::Resnet(
            ResNetConfig::bottleneck([1, 1, 1, 1])
                .with_base_channels(4)
                .with_groups(2)
                .with_width_per_group(32)
                .with_num_classes(5),
        ),
        "vgg11_bn_narrow" => ModelConfig::Vgg(
            VggConfig::new()
                .with_blocks(VGG11.to_vec())
                .with_batch_norm(true)
                .with_width_divisor(32)
                .with_hidden(16)
                .with_num_classes(5),
        ),
        "densenet_narrow" => ModelConfig::Densenet(
            DenseNetConfig::new()
                .with_growth_rate(4)
                .with_block_config(vec![2, 2])
                .with_num_init_features(8)
                .with_bn_size(2)
                .with_num_classes(5),
        ),
        other => panic!("no config for {other}"),
    }
}

const NARROW: [&str; 4] = [
    "resnet_narrow",
    "resnext_narrow",
    "vgg11_bn_narrow",
    "densenet_narrow",
];

#[test]
fn torchvision_state_dicts_give_pytorchs_outputs() {
    let device = Device::flex();
    for name in NARROW {
        let config = narrow(name);
        let (model, report) = weights::load_pretrained(
            &config,
            &fixtures().join(format!("{name}.pth")),
            &device,
            &LoadOptions::default(),
        )
        .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(report.is_complete(), "{name}: {}", report.describe());
        let (shape, want) = expected(&fixtures(), name);
        assert_close(&outputs(&model, shape, &device), &want, name);
    }
}

/// Every key of the full-size torchvision models (names and shapes in keys.json) lands on an
/// Ember tensor of the same shape, and every Ember tensor gets one.
#[test]
fn key_tables_cover_every_torchvision_model() {
    let text = std::fs::read_to_string(fixtures().join("keys.json")).unwrap();
    let all: BTreeMap<String, BTreeMap<String, Vec<usize>>> = serde_json::from_str(&text).unwrap();
    assert_eq!(all.len(), 8);
    let device = Device::flex();
    for (name, keys) in all {
        let mut config = ModelConfig::from_name(&name).unwrap();
        if let ModelConfig::Googlenet(c) = config {
            config = ModelConfig::Googlenet(c.with_aux_logits(true));
        }
        let table = config.torchvision_keys().expect("a torchvision layout");
        let model = config.init(&device).unwrap();
        let mut ember: BTreeMap<String, Vec<usize>> = model
            .collect(None, None, true)
            .into_iter()
            .map(|t| (t.name.clone(), t.shape.to_vec()))
            .collect();
        let rules: Vec<(regex::Regex, String)> = table
            .rules
            .iter()
            .map(|(f, t)| (regex::Regex::new(f).unwrap(), t.clone()))
            .collect();
        let ignored: Vec<regex::Regex> = table
            .ignored
            .iter()
            .map(|p| regex::Regex::new(p).unwrap())
            .collect();
        for (key, shape) in keys {
            if ignored.iter().any(|r| r.is_match(&key)) {
                continue;
            }
            let mut k = key.clone();
            for (r, to) in &rules {
                k = r.replace_all(&k, to.as_str()).into_owned();
            }
            // Burn's PyTorch adapter: batch norm's weight/bias are gamma/beta; linear weights
            // are stored [in, out].
            let bn = |suffix: &str, burn: &str| {
                k.strip_suffix(suffix)
                    .map(|stem| format!("{stem}{burn}"))
                    .filter(|n| ember.contains_key(n))
            };
            let target = bn(".weight", ".gamma")
                .or_else(|| bn(".bias", ".beta"))
                .unwrap_or(k.clone());
            let Some(ember_shape) = ember.remove(&target) else {
                panic!(
                    "{name}: torchvision's `{key}` maps to `{target}`, which the Ember model lacks"
                );
            };
            let mut want = shape.clone();
            if want.len() == 2 {
                want.reverse();
            }
            assert_eq!(ember_shape, want, "{name}: shape of {key} -> {target}");
        }
        assert!(
            ember.is_empty(),
            "{name}: Ember tensors no torchvision key fills: {:?}",
            ember.keys().collect::<Vec<_>>()
        );
    }
}

#[test]
fn weights_that_do_not_fit_are_listed_by_name() {
    let device = Device::flex();
    let file = fixtures().join("resnet_narrow.pth");

    // Wider model: every convolution has another shape.
    let wider = ModelConfig::Resnet(
        ResNetConfig::basic([1, 1, 1, 1])
            .with_base_channels(4)
            .with_num_classes(5),
    );
    let err = weights::load_pretrained(&wider, &file, &device, &LoadOptions::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("resnet_narrow.pth"), "{err}");
    assert!(
        err.contains("stem.conv.weight (file [2, 3, 7, 7], model [4, 3, 7, 7])"),
        "{err}"
    );
    assert!(err.contains("`finetune.allow_partial` = true"), "{err}");

    // Deeper model: the second block of every stage is missing from the file.
    let deeper = ModelConfig::Resnet(
        ResNetConfig::basic([2, 1, 1, 1])
            .with_base_channels(2)
            .with_num_classes(5),
    );
    let err = weights::load_pretrained(&deeper, &file, &device, &LoadOptions::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("missing from the file"), "{err}");
    assert!(err.contains("layer1.1.conv1.conv.weight"), "{err}");

    // Shallower model: the file's extra block is unexpected.
    let vgg_file = fixtures().join("vgg11_bn_narrow.pth");
    let vgg9 = ModelConfig::Vgg(
        VggConfig::new()
            .with_blocks(vec![[1, 64], [1, 128], [2, 256], [2, 512], [1, 512]])
            .with_batch_norm(true)
            .with_width_divisor(32)
            .with_hidden(16)
            .with_num_classes(5),
    );
    let err = weights::load_pretrained(&vgg9, &vgg_file, &device, &LoadOptions::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("unexpected in the file"), "{err}");
    assert!(err.contains("features.25.weight"), "{err}");

    // --allow-partial loads what fits and says what did not.
    let partial = LoadOptions {
        allow_partial: true,
        ..LoadOptions::default()
    };
    let (model, report) = weights::load_pretrained(&deeper, &file, &device, &partial).unwrap();
    assert!(
        report
            .missing
            .contains(&"layer1.1.conv2.bn.gamma".to_string())
    );
    assert!(
        report
            .applied
            .contains(&"layer4.0.conv2.conv.weight".to_string())
    );
    assert!(report.unexpected.is_empty() && report.mismatched.is_empty());
    let loaded: Vec<f32> = snapshot(&model, "stem.conv.weight");
    let reference = weights::load_pretrained(
        &narrow("resnet_narrow"),
        &file,
        &device,
        &LoadOptions::default(),
    )
    .unwrap()
    .0;
    assert_eq!(loaded, snapshot(&reference, "stem.conv.weight"));

    // A new head for other classes is not an error; the rest loads.
    let seven = narrow("resnet_narrow").with_num_classes(7);
    let new_head = LoadOptions {
        new_head: true,
        ..LoadOptions::default()
    };
    let (_, report) = weights::load_pretrained(&seven, &file, &device, &new_head).unwrap();
    assert_eq!(
        report.reset,
        vec!["fc.weight".to_string(), "fc.bias".to_string()]
    );
    assert!(report.is_complete());

    // A model with no torchvision layout, and a file that is not one.
    let lenet = ModelConfig::from_name("lenet5").unwrap();
    let err = weights::load_pretrained(&lenet, &file, &device, &LoadOptions::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("no torchvision layout"), "{err}");
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.pth");
    std::fs::write(&junk, b"not a pickle").unwrap();
    let err = weights::load_pretrained(
        &narrow("resnet_narrow"),
        &junk,
        &device,
        &LoadOptions::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("junk.pth"), "{err}");
}

fn snapshot(model: &Model, name: &str) -> Vec<f32> {
    model
        .collect(None, None, true)
        .into_iter()
        .find(|t| t.name == name)
        .map(|t| burn::store::bridge::into_data(t).unwrap())
        .unwrap_or_else(|| panic!("no tensor {name}"))
        .try_to_vec::<f32>()
        .unwrap()
}

#[test]
fn ember_files_round_trip_and_torchvision_safetensors_load_with_the_layout() {
    let device = Device::flex();
    let config = narrow("densenet_narrow");
    let (model, _) = weights::load_pretrained(
        &config,
        &fixtures().join("densenet_narrow.pth"),
        &device,
        &LoadOptions::default(),
    )
    .unwrap();
    let (shape, want) = expected(&fixtures(), "densenet_narrow");
    let dir = tempfile::tempdir().unwrap();
    for file in ["m.safetensors", "m.bpk"] {
        let path = dir.path().join(file);
        weights::save_as(&model, &config, &path).unwrap();
        let (back, report) =
            weights::load_pretrained(&config, &path, &device, &LoadOptions::default()).unwrap();
        assert!(report.is_complete(), "{file}: {}", report.describe());
        assert_close(&outputs(&back, shape, &device), &want, file);
    }
    // Ember's safetensors names are the clean ones.
    let bytes = std::fs::read(dir.path().join("m.safetensors")).unwrap();
    let text = String::from_utf8_lossy(&bytes[..4096.min(bytes.len())]).into_owned();
    assert!(text.contains("blocks.0.layers.0.norm1.gamma"), "{text}");
    assert!(text.contains("ember.model_config"));

    // Reading an Ember file as torchvision's names matches nothing and says so.
    let err = weights::load_pretrained(
        &config,
        &dir.path().join("m.safetensors"),
        &device,
        &LoadOptions {
            layout: Layout::Torchvision,
            ..LoadOptions::default()
        },
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("do not fit"), "{err}");
}

/// `cargo test -- --ignored torchvision_full_size` after
/// `python3 scripts/torchvision_fixture.py --full DIR` with `EMBER_TORCHVISION_DIR=DIR`: the
/// eight full-size torchvision models (random init) against PyTorch's outputs at 224x224.
#[test]
#[ignore = "needs full-size torchvision files (scripts/torchvision_fixture.py --full DIR)"]
fn torchvision_full_size() {
    let dir = PathBuf::from(std::env::var("EMBER_TORCHVISION_DIR").expect("EMBER_TORCHVISION_DIR"));
    let device = Device::flex();
    for name in [
        "resnet18",
        "resnet50",
        "resnext50_32x4d",
        "vgg11",
        "vgg16_bn",
        "alexnet",
        "densenet121",
        "googlenet",
    ] {
        let config = ModelConfig::from_name(name).unwrap();
        let (model, report) = weights::load_pretrained(
            &config,
            &dir.join(format!("{name}.pth")),
            &device,
            &LoadOptions::default(),
        )
        .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(report.is_complete(), "{name}: {}", report.describe());
        let (shape, want) = expected(&dir, name);
        let got = outputs(&model, shape, &device);
        let max = got
            .iter()
            .zip(&want)
            .map(|(g, w)| (g - w).abs())
            .fold(0f32, f32::max);
        println!(
            "{name}: {} tensors, max |diff| {max:e}",
            report.applied.len()
        );
        assert_close(&got, &want, name);
    }
}
