//! `--devices 2` hands two CPU devices to Burn's multi-device strategy.

use ember_train::config::TrainConfig;
use ember_train::trainer;

#[test]
fn trains_on_two_cpu_devices() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = crate::quick_mnist(&dir.path().join("multi"));
    config.runtime.devices = 2;
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
        runtime: ember_train::config::RuntimeConfig {
            devices: 1,
            out: dir.path().join("single"),
            ..config.runtime.clone()
        },
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
