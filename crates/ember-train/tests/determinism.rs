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
        data: ember_train::config::DataConfig {
            dataset: ember_data::DatasetSpec::Mnist,
            data_dir: Some(
                PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data/mnist-subset"),
            ),
            val_split: 0.1,
            train_limit: Some(256),
            augment: ember_data::transform::Preset::Cifar.into(),
            ..Default::default()
        },
        optim: ember_train::config::OptimConfig {
            optimizer: OptimizerKind::Adam,
            lr: 1e-3,
            ..Default::default()
        },
        train_loop: ember_train::config::LoopConfig {
            epochs: 1,
            batch_size: 32,
            seed,
            ..Default::default()
        },
        runtime: ember_train::config::RuntimeConfig {
            backend,
            workers,
            out: out.clone(),
            log_every_secs: 1e9,
            ..Default::default()
        },
        ..TrainConfig::default()
    };
    trainer::Training::new(&config).launch().unwrap();
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

/// Every parameter value of a module, in the module's order.
struct Values(Vec<f32>);

impl burn::module::ModuleVisitor for Values {
    fn visit_float<const D: usize>(&mut self, p: &burn::module::Param<burn::tensor::Tensor<D>>) {
        self.0.extend(p.val().into_data().iter::<f32>());
    }
}

#[test]
fn trainings_in_one_process_get_their_own_seeds_initial_weights() {
    use burn::module::Module;
    // Burn draws parameters lazily from one process-wide generator: without a lock around
    // seeding and drawing, two models built at once (two trials of `ember search --parallel 2`)
    // interleave their draws and neither gets its seed's weights.
    let device = burn::tensor::Device::flex();
    let config = ember_models::ModelConfig::from_name("lenet5_modern").unwrap();
    let weights = |seed: u64| {
        let model = trainer::seeded_init(&device, seed, || {
            config.init(&device).map_err(ember_train::TrainError::from)
        })
        .unwrap();
        let mut values = Values(Vec::new());
        model.visit(&mut values);
        values.0
    };
    let by_seed = [weights(3), weights(4)];
    assert_ne!(by_seed[0], by_seed[1]);
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..4)
            .map(|i| {
                let weights = &weights;
                s.spawn(move || (0..6).map(|_| weights(3 + i % 2)).collect::<Vec<_>>())
            })
            .collect();
        for (i, w) in workers.into_iter().enumerate() {
            for got in w.join().unwrap() {
                assert!(
                    got == by_seed[i % 2],
                    "thread {i}: weights differ from seed {}'s",
                    3 + i % 2
                );
            }
        }
    });
}
