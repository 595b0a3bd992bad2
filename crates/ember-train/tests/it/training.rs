//! End-to-end training on the MNIST subset the repository ships, on the Flex CPU backend.

use ember_train::config::{Monitor, OptimizerKind, ScheduleKind, TrainConfig};
use ember_train::diagnostics::{read_activations, read_gradients};
use ember_train::logger::read_metrics;
use ember_train::run::Weights;
use ember_train::{TrainError, trainer};
use std::path::PathBuf;

use crate::{mnist_subset, quick_mnist as quick};

/// Accuracy and mean cross-entropy of the run in `out` with `which` weights on the shipped
/// MNIST test split, through `TrainedModel` (the `predict` path) and the run's evaluation
/// transforms.
fn score_by_hand(out: &std::path::Path, which: Weights) -> (f64, f64) {
    use burn::data::dataset::Dataset;
    let device = burn::tensor::Device::flex();
    let trained = ember_train::predict::TrainedModel::load_from(out, which, &device).unwrap();
    let test = ember_data::mnist::MnistDataset::load(
        &mnist_subset(),
        ember_data::mnist::MnistVariant::Digits,
        ember_data::Split::Test,
    )
    .unwrap();
    let (mut correct, mut loss) = (0usize, 0f64);
    let items: Vec<_> = (0..test.len()).map(|i| test.get(i).unwrap()).collect();
    for chunk in items.chunks(100) {
        let images: Vec<_> = chunk
            .iter()
            .map(|it| {
                ember_data::transform::apply_all(
                    &trained.info.eval_transforms,
                    it.image.clone(),
                    0,
                    0,
                    0,
                )
                .unwrap()
            })
            .collect();
        for (p, it) in trained.probabilities(&images).unwrap().iter().zip(chunk) {
            let best = (0..p.len()).max_by(|&a, &b| p[a].total_cmp(&p[b])).unwrap();
            correct += usize::from(best == it.label);
            loss -= f64::from(p[it.label]).ln();
        }
    }
    (
        correct as f64 / items.len() as f64,
        loss / items.len() as f64,
    )
}

