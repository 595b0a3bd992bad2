//! One run from start to end: the run directory checked (or continued), the phases trained.

use super::learner::{self, Phase};
use super::report::finish;
use super::{
    AsItems, Event, RunData, Setup, TrainOutcome, Tuning, devices, load_weights, seeded_init,
};
use crate::error::{Result, TrainError};
use crate::store::run::{RunDir, RunInfo, write_atomic};
use crate::training::classifier::{Classifier, Network};
use crate::training::logger::{SharedRecords, read_metrics};
use burn::data::dataset::Dataset;
use burn::tensor::Device;
use ember_data::loader::{ImageLoader, LoaderConfig};
use ember_data::transform::Transform;
use ember_data::{ClassificationDataset, ImageItem};
use std::sync::{Arc, Mutex};

/// Trains the network `build` makes (pre-trained weights loaded, for fine-tuning) on `data`:
/// checks or continues the run directory, then one Learner launch per phase (fine-tuning with
/// `unfreeze_after` has two), then [`finish`]es the run.
pub(crate) fn train_network<N: Network>(
    setup: &Setup,
    data: RunData,
    info: RunInfo,
    build: impl Fn(&Device) -> Result<N>,
    tuning: Option<&Tuning>,
) -> Result<TrainOutcome> {
    let Setup {
        config,
        resume,
        hook,
        events,
    } = setup;
    let (config, resume) = (*config, *resume);
    config.validate_options()?;
    let run = RunDir::new(&config.runtime.out);
    let devices = devices(config.runtime.backend, config.runtime.devices)?;
    let device = devices[0].clone();
    let start_epoch = if resume {
        let (newest, damaged) = run.resumable_checkpoint();
        for (epoch, why) in &damaged {
            events.emit(Event::DamagedCheckpoint {
                epoch: *epoch,
                why: why.clone(),
            });
        }
        let e = newest.ok_or_else(|| {
            let why = if damaged.is_empty() {
                "no complete checkpoint to resume from (model-N, optim-N and scheduler-N .bpk); start a new run instead".to_string()
            } else {
                format!(
                    "no readable checkpoint to resume from ({}); start a new run instead",
                    damaged.iter().map(|(_, w)| w.as_str()).collect::<Vec<_>>().join("; ")
                )
            };
            TrainError::file(run.checkpoints(), why)
        })?;
        if let Some((newer, _)) = damaged.first() {
            events.emit(Event::ResumingEarlier {
                epoch: e,
                newest: *newer,
            });
        }
        // A run killed after its last checkpoint but before its final weights and report
        // were written is finished by a resume (no epoch trains); a finished one is not.
        let finished = run.final_weights().is_file() && run.root.join("report.json").is_file();
        if e >= config.train_loop.epochs && finished {
            return Err(TrainError::Config(format!(
                "the run already finished its {} epochs (checkpoint of epoch {e}); raise `loop.epochs` to train further",
                config.train_loop.epochs
            )));
        }
        e
    } else {
        if run.latest_checkpoint().is_some() {
            return Err(TrainError::file(
                &run.root,
                "already holds a run's checkpoints; continue it with `ember train --resume RUN_DIR` or choose another `runtime.out`",
            ));
        }
        run.ensure_ours()?;
        0
    };
    std::fs::create_dir_all(&run.root).map_err(|e| {
        TrainError::file(&run.root, format!("cannot create the run directory: {e}"))
    })?;
    config.save(&run.config())?;
    run.save_info(&info)?;
    write_validation_list(&run, data.valid.as_ref())?;

    let ad = device.clone().autodiff();
    let train_items = data.train.len();
    let (_, total_steps) = learner::run_steps(config, train_items, devices.len());
    let loader = |ds: Arc<dyn ClassificationDataset>, transforms: Vec<Transform>, shuffle: bool| {
        let ds: Arc<dyn Dataset<ImageItem>> = Arc::new(AsItems(ds));
        ImageLoader::new(
            ds,
            transforms,
            LoaderConfig {
                batch_size: config.train_loop.batch_size,
                shuffle,
                seed: config.train_loop.seed,
                workers: config.runtime.workers,
                // Only the training loader drops a short batch and stops part-way.
                drop_last: shuffle && config.train_loop.drop_last,
                total_batches: (shuffle && config.train_loop.fractional_epochs.is_some())
                    .then_some(total_steps as u64),
            },
            device.clone(),
        )
    };
    let has_validation = !data.valid.is_empty();
    let records: SharedRecords = Arc::new(Mutex::new(if resume && run.metrics().is_file() {
        let mut r = read_metrics(&run.metrics())?;
        r.retain(|r| r.epoch <= start_epoch);
        r
    } else {
        Vec::new()
    }));

    // Phases: one Learner launch each. Plain training is one phase; fine-tuning with
    // `unfreeze_after = n` trains the head alone to epoch n, then resumes from that
    // checkpoint with everything trainable.
    let phases: Vec<(usize, Vec<String>)> = match tuning {
        Some(t) => match t.unfreeze_after {
            Some(n) => vec![
                (n, t.head_only.clone()),
                (config.train_loop.epochs, t.frozen.clone()),
            ],
            None => vec![(config.train_loop.epochs, t.frozen.clone())],
        },
        None => vec![(config.train_loop.epochs, Vec::new())],
    };
    let mut start_epoch = start_epoch;
    let (mut seconds, mut data_init_seconds) = (0.0, 0.0);
    let mut last = None;
    for (end, frozen) in phases {
        if end <= start_epoch {
            continue;
        }
        // Seeds: the backend RNG (initialisation, dropout) and, through the loaders, shuffles
        // and augmentation. A resumed run reseeds the backend with the epoch so that dropout
        // does not replay the first epoch's masks.
        let net = seeded_init(
            &device,
            config
                .train_loop
                .seed
                .wrapping_add(start_epoch as u64 * 7919),
            || build(&ad),
        )?;
        let (net, frozen_values) = crate::training::finetune::freeze_prefixes(net, &frozen);
        // A data-dependent initialisation (airbench's whitening) before the first step only:
        // a resumed run has it in its checkpoint. It counts as training time.
        let (net, init_seconds) = if start_epoch == 0 && config.train_loop.data_init_images > 0 {
            let started = std::time::Instant::now();
            let net = init_from_data(
                net,
                &data,
                config.train_loop.data_init_images,
                &ad,
                &config.model,
            )?;
            let seconds = started.elapsed().as_secs_f64();
            events.emit(Event::DataInit {
                images: config.train_loop.data_init_images.min(data.train.len()),
                seconds,
            });
            (net, seconds)
        } else {
            (net, 0.0)
        };
        seconds += init_seconds;
        data_init_seconds += init_seconds;
        let mut model = classifier(config, net)
            .with_label_smoothing(
                (config.train_loop.label_smoothing > 0.0)
                    .then_some(config.train_loop.label_smoothing as f32),
            )
            .with_grad_scale(1.0 / devices.len() as f32);
        if start_epoch > 0 {
            // The Learner loads this checkpoint too; loading it here first gives the model the
            // checkpoint's parameter ids, which the learning-rate groups below refer to.
            model = load_weights(model, &run.model_checkpoint(start_epoch))?;
        }
        if tuning.is_some() {
            let (trainable, _) = crate::training::finetune::count_trainable(&model.net);
            events.emit(Event::Phase {
                first: start_epoch + 1,
                last: end,
                trainable,
                frozen: frozen_values,
            });
        }
        let outcome = learner::launch(
            config,
            &run,
            model,
            Phase {
                start_epoch,
                end,
                records: records.clone(),
                hook: hook.clone(),
                tuning,
            },
            &data,
            &devices,
            &loader,
            train_items,
            has_validation,
            events,
        )?;
        seconds += outcome.1;
        last = Some(outcome.0);
        let reached = records
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .last()
            .map_or(0, |r| r.epoch);
        if reached < end {
            // Early stopping or a hook ended the run.
            break;
        }
        start_epoch = end;
    }
    let final_net = match last {
        Some(net) => net,
        // Every epoch was trained before a kill: finish from the last checkpoint.
        None if start_epoch > 0 => {
            events.emit(Event::Finishing {
                epochs: start_epoch,
            });
            load_weights(
                classifier(config, build(&ad)?),
                &run.model_checkpoint(start_epoch),
            )?
            .net
        }
        None => return Err(TrainError::Config("nothing to train".into())),
    };
    let records = records.lock().unwrap_or_else(|e| e.into_inner()).clone();
    finish(
        config,
        run,
        &data,
        records,
        final_net,
        (seconds, data_init_seconds),
        &device,
    )
}

