//! Fine-tuning end to end on the shipped MNIST subset: a narrow ResNet (batch norm everywhere)
//! pre-trained on digits 0-4, fine-tuned on 5-9 with 10 images per class.

use burn::store::ModuleSnapshot;
use burn::tensor::Device;
use ember_models::{Model, ModelConfig};
use ember_train::config::{OptimizerKind, TrainConfig};
use ember_train::finetune::{FinetuneConfig, Freeze};
use ember_train::run::RunDir;
use ember_train::weights::{self, LoadOptions};
use ember_train::{Classifier, trainer};
use std::collections::BTreeMap;
use std::path::Path;

fn config(out: &Path, classes: Vec<usize>) -> TrainConfig {
    let mut options = toml::Table::new();
    options.insert("base_channels".into(), toml::Value::Integer(4));
    let mut c = crate::quick_mnist(out);
    c.model = "resnet18_cifar".into();
    c.model_options = options;
    c.data.classes = Some(classes);
    c.data.train_limit = None;
    c.schedule = Default::default();
    c.train_loop.epochs = 1;
    c.train_loop.batch_size = 16;
    c.runtime.diagnostics = false;
    c
}

/// Every tensor of a run's weights (or one checkpoint), by name, batch-norm statistics included.
fn tensors(run: &Path, file: Option<&str>) -> BTreeMap<String, Vec<f32>> {
    let device = Device::flex();
    let info = RunDir::new(run).load_info().unwrap();
    let cfg: ModelConfig = info.model_config.unwrap();
    let model: Model = match file {
        None => {
            weights::load_pretrained(&cfg, run, &device, &LoadOptions::default())
                .unwrap()
                .0
        }
        Some(f) => {
            let c = Classifier::new(cfg.init(&device).unwrap());
            trainer::load_weights(c, &run.join("checkpoint").join(f))
                .unwrap()
                .net
        }
    };
    model
        .collect(None, None, true)
        .into_iter()
        .map(|t| {
            let name = t.name.clone();
            let data = burn::store::bridge::into_data(t).unwrap();
            (name, data.convert::<f32>().try_to_vec::<f32>().unwrap())
        })
        .collect()
}

fn same_under(
    a: &BTreeMap<String, Vec<f32>>,
    b: &BTreeMap<String, Vec<f32>>,
    prefix: &str,
) -> bool {
    let under = |n: &str| n == prefix || n.starts_with(&format!("{prefix}."));
    let names: Vec<&String> = a.keys().filter(|n| under(n)).collect();
    assert!(!names.is_empty(), "no tensor under {prefix}");
    names.iter().all(|n| a[*n] == b[*n])
}

fn differs(a: &BTreeMap<String, Vec<f32>>, b: &BTreeMap<String, Vec<f32>>, name: &str) -> bool {
    a[name] != b[name]
}

#[test]
fn frozen_layers_and_their_batch_norm_statistics_stay_bit_identical() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("source");
    let mut pre = config(&source, vec![0, 1, 2, 3, 4]);
    pre.data.train_limit = Some(256);
    trainer::Training::new(&pre).launch().unwrap();
    let before = tensors(&source, None);
    // Pre-training moved the statistics away from 0 and 1, so a frozen copy is telling.
    assert!(before["stem.bn.running_mean"].iter().any(|&v| v != 0.0));

    let finetune = |name: &str, ft: FinetuneConfig, epochs: usize| {
        let out = dir.path().join(name);
        let mut c = config(&out, vec![5, 6, 7, 8, 9]);
        c.data.per_class = Some(10);
        c.train_loop.epochs = epochs;
        c.finetune = Some(FinetuneConfig {
            from: source.clone(),
            ..ft
        });
        let outcome = trainer::Training::new(&c).launch().unwrap();
        assert_eq!(outcome.records.len(), epochs);
        out
    };

    // stages:2 = the stem and layer1.
    let out = finetune(
        "stages2",
        FinetuneConfig {
            freeze: Freeze::Stages(2),
            ..FinetuneConfig::default()
        },
        2,
    );
    let after = tensors(&out, Some("model-2.bpk"));
    assert!(same_under(&before, &after, "stem"));
    assert!(same_under(&before, &after, "layer1"));
    assert!(differs(&before, &after, "layer2.0.conv1.conv.weight"));
    assert!(differs(&before, &after, "layer2.0.conv1.bn.running_mean"));
    assert!(differs(&before, &after, "fc.weight"));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("pretrained.json")).unwrap())
            .unwrap();
    assert_eq!(
        report["reset"],
        serde_json::json!(["fc.weight", "fc.bias"]),
        "other classes: new head"
    );

    // The head alone for one epoch, then everything.
    let out = finetune(
        "unfreeze",
        FinetuneConfig {
            freeze: Freeze::None,
            unfreeze_after: Some(1),
            ..FinetuneConfig::default()
        },
        2,
    );
    let head_only = tensors(&out, Some("model-1.bpk"));
    let all = tensors(&out, Some("model-2.bpk"));
    for prefix in ["stem", "layer1", "layer2", "layer3", "layer4"] {
        assert!(
            same_under(&before, &head_only, prefix),
            "{prefix} trained in the head-only epoch"
        );
    }
    assert!(differs(&before, &head_only, "fc.weight"));
    assert!(differs(&head_only, &all, "layer1.0.conv1.conv.weight"));
    assert!(differs(&head_only, &all, "stem.bn.running_var"));
}