#[test]
fn trains_lenet_and_writes_a_complete_run_directory() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let config = quick(&out);
    let outcome = trainer::Training::new(&config).launch().unwrap();

    // It learned: chance is 10%.
    let report = outcome.report.as_ref().expect("a test report");
    assert_eq!(outcome.report_split, ember_train::eval::EvalSplit::Test);
    assert_eq!(report.n, 1000, "the whole shipped test split");
    assert!(report.accuracy > 0.7, "test accuracy {}", report.accuracy);
    assert!(report.top5 >= report.accuracy);
    let diag: u64 = (0..10).map(|c| report.confusion[c][c]).sum();
    assert_eq!(
        diag as f64 / 1000.0,
        report.accuracy,
        "confusion diagonal = accuracy"
    );
    assert_eq!(report.confusion.iter().flatten().sum::<u64>(), 1000);

    // The report agrees with a second, independent route to the same numbers: the run's
    // weights loaded as `ember predict` loads them, each test image read and transformed on
    // its own, batched by hand, scored here (no loader, no `evaluate`).
    let (accuracy, loss) = score_by_hand(&out, Weights::Best);
    assert_eq!(accuracy, report.accuracy, "the report's accuracy");
    assert!(
        (loss - report.loss).abs() < 1e-4,
        "loss {loss} vs the report's {}",
        report.loss
    );

    // One metrics row per epoch, with everything filled in and the loss going down.
    let rows = read_metrics(&out.join("metrics.csv")).unwrap();
    assert_eq!(rows.iter().map(|r| r.epoch).collect::<Vec<_>>(), vec![1, 2]);
    for r in &rows {
        for v in [
            r.train_loss,
            r.train_accuracy,
            r.val_loss,
            r.val_accuracy,
            r.val_top5,
            r.lr,
            r.train_images_per_sec,
        ] {
            assert!(v.is_some_and(f64::is_finite), "{r:?}");
        }
    }
    assert!(rows[1].train_loss < rows[0].train_loss, "{rows:?}");
    assert!(rows[1].lr < rows[0].lr, "cosine schedule decays: {rows:?}");
    assert_eq!(outcome.records, rows);

    // The rest of the run directory.
    for f in [
        "config.toml",
        "run.json",
        "curves.png",
        "report.txt",
        "report.json",
        "confusion.png",
        "final.bpk",
        "best.bpk",
    ] {
        let p = out.join(f);
        assert!(
            p.is_file() && std::fs::metadata(&p).unwrap().len() > 0,
            "missing {f}"
        );
    }
    assert!(out.join("checkpoint/model-2.bpk").is_file());
    let best = outcome.best_epoch.unwrap();
    let best_acc = rows[best - 1].val_accuracy.unwrap();
    assert!(rows.iter().all(|r| r.val_accuracy.unwrap() <= best_acc));
    let text = std::fs::read_to_string(out.join("report.txt")).unwrap();
    assert!(
        text.contains("per-class accuracy") && text.contains("confusion matrix"),
        "{text}"
    );

    // Per-layer diagnostics: every parameterised layer and every tap, once per epoch.
    let grads = read_gradients(&out.join("gradients.csv")).unwrap();
    let layers = |e: usize| -> Vec<String> {
        grads
            .iter()
            .filter(|r| r.epoch == e)
            .map(|r| r.gradient.layer.clone())
            .collect()
    };
    assert_eq!(layers(1), ["conv1.conv", "conv2.conv", "fc1", "fc2", "fc3"]);
    assert_eq!(layers(2), layers(1));
    assert!(grads.iter().all(|r| r.gradient.grad_norm > 0.0
        && r.gradient.grad_norm.is_finite()
        && r.gradient.weight_norm > 0.0));
    let acts = read_activations(&out.join("activations.csv")).unwrap();
    let conv1 = acts
        .iter()
        .find(|r| r.epoch == 1 && r.stats.layer == "conv1")
        .unwrap();
    // After a ReLU: non-negative mean, some units off, not all.
    assert!(conv1.stats.mean > 0.0 && conv1.stats.std > 0.0, "{conv1:?}");
    assert!(
        (0.05..0.95).contains(&conv1.stats.zero_fraction),
        "{conv1:?}"
    );
    let logits = acts.iter().find(|r| r.stats.layer == "fc3").unwrap();
    assert_eq!(logits.stats.zero_fraction, 0.0, "logits have no ReLU");

    // The saved config repeats the run.
    let again = TrainConfig::load(&out.join("config.toml")).unwrap();
    assert_eq!(again, config);

    // A run directory is not overwritten by accident.
    let err = trainer::Training::new(&config).launch().unwrap_err();
    assert!(err.to_string().contains("--resume"), "{err}");

    // Resume continues to a longer run, keeping the first epochs' rows.
    let longer = TrainConfig {
        train_loop: ember_train::config::LoopConfig {
            epochs: 3,
            ..config.train_loop.clone()
        },
        ..config
    };
    let resumed = trainer::Training::new(&longer)
        .resume(true)
        .launch()
        .unwrap();
    let rows3 = read_metrics(&out.join("metrics.csv")).unwrap();
    assert_eq!(rows3.len(), 3);
    let grads3 = read_gradients(&out.join("gradients.csv")).unwrap();
    assert_eq!(grads3.len(), 15, "five layers for each of three epochs");
    assert_eq!(grads3[..10], grads[..], "earlier epochs' diagnostics kept");
    assert_eq!(rows3[..2], rows[..], "earlier epochs kept as they were");
    assert_eq!(resumed.records.len(), 3);

    // A damaged optimizer checkpoint (Burn's Learner would panic reading it) is skipped: the
    // resume falls back to the newest checkpoint that reads back whole, and trains on from there.
    let ckpt = out.join("checkpoint");
    assert!(ckpt.join("model-2.bpk").is_file() && ckpt.join("model-3.bpk").is_file());
    std::fs::write(ckpt.join("optim-3.bpk"), b"not a burnpack").unwrap();
    let run = ember_train::run::RunDir::new(&out);
    let (newest, damaged) = run.resumable_checkpoint();
    assert_eq!(newest, Some(2));
    assert_eq!(damaged.len(), 1);
    assert!(damaged[0].1.contains("optim-3.bpk"), "{damaged:?}");
    let four = TrainConfig {
        train_loop: ember_train::config::LoopConfig {
            epochs: 4,
            ..longer.train_loop.clone()
        },
        ..longer.clone()
    };
    // The fallback is reported through the run's events, not printed by the library.
    let events = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = events.clone();
    trainer::Training::new(&four)
        .resume(true)
        .on_event(move |e| seen.lock().unwrap().push(e.clone()))
        .launch()
        .unwrap();
    let events = events.lock().unwrap().clone();
    assert!(
        matches!(&events[..], [
            trainer::Event::DamagedCheckpoint { epoch: 3, why },
            trainer::Event::ResumingEarlier { epoch: 2, newest: 3 },
            trainer::Event::Resuming { epoch: 2, .. },
        ] if why.contains("optim-3.bpk")),
        "{events:?}"
    );
    assert!(events[..2].iter().all(|e| e.is_warning()) && !events[2].is_warning());
    let rows4 = read_metrics(&out.join("metrics.csv")).unwrap();
    assert_eq!(
        rows4.iter().map(|r| r.epoch).collect::<Vec<_>>(),
        [1, 2, 3, 4]
    );
    assert_eq!(rows4[..2], rows[..], "epochs before the fallback kept");

    // Killed after the last epoch's checkpoint but before the report: a resume finishes it
    // without training again; a finished run is not resumed.
    std::fs::remove_file(out.join("report.json")).unwrap();
    let finished = trainer::Training::new(&four).resume(true).launch().unwrap();
    assert!(out.join("report.json").is_file());
    assert_eq!(read_metrics(&out.join("metrics.csv")).unwrap(), rows4);
    assert_eq!(finished.records, rows4);
    let err = trainer::Training::new(&four)
        .resume(true)
        .launch()
        .unwrap_err()
        .to_string();
    assert!(err.contains("already finished"), "{err}");

    // When no checkpoint reads back, the resume is a typed error naming the files, not a panic.
    for e in run.complete_checkpoints() {
        std::fs::write(ckpt.join(format!("scheduler-{e}.bpk")), b"").unwrap();
    }
    let five = TrainConfig {
        train_loop: ember_train::config::LoopConfig {
            epochs: 5,
            ..longer.train_loop.clone()
        },
        ..longer
    };
    let err = trainer::Training::new(&five)
        .resume(true)
        .launch()
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("no readable checkpoint") && err.contains("scheduler-4.bpk"),
        "{err}"
    );

    // `--weights final` loads final.bpk and `best` best.bpk: with an untrained network put in
    // final.bpk, only the final weights score near chance.
    let info = run.load_info().unwrap();
    let untrained = info
        .model_config
        .as_ref()
        .unwrap()
        .init(&burn::tensor::Device::flex())
        .unwrap();
    trainer::save_weights(&untrained, &run.final_weights()).unwrap();
    let (best_acc, _) = score_by_hand(&out, Weights::Best);
    let (final_acc, final_loss) = score_by_hand(&out, Weights::Final);
    assert!(best_acc > 0.7, "best weights: {best_acc}");
    assert!(final_acc < 0.4, "untrained final weights: {final_acc}");
    // Without best.bpk, the best weights are the final ones.
    std::fs::remove_file(run.best()).unwrap();
    assert_eq!(score_by_hand(&out, Weights::Best), (final_acc, final_loss));
}