/// `net` as the run trains it: with a lookahead average when the config asks for one (the
/// checkpoints then hold it, so every checkpoint of the run loads into this).
pub(crate) fn classifier<N: Network>(config: &crate::config::TrainConfig, net: N) -> Classifier<N> {
    let model = Classifier::new(net);
    if config.train_loop.lookahead.is_some() {
        model.with_average()
    } else {
        model
    }
}

/// `net` initialised from `count` training images, evenly spaced over the training split
/// (which keeps the class mix of a class-ordered folder), through the evaluation transforms.
fn init_from_data<N: Network>(
    net: N,
    data: &RunData,
    count: usize,
    device: &Device,
    model: &str,
) -> Result<N> {
    let n = data.train.len();
    let count = count.min(n);
    let [c, h, w] = data.input;
    let mut values = Vec::with_capacity(count * c * h * w);
    for k in 0..count {
        let i = (k as f64 * n as f64 / count as f64) as usize;
        let item = data.train.get(i).map_err(|e| {
            TrainError::Config(format!(
                "data-dependent init: cannot read training image {i}: {e}"
            ))
        })?;
        let img =
            ember_data::transform::apply_all(&data.eval_transforms, item.image, 0, 0, i as u64)
                .map_err(|e| TrainError::Config(format!("data-dependent init: image {i}: {e}")))?;
        values.extend_from_slice(&img.data);
    }
    let images = burn::tensor::Tensor::<4>::from_data(
        burn::tensor::TensorData::new(values, [count, c, h, w]),
        device,
    );
    net.init_from_data(images).ok_or_else(|| {
        TrainError::Config(format!(
            "`{model}` has no data-dependent initialisation; set loop.data_init_images = 0"
        ))
    })
}

/// Writes `validation.txt`, the held-out images one per line (`class/image.jpg`), when the
/// dataset can name them (an ImageFolder): the record of exactly which images a run never
/// trained on, which `benches/torch_cifar_parity.py` reads to hold out the same ones.
fn write_validation_list(run: &RunDir, valid: &dyn ClassificationDataset) -> Result<()> {
    let names: Option<Vec<String>> = (0..valid.len()).map(|i| valid.source(i)).collect();
    match names {
        Some(names) if !names.is_empty() => {
            let mut text = names.join("\n");
            text.push('\n');
            write_atomic(&run.root.join("validation.txt"), text.as_bytes())
        }
        _ => Ok(()),
    }
}
