//! Two runs with the same seed give the same metrics, on ndarray as the issue asks (and on
//! flex). Its own test binary: Burn's RNG is process-global, so no other test may draw from it
//! meanwhile.

use ember_train::config::{OptimizerKind, TrainConfig};
use ember_train::logger::read_metrics;
use ember_train::{Backend, trainer};
use std::path::PathBuf;

fn run(
    backend: Backend,
    out: PathBuf,
    seed: u64,
    workers: usize,
) -> Vec<ember_train::logger::EpochRecord> {
    let config = TrainConfig {
        model: "lenet5_bn".into(),
        dataset: "mnist".into(),
        data_dir: Some(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data/mnist-subset")),
        val_split: 0.1,
        train_limit: Some(256),
        epochs: 1,
        batch_size: 32,
        optimizer: OptimizerKind::Adam,
        lr: 1e-3,
        augment: ember_data::transform::Preset::Cifar,
        backend,
        workers,
        seed,
        out: out.clone(),
        log_every_secs: 1e9,
        ..TrainConfig::default()
    };
    trainer::train(&config, false).unwrap();
    read_metrics(&out.join("metrics.csv")).unwrap()
}

#[test]
fn same_seed_same_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let mut backends = vec![Backend::Flex];
    if Backend::Ndarray.is_compiled() {
        backends.push(Backend::Ndarray);
    }
    for b in backends {
        let a = run(b, dir.path().join(format!("{b}-a")), 7, 1);
        let c = run(b, dir.path().join(format!("{b}-c")), 7, 2);
        let d = run(b, dir.path().join(format!("{b}-d")), 8, 1);
        let key = |r: &ember_train::logger::EpochRecord| {
            (r.train_loss, r.train_accuracy, r.val_loss, r.val_accuracy)
        };
        assert_eq!(
            key(&a[0]),
            key(&c[0]),
            "{b}: same seed, any worker count, same metrics"
        );
        assert_ne!(key(&a[0]), key(&d[0]), "{b}: another seed, other metrics");
    }
}