#[test]
fn bad_configurations_fail_before_training() {
    let dir = tempfile::tempdir().unwrap();
    let base = quick(&dir.path().join("r"));
    // The dataset is read once, with the config: an unknown one is an error naming the file.
    let file = dir.path().join("bad.toml");
    std::fs::write(&file, "model = \"lenet5\"\ndataset = \"imagenet\"\n").unwrap();
    let err = TrainConfig::load(&file).unwrap_err().to_string();
    assert!(
        err.contains("unknown dataset `imagenet`") && err.contains("bad.toml"),
        "{err}"
    );
    let cases: Vec<(TrainConfig, &str)> = vec![
        (
            TrainConfig {
                model: "lenet6".into(),
                ..base.clone()
            },
            "did you mean `lenet5`",
        ),
        (
            TrainConfig {
                optim: ember_train::config::OptimConfig {
                    lr: 0.0,
                    ..base.optim.clone()
                },
                ..base.clone()
            },
            "`optim.lr`",
        ),
        (
            TrainConfig {
                optim: ember_train::config::OptimConfig {
                    lr: -1.0,
                    ..base.optim.clone()
                },
                ..base.clone()
            },
            "`optim.lr`",
        ),
        (
            TrainConfig {
                train_loop: ember_train::config::LoopConfig {
                    batch_size: 0,
                    ..base.train_loop.clone()
                },
                ..base.clone()
            },
            "`loop.batch_size`",
        ),
        (
            TrainConfig {
                data: ember_train::config::DataConfig {
                    val_split: 0.0,
                    ..base.data.clone()
                },
                train_loop: ember_train::config::LoopConfig {
                    early_stop_patience: Some(2),
                    ..base.train_loop.clone()
                },
                ..base.clone()
            },
            "validation split",
        ),
        (
            TrainConfig {
                optim: ember_train::config::OptimConfig {
                    momentum: Some(1.5),
                    ..base.optim.clone()
                },
                ..base.clone()
            },
            "`optim.momentum`",
        ),
        (
            TrainConfig {
                model: "alexnet".into(),
                ..base.clone()
            },
            "`data.resize` = [224, 224]",
        ),
    ];
    // Values that used to reach a panicking std constructor or an unbounded allocation.
    let mut cases = cases;
    for (config, needle) in [
        (
            TrainConfig {
                runtime: ember_train::config::RuntimeConfig {
                    log_every_secs: -1.0,
                    ..base.runtime.clone()
                },
                ..base.clone()
            },
            "`runtime.log_every_secs`",
        ),
        (
            TrainConfig {
                runtime: ember_train::config::RuntimeConfig {
                    log_every_secs: f64::NAN,
                    ..base.runtime.clone()
                },
                ..base.clone()
            },
            "`runtime.log_every_secs`",
        ),
        (
            TrainConfig {
                runtime: ember_train::config::RuntimeConfig {
                    log_every_secs: 1e300,
                    ..base.runtime.clone()
                },
                ..base.clone()
            },
            "`runtime.log_every_secs`",
        ),
        (
            TrainConfig {
                data: ember_train::config::DataConfig {
                    resize: Some([100_000, 100_000]),
                    ..base.data.clone()
                },
                ..base.clone()
            },
            "`data.resize`",
        ),
        (
            TrainConfig {
                runtime: ember_train::config::RuntimeConfig {
                    workers: 1 << 40,
                    ..base.runtime.clone()
                },
                ..base.clone()
            },
            "`runtime.workers`",
        ),
        (
            TrainConfig {
                train_loop: ember_train::config::LoopConfig {
                    label_smoothing: 1.0,
                    ..base.train_loop.clone()
                },
                ..base.clone()
            },
            "`loop.label_smoothing`",
        ),
    ] {
        cases.push((config, needle));
    }
    for (config, needle) in cases {
        let err = trainer::Training::new(&config).launch().unwrap_err();
        assert!(
            err.to_string().contains(needle),
            "{} -> {err}",
            config.model
        );
        assert!(
            !config.runtime.out.join("checkpoint").exists(),
            "nothing trained for {needle}"
        );
    }
    // Resuming a directory without checkpoints.
    let err = trainer::Training::new(&base)
        .resume(true)
        .launch()
        .unwrap_err();
    assert!(err.to_string().contains("no complete checkpoint"), "{err}");
}