#[test]
fn a_zero_backbone_rate_trains_only_the_head() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("source");
    let mut pre = config(&source, vec![0, 1, 2, 3, 4]);
    pre.data.train_limit = Some(64);
    trainer::Training::new(&pre).launch().unwrap();
    let before = tensors(&source, None);

    let out = dir.path().join("tuned");
    let mut c = config(&out, vec![0, 1, 2, 3, 4]);
    c.data.per_class = Some(8);
    c.optim.optimizer = OptimizerKind::Sgd;
    c.optim.lr = 0.05;
    c.finetune = Some(FinetuneConfig {
        from: source.clone(),
        backbone_lr_factor: 0.0,
        ..FinetuneConfig::default()
    });
    trainer::Training::new(&c).launch().unwrap();
    let after = tensors(&out, Some("model-1.bpk"));
    // Same classes: the head was loaded, then trained at the full rate.
    assert!(differs(&before, &after, "fc.weight"));
    // The backbone's parameters did not move, but its batch norm (not frozen) kept counting.
    assert_eq!(
        before["layer3.0.conv2.conv.weight"],
        after["layer3.0.conv2.conv.weight"]
    );
    assert_eq!(before["stem.bn.gamma"], after["stem.bn.gamma"]);
    assert!(differs(&before, &after, "stem.bn.running_mean"));
}

#[test]
fn bad_fine_tuning_options_fail_before_training() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x");
    let mut c = config(&out, vec![0, 1]);
    c.finetune = Some(FinetuneConfig {
        from: dir.path().join("nowhere.pth"),
        ..FinetuneConfig::default()
    });
    let err = trainer::Training::new(&c).launch().unwrap_err().to_string();
    assert!(err.contains("nowhere.pth"), "{err}");

    c.finetune = Some(FinetuneConfig {
        from: dir.path().join("nowhere.pth"),
        freeze: Freeze::Stages(9),
        ..FinetuneConfig::default()
    });
    let err = trainer::Training::new(&c).launch().unwrap_err().to_string();
    assert!(
        err.contains("stages:9") && err.contains("5 stages"),
        "{err}"
    );

    c.finetune = Some(FinetuneConfig {
        from: dir.path().join("nowhere.pth"),
        freeze: "prefix:layer9".parse().unwrap(),
        ..FinetuneConfig::default()
    });
    let err = trainer::Training::new(&c).launch().unwrap_err().to_string();
    assert!(err.contains("layer9") && err.contains("layer1"), "{err}");

    c.finetune = Some(FinetuneConfig {
        from: dir.path().join("nowhere.pth"),
        unfreeze_after: Some(1),
        ..FinetuneConfig::default()
    });
    let err = trainer::Training::new(&c).launch().unwrap_err().to_string();
    assert!(err.contains("`finetune.unfreeze_after`"), "{err}");
    assert!(!out.join("checkpoint").exists());

    assert!("stages:x".parse::<Freeze>().is_err());
    assert_eq!(
        "prefix:stem, layer1".parse::<Freeze>().unwrap().to_string(),
        "prefix:stem,layer1"
    );
}
