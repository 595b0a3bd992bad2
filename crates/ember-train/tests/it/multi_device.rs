//! `--devices 2` hands two CPU devices to Burn's multi-device strategy.

use ember_train::config::TrainConfig;
use ember_train::{Backend, trainer};
use std::path::PathBuf;

#[test]
fn trains_on_two_cpu_devices() {
    let dir = tempfile::tempdir().unwrap();
    let config = TrainConfig {
        model: "lenet5_modern".into(),
        dataset: ember_data::DatasetSpec::Mnist,
        data_dir: Some(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data/mnist-subset")),
        val_split: 0.1,
        train_limit: Some(1536),
        epochs: 2,
        batch_size: 32,
        optimizer: ember_train::config::OptimizerKind::Adam,
        lr: 2e-3,
        schedule: ember_train::config::ScheduleKind::Cosine,
        backend: Backend::Flex,
        devices: 2,
        workers: 1,
        out: dir.path().join("multi"),
        log_every_secs: 1e9,
        ..TrainConfig::default()
    };
    let outcome = trainer::Training::new(&config).launch().unwrap();
    assert_eq!(outcome.records.len(), 2);
    let r = outcome.report.unwrap();
    assert!(r.accuracy > 0.5, "learned on two devices: {}", r.accuracy);

    // The schedule counts optimizer steps (one per round of a batch on each device), so a
    // cosine schedule ends where it ends on one device; counting device batches, the second
    // epoch would still be near the schedule's middle.
    assert_eq!(trainer::optimizer_steps_per_epoch(1383, 32, 1), 44);
    assert_eq!(
        trainer::optimizer_steps_per_epoch(1383, 32, 2),
        22,
        "691 and 692 images"
    );
    assert_eq!(
        trainer::optimizer_steps_per_epoch(100, 32, 3),
        2,
        "33, 33 and 34 images"
    );
    let single = trainer::Training::new(&TrainConfig {
        devices: 1,
        out: dir.path().join("single"),
        ..config.clone()
    })
    .launch()
    .unwrap();
    for (two, one) in outcome.records.iter().zip(&single.records) {
        let (a, b) = (two.lr.unwrap(), one.lr.unwrap());
        assert!(
            (a - b).abs() <= 0.15 * b,
            "epoch {}: lr {a} on two devices, {b} on one",
            two.epoch
        );
    }
}