#[test]
fn a_diverging_run_stops_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("nan");
    let config = TrainConfig {
        optim: ember_train::config::OptimConfig {
            lr: 1e30,
            optimizer: OptimizerKind::Sgd,
            ..quick(&out).optim.clone()
        },
        schedule: ember_train::config::ScheduleConfig {
            kind: ScheduleKind::Constant,
            ..quick(&out).schedule.clone()
        },
        ..quick(&out)
    };
    let err = trainer::Training::new(&config).launch().unwrap_err();
    assert!(
        matches!(err, TrainError::NonFinite { epoch: 1, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("`optim.lr`"), "{err}");
    assert!(
        !out.join("final.bpk").exists(),
        "no weights written from a diverged run"
    );
    assert!(
        !out.join("checkpoint/model-1.bpk").exists(),
        "the bad epoch is not checkpointed"
    );
}

#[test]
fn early_stopping_stops_and_keeps_the_best_epoch() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("es");
    // A learning rate of ~0 cannot improve validation accuracy after the first epoch.
    let config = TrainConfig {
        data: ember_train::config::DataConfig {
            train_limit: Some(128),
            ..quick(&out).data.clone()
        },
        optim: ember_train::config::OptimConfig {
            lr: 1e-12,
            ..quick(&out).optim.clone()
        },
        train_loop: ember_train::config::LoopConfig {
            epochs: 6,
            early_stop_patience: Some(1),
            monitor: Monitor::ValAccuracy,
            ..quick(&out).train_loop.clone()
        },
        schedule: ember_train::config::ScheduleConfig {
            kind: ScheduleKind::Constant,
            ..quick(&out).schedule.clone()
        },
        ..quick(&out)
    };
    let outcome = trainer::Training::new(&config).launch().unwrap();
    assert!(outcome.stopped_early);
    assert_eq!(
        outcome.records.len(),
        2,
        "stops after one epoch without improvement"
    );
    assert_eq!(outcome.best_epoch, Some(1));
    assert!(out.join("best.bpk").is_file());
}

