//! `--devices 2` hands two CPU devices to Burn's multi-device strategy.

use ember_train::config::TrainConfig;
use ember_train::{Backend, trainer};
use std::path::PathBuf;

#[test]
fn trains_on_two_cpu_devices() {
    let dir = tempfile::tempdir().unwrap();
    let config = TrainConfig {
        model: "lenet5_modern".into(),
        dataset: "mnist".into(),
        data_dir: Some(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data/mnist-subset")),
        val_split: 0.1,
        train_limit: Some(1536),
        epochs: 2,
        batch_size: 32,
        optimizer: ember_train::config::OptimizerKind::Adam,
        lr: 2e-3,
        backend: Backend::Flex,
        devices: 2,
        workers: 1,
        out: dir.path().join("multi"),
        log_every_secs: 1e9,
        ..TrainConfig::default()
    };
    let outcome = trainer::train(&config, false).unwrap();
    assert_eq!(outcome.records.len(), 2);
    let r = outcome.report.unwrap();
    assert!(r.accuracy > 0.5, "learned on two devices: {}", r.accuracy);
}