/// ReduceLROnPlateau in a run: each epoch's rate is PyTorch's rule applied to the validation
/// losses before it, and a run stopped after epoch 2 and resumed has the same rates.
#[test]
fn plateau_follows_the_validation_metric_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let plateau = |out: &std::path::Path| {
        let mut c = quick(out);
        c.data.train_limit = Some(256);
        c.train_loop.epochs = 5;
        c.train_loop.monitor = Monitor::ValLoss;
        c.schedule.kind = ScheduleKind::Plateau;
        c.schedule.patience = 0;
        c.schedule.gamma = 0.5;
        // Only a loss 60% below the best counts as better: the rate drops in this short run.
        c.schedule.threshold = 0.6;
        c.runtime.diagnostics = false;
        c
    };
    let config = plateau(&dir.path().join("straight"));
    let whole = trainer::Training::new(&config).launch().unwrap();
    let shape = config.schedule.typed();
    let losses: Vec<f64> = whole.records.iter().map(|r| r.val_loss.unwrap()).collect();
    let rates: Vec<f64> = whole.records.iter().map(|r| r.lr.unwrap()).collect();
    for (e, rate) in rates.iter().enumerate() {
        let want = ember_train::schedule::plateau_lr(&shape, 2e-3, Monitor::ValLoss, &losses[..e]);
        assert!(
            (rate - want).abs() < 1e-12 * want,
            "epoch {}: {rate} vs {want}",
            e + 1
        );
    }
    assert_eq!(rates[0], 2e-3);
    let drops = rates.windows(2).filter(|w| w[1] < w[0]).count();
    assert!(drops >= 2, "losses {losses:?}, rates {rates:?}");

    let killed = plateau(&dir.path().join("killed"));
    let hook: ember_train::logger::EpochHook =
        std::sync::Arc::new(|r: &ember_train::logger::EpochRecord| r.epoch == 2);
    trainer::Training::new(&killed)
        .with_hook(hook)
        .launch()
        .unwrap();
    let resumed = trainer::Training::new(&killed)
        .resume(true)
        .launch()
        .unwrap();
    let again: Vec<f64> = resumed.records.iter().map(|r| r.lr.unwrap()).collect();
    assert_eq!(again, rates);
}

/// A linear classifier on flattened 1x2x2 images, for checking losses by hand.
#[derive(burn::module::Module, Debug)]
struct Flat {
    lin: burn::nn::Linear,
}

impl ember_train::Network for Flat {
    fn forward(&self, images: burn::tensor::Tensor<4>) -> burn::tensor::Tensor<2> {
        self.lin.forward(images.flatten::<2>(1, 3))
    }
}

/// Label smoothing changes the training loss to `(1 - eps) CE + eps * mean_k(-log p_k)` and
/// leaves validation's plain cross-entropy alone; flip TTA averages an image's logits with
/// its mirror's.
#[test]
fn label_smoothing_and_flip_tta_compute_what_they_say() {
    use burn::tensor::{Int, Tensor, TensorData};
    use burn::train::{InferenceStep, TrainStep};
    use ember_data::loader::ImageBatch;
    let device = burn::tensor::Device::flex().autodiff();
    device.seed(5);
    let net = Flat {
        lin: burn::nn::LinearConfig::new(4, 3).init(&device),
    };
    let pixels = vec![0.5f32, -1.0, 2.0, 0.25, 1.0, 0.0, -0.5, 1.5];
    let images = Tensor::<4>::from_data(TensorData::new(pixels.clone(), [2, 1, 2, 2]), &device);
    let targets = Tensor::<1, Int>::from_data(TensorData::new(vec![2i64, 0], [2]), &device);
    let logits: Vec<f64> = ember_train::Network::forward(&net, images.clone())
        .into_data()
        .convert::<f64>()
        .try_to_vec::<f64>()
        .unwrap();
    // By hand: per image, CE = -log p_t and the uniform part -mean_k log p_k.
    let (mut ce, mut uniform) = (0.0, 0.0);
    for (i, t) in [2usize, 0].into_iter().enumerate() {
        let z = &logits[i * 3..i * 3 + 3];
        let lse = z.iter().map(|v| v.exp()).sum::<f64>().ln();
        ce += lse - z[t];
        uniform += z.iter().map(|v| lse - v).sum::<f64>() / 3.0;
    }
    let (ce, uniform) = (ce / 2.0, uniform / 2.0);
    let eps = 0.2;
    let model = ember_train::Classifier::new(net).with_label_smoothing(Some(eps as f32));
    let batch = || ImageBatch {
        images: images.clone(),
        targets: targets.clone(),
    };
    let train: f64 = TrainStep::step(&model, batch())
        .item
        .loss
        .mean()
        .into_scalar();
    let valid: f64 = InferenceStep::step(&model, batch())
        .loss
        .mean()
        .into_scalar();
    assert!(
        (train - ((1.0 - eps) * ce + eps * uniform)).abs() < 1e-5,
        "{train}"
    );
    assert!((valid - ce).abs() < 1e-5, "{valid} vs {ce}");

    // Flip TTA: the mirror of [[a, b], [c, d]] is [[b, a], [d, c]].
    let mirrored: Vec<f32> = pixels.chunks(2).flat_map(|row| [row[1], row[0]]).collect();
    let flipped = Tensor::<4>::from_data(TensorData::new(mirrored, [2, 1, 2, 2]), &device);
    let expected = (ember_train::Network::forward(&model.net, images.clone())
        + ember_train::Network::forward(&model.net, flipped))
        / 2.0;
    let got = ember_train::eval::tta_logits(&model.net, images, ember_train::config::Tta::Flip);
    let (got, expected): (Vec<f32>, Vec<f32>) = (
        got.into_data().try_to_vec::<f32>().unwrap(),
        expected.into_data().try_to_vec::<f32>().unwrap(),
    );
    for (a, b) in got.iter().zip(&expected) {
        assert!((a - b).abs() < 1e-6, "{got:?} vs {expected:?}");
    }
}

/// Epoch losses are means over images: the metric sees each batch's loss once per image, so a
/// short last batch weighs by its size (Burn's loss metric weights by the loss tensor's
/// length; with a one-element loss every batch weighed the same).
#[test]
fn epoch_loss_weights_batches_by_their_images() {
    use burn::tensor::{Int, Tensor, TensorData};
    use burn::train::InferenceStep;
    use burn::train::metric::Adaptor;
    use burn::train::metric::{LossInput, LossMetric, Metric, MetricMetadata, Numeric};
    use ember_data::loader::ImageBatch;
    let device = burn::tensor::Device::flex();
    device.seed(6);
    let model = ember_train::Classifier::new(Flat {
        lin: burn::nn::LinearConfig::new(4, 3).init(&device),
    });
    let batch = |n: usize, seed: f32| ImageBatch {
        images: Tensor::<4>::from_data(
            TensorData::new(
                (0..4 * n)
                    .map(|i| (i as f32 * 0.37 + seed).sin())
                    .collect::<Vec<_>>(),
                [n, 1, 2, 2],
            ),
            &device,
        ),
        targets: Tensor::<1, Int>::from_data(
            TensorData::new((0..n as i64).map(|i| i % 3).collect::<Vec<_>>(), [n]),
            &device,
        ),
    };
    let (full, short) = (batch(4, 0.0), batch(1, 1.0));
    let mut metric = LossMetric::new();
    let meta = MetricMetadata {
        progress: burn::data::dataloader::Progress {
            items_processed: 1,
            items_total: 1,
            unit: None,
        },
        iteration: Some(0),
        lr: None,
    };
    let mut per_batch = Vec::new();
    for b in [full, short] {
        let n = b.targets.dims()[0];
        let out = InferenceStep::step(&model, b);
        assert_eq!(out.loss.dims(), [n], "one loss per image");
        per_batch.push((out.loss.clone().mean().into_scalar::<f64>(), n));
        let input: LossInput = out.adapt();
        metric.update(&input, &meta).unwrap();
    }
    let by_images = (per_batch[0].0 * 4.0 + per_batch[1].0) / 5.0;
    let by_batches = (per_batch[0].0 + per_batch[1].0) / 2.0;
    assert!(
        (by_images - by_batches).abs() > 1e-3,
        "the test needs batches that differ"
    );
    let value = metric.running_value().expect("a running value").current();
    assert!((value - by_images).abs() < 1e-6, "{value} vs {by_images}");
}

/// `--out` pointing at a directory of the user's own (not empty, no `run.json`): refused,
/// and the user's file is left as it was.
#[test]
fn refuses_to_write_into_a_directory_it_did_not_make() {
    let dir = tempfile::tempdir().unwrap();
    let mine = dir.path().join("notes.txt");
    std::fs::write(&mine, "my thesis").unwrap();
    let e = trainer::Training::new(&quick(dir.path()))
        .launch()
        .unwrap_err();
    assert!(
        e.to_string().contains("run.json") && e.to_string().contains("another `runtime.out`"),
        "{e}"
    );
    assert_eq!(std::fs::read_to_string(&mine).unwrap(), "my thesis");
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "nothing written"
    );
}

/// A damaged `run.json` (no classes, an impossible input shape) is a typed error naming the
/// file when it is read, not a panic later in `predict`.
#[test]
fn a_damaged_run_json_is_an_error_naming_it() {
    use ember_train::run::{RunDir, RunInfo};
    let dir = tempfile::tempdir().unwrap();
    let run = RunDir::new(dir.path());
    let good = RunInfo {
        model: "lenet5_modern".into(),
        model_config: Some(ember_models::ModelConfig::from_name("lenet5_modern").unwrap()),
        input: [1, 28, 28],
        classes: (0..10).map(|c| c.to_string()).collect(),
        eval_transforms: Vec::new(),
        dataset: ember_data::DatasetSpec::Mnist,
    };
    run.save_info(&good).unwrap();
    assert_eq!(run.load_info().unwrap().classes.len(), 10);
    for (damage, expect) in [
        (
            RunInfo {
                classes: Vec::new(),
                ..good.clone()
            },
            "no classes",
        ),
        (
            RunInfo {
                input: [1, 0, 28],
                ..good.clone()
            },
            "image shape",
        ),
    ] {
        run.save_info(&damage).unwrap();
        let e = run.load_info().unwrap_err().to_string();
        assert!(e.contains("run.json") && e.contains(expect), "{e}");
    }
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".part"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
}

#[test]
fn a_failing_metric_log_does_not_end_the_run() {
    // After epoch 1, a file takes the place of the folder Burn's file metric logger wants for
    // epoch 2 (as a full disk would, its writes fail; Burn's logger panics on them).
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let blocker = out.join("train").join("epoch-2");
    let hook: ember_train::logger::EpochHook = std::sync::Arc::new(move |r| {
        if r.epoch == 1 {
            std::fs::create_dir_all(blocker.parent().unwrap()).unwrap();
            std::fs::write(&blocker, b"in the way").unwrap();
        }
        false
    });
    let events = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = events.clone();
    let outcome = trainer::Training::new(&quick(&out))
        .with_hook(hook)
        .on_event(move |e| seen.lock().unwrap().push(e.clone()))
        .launch()
        .unwrap();
    assert_eq!(outcome.records.len(), 2, "both epochs trained");
    // The failure is reported once, as a warning through the run's events.
    let events = events.lock().unwrap().clone();
    let failed: Vec<_> = events
        .iter()
        .filter(|e| matches!(e, trainer::Event::LogFailed(m) if m.contains("Burn's metric log")))
        .collect();
    assert_eq!(failed.len(), 1, "{events:?}");
    assert!(failed[0].is_warning());
    // The best checkpoint still follows the validation accuracy (answered by Ember's logger).
    let best = outcome.best_epoch.unwrap();
    let acc = |e: usize| outcome.records[e - 1].val_accuracy.unwrap();
    assert!(
        acc(best) >= acc(1) && acc(best) >= acc(2),
        "{:?}",
        outcome.records
    );
    assert!(out.join("best.bpk").is_file() && out.join("report.json").is_file());
}

/// `--devices N`: Burn sums the devices' gradients, each of its own batch's mean loss; with the
/// loss scaled by `1/N` the sum is the gradient of the mean loss over all `N` batches, i.e.
/// one device's gradient on the whole global batch, as PyTorch's DistributedDataParallel.
#[test]
fn scaled_device_gradients_sum_to_the_global_batch_gradient() {
    use burn::tensor::{Int, Tensor, TensorData};
    use burn::train::TrainStep;
    use ember_data::loader::ImageBatch;
    let device = burn::tensor::Device::flex().autodiff();
    device.seed(8);
    let net = Flat {
        lin: burn::nn::LinearConfig::new(4, 3).init(&device),
    };
    let pixels: Vec<f32> = (0..8 * 4).map(|i| (i as f32 * 0.61).sin()).collect();
    let labels = [0i64, 1, 2, 0, 2, 2, 1, 0];
    let batch = |from: usize, to: usize| ImageBatch {
        images: Tensor::<4>::from_data(
            TensorData::new(pixels[from * 4..to * 4].to_vec(), [to - from, 1, 2, 2]),
            &device,
        ),
        targets: Tensor::<1, Int>::from_data(
            TensorData::new(labels[from..to].to_vec(), [to - from]),
            &device,
        ),
    };
    let weight = net.lin.weight.id;
    let grad = |model: &ember_train::Classifier<Flat>, b: ImageBatch| -> Vec<f32> {
        let out = TrainStep::step(model, b);
        out.grads
            .get::<2>(weight)
            .unwrap()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap()
    };
    let whole = grad(&ember_train::Classifier::new(net.clone()), batch(0, 8));
    let scaled = ember_train::Classifier::new(net).with_grad_scale(0.5);
    let (first, second) = (grad(&scaled, batch(0, 4)), grad(&scaled, batch(4, 8)));
    let summed: Vec<f32> = first.iter().zip(&second).map(|(a, b)| a + b).collect();
    for (a, b) in summed.iter().zip(&whole) {
        assert!((a - b).abs() < 1e-6, "{summed:?} vs {whole:?}");
    }
    // Unscaled, the sum would be twice the global gradient.
    assert!(whole.iter().any(|g| g.abs() > 1e-3), "{whole:?}");
}

#[test]
fn every_committed_run_config_still_loads() {
    // The configs under docs/runs/ are the record of published figures: each must read back
    // (typed: dataset, optimizer, schedule...) and survive a save and a load unchanged.
    // The recipes under recipes/ (the examples' defaults) too.
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut files = Vec::new();
    let mut dirs = vec![repo.join("docs/runs"), repo.join("recipes")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "toml") {
                files.push(path);
            }
        }
    }
    assert!(files.len() >= 16, "{files:?}");
    let out = tempfile::tempdir().unwrap();
    for file in files {
        let config = TrainConfig::load(&file).unwrap_or_else(|e| panic!("{e}"));
        config
            .validate_options()
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let again = out.path().join("again.toml");
        config.save(&again).unwrap();
        assert_eq!(
            TrainConfig::load(&again).unwrap(),
            config,
            "{}",
            file.display()
        );
    }
}

#[test]
fn flat_and_sectioned_configs_read_the_same() {
    let flat = TrainConfig::from_toml(
        "model = \"resnet18_cifar\"\ndataset = \"cifar10\"\nlr = 0.05\nschedule = \"cosine\"\nepochs = 30\nbackend = \"flex\"\ncutout = 16\n",
    )
    .unwrap();
    let sectioned = TrainConfig::from_toml(
        "model = \"resnet18_cifar\"\n[data]\ndataset = \"cifar10\"\ncutout = 16\n[optim]\nlr = 0.05\n[schedule]\nkind = \"cosine\"\n[loop]\nepochs = 30\n[runtime]\nbackend = \"flex\"\n",
    )
    .unwrap();
    assert_eq!(flat, sectioned);
    assert_eq!(flat.optim.lr, 0.05);
    assert_eq!(flat.schedule.kind, ScheduleKind::Cosine);
    assert_eq!(flat.train_loop.epochs, 30);
    assert_eq!(flat.data.cutout, 16);
    // What a run writes is the sectioned form, and reads back equal.
    let text = toml::to_string_pretty(&flat).unwrap();
    assert!(
        text.contains("[optim]") && text.contains("[loop]"),
        "{text}"
    );
    assert_eq!(toml::from_str::<TrainConfig>(&text).unwrap(), flat);
    assert_eq!(TrainConfig::from_toml(&text).unwrap(), flat);
    // A key given both ways, or one no section knows, is an error that names it.
    let err = TrainConfig::from_toml("lr = 0.1\n[optim]\nlr = 0.2\n").unwrap_err();
    assert!(err.to_string().contains("`lr` is given twice"), "{err}");
    let err = TrainConfig::from_toml("[optim]\nlearning_rate = 0.2\n").unwrap_err();
    assert!(err.to_string().contains("learning_rate"), "{err}");
}
