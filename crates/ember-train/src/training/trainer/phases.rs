//! One run from start to end: the run directory checked (or continued), the phases trained.

use super::learner::{self, Phase, RunContext};
use super::report::finish;
use super::{Event, RunData, Setup, TrainOutcome, Tuning, devices, load_weights, seeded_init};
use crate::config::TrainConfig;
use crate::error::{Result, TrainError};
use crate::store::run::{RunDir, RunInfo, write_atomic};
use crate::training::classifier::{Classifier, Network};
use crate::training::logger::{SharedRecords, read_metrics};
use burn::tensor::Device;
use ember_data::ClassificationDataset;
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
    setup.config.validate_options()?;
    let group = crate::distributed::group(setup.config.runtime.distributed)?;
    // Ranks other than 0 write to a scratch directory of their own and print nothing.
    let rank_config;
    let silent = crate::events::Events::silent();
    let (config, events) = match &group {
        Some(g) => {
            check_ranks_agree(g.as_ref(), setup.config, &data)?;
            if g.rank() > 0 {
                let mut c = setup.config.clone();
                c.runtime.out = crate::distributed::scratch_dir(&c.runtime.out, g.rank());
                // Leftovers of an earlier job would make this one a resume.
                let _ = std::fs::remove_dir_all(&c.runtime.out);
                rank_config = c;
                (&rank_config, &silent)
            } else {
                (setup.config, &setup.events)
            }
        }
        None => (setup.config, &setup.events),
    };
    let run = RunDir::new(&config.runtime.out);
    let devices = devices(config.runtime.backend, config.runtime.devices)?;
    let start = match &group {
        Some(g) => shared_start_point(g.as_ref(), &run, config.train_loop.epochs, setup.resume)?,
        None => run.start_point(config.train_loop.epochs, setup.resume)?,
    };
    for (epoch, why) in &start.damaged {
        events.emit(Event::DamagedCheckpoint {
            epoch: *epoch,
            why: why.clone(),
        });
    }
    if let Some((newer, _)) = start.damaged.first() {
        events.emit(Event::ResumingEarlier {
            epoch: start.epoch,
            newest: *newer,
        });
    }
    let records = open_run(&run, config, &info, &data, setup.resume, start.epoch)?;
    let mut ctx = RunContext::new(config, &run, &data, &devices, events, records);
    ctx.group = group.clone();

    let mut start_epoch = start.epoch;
    let (mut seconds, mut data_init_seconds) = (0.0, 0.0);
    let mut last = None;
    for (end, frozen) in phases(config, tuning) {
        if end <= start_epoch {
            continue;
        }
        let (model, init_seconds) = phase_model(&ctx, &build, start_epoch, end, &frozen, tuning)?;
        seconds += init_seconds;
        data_init_seconds += init_seconds;
        let phase = Phase {
            start_epoch,
            end,
            hook: setup.hook.clone(),
            tuning,
        };
        let (net, phase_seconds) = learner::launch(&ctx, model, phase)?;
        seconds += phase_seconds;
        last = Some(net);
        if ctx.reached() < end {
            // Early stopping or a hook ended the run.
            break;
        }
        start_epoch = end;
    }
    let final_net = match last {
        Some(net) => net,
        // Every epoch was trained before a kill: finish from the last checkpoint.
        None if start_epoch > 0 => last_checkpoint(&ctx, &build, start_epoch)?,
        None => return Err(TrainError::Config("nothing to train".into())),
    };
    let records = ctx
        .records
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    if !ctx.is_root() {
        // Rank 0 saves the weights and evaluates them; this rank's files were scratch.
        let _ = std::fs::remove_dir_all(&run.root);
        let stopped_early = records.last().map_or(0, |r| r.epoch) < config.train_loop.epochs;
        return Ok(TrainOutcome {
            run,
            best_epoch: super::best_epoch(&records, config.train_loop.monitor),
            records,
            report: None,
            report_split: crate::inspect::eval::EvalSplit::Val,
            stopped_early,
            seconds,
            data_init_seconds,
        });
    }
    finish(
        config,
        run,
        &data,
        records,
        final_net,
        (seconds, data_init_seconds),
        &devices[0],
    )
}

/// Every rank must train the same thing: the config (but for the run directory, which only
/// rank 0 uses) and the data, by fingerprint, before the first step.
fn check_ranks_agree(
    group: &dyn crate::distributed::Collective,
    config: &TrainConfig,
    data: &RunData,
) -> Result<()> {
    use crate::distributed::{check_same, fingerprint};
    let text = toml::to_string(&config.to_table()?).unwrap_or_default();
    check_same(group, "config", fingerprint(text.as_bytes()))?;
    let mut seen = format!(
        "{} {} {:?} {:?}",
        data.train.len(),
        data.valid.len(),
        data.classes,
        data.input
    );
    let n = data.train.len();
    for k in 0..n.min(64) {
        let i = k * n / n.min(64);
        if let Ok(item) = data.train.get(i) {
            let sum: f64 = item.image.data.iter().map(|v| *v as f64).sum();
            seen.push_str(&format!(" {}:{sum:.6}", item.label));
        }
    }
    check_same(group, "training data", fingerprint(seen.as_bytes()))
}

/// Where a distributed run starts: rank 0's start point, and on a resume rank 0's checkpoint
/// of that epoch and its metrics, copied into every other rank's scratch directory, so that
/// each rank's Learner resumes from the same state without a shared file system.
fn shared_start_point(
    group: &dyn crate::distributed::Collective,
    run: &RunDir,
    epochs: usize,
    resume: bool,
) -> Result<crate::store::run::StartPoint> {
    let files = |epoch: usize| {
        let ckpt = run.checkpoints();
        vec![
            ckpt.join(format!("model-{epoch}.bpk")),
            ckpt.join(format!("optim-{epoch}.bpk")),
            ckpt.join(format!("scheduler-{epoch}.bpk")),
            run.metrics(),
        ]
    };
    if group.rank() == 0 {
        let start = run.start_point(epochs, resume)?;
        let mut epoch = (start.epoch as u64).to_le_bytes().to_vec();
        group.broadcast_bytes(&mut epoch);
        if start.epoch > 0 {
            for path in files(start.epoch) {
                let mut bytes = std::fs::read(&path).unwrap_or_default();
                group.broadcast_bytes(&mut bytes);
            }
        }
        return Ok(start);
    }
    let mut epoch = Vec::new();
    group.broadcast_bytes(&mut epoch);
    let epoch = u64::from_le_bytes(epoch.try_into().unwrap_or([0; 8])) as usize;
    if epoch > 0 {
        std::fs::create_dir_all(run.checkpoints())
            .map_err(|e| TrainError::file(run.checkpoints(), e))?;
        for path in files(epoch) {
            let mut bytes = Vec::new();
            group.broadcast_bytes(&mut bytes);
            write_atomic(&path, &bytes)?;
        }
    }
    run.start_point(epochs, epoch > 0)
}

/// Writes the run's config, description and validation list into its directory, and gives
/// the epoch records so far (a resumed run's, up to its checkpoint).
fn open_run(
    run: &RunDir,
    config: &TrainConfig,
    info: &RunInfo,
    data: &RunData,
    resume: bool,
    start_epoch: usize,
) -> Result<SharedRecords> {
    std::fs::create_dir_all(&run.root).map_err(|e| {
        TrainError::file(&run.root, format!("cannot create the run directory: {e}"))
    })?;
    config.save(&run.config())?;
    run.save_info(info)?;
    write_validation_list(run, data.valid.as_ref())?;
    let records = if resume && run.metrics().is_file() {
        let mut r = read_metrics(&run.metrics())?;
        r.retain(|r| r.epoch <= start_epoch);
        r
    } else {
        Vec::new()
    };
    Ok(Arc::new(Mutex::new(records)))
}

/// The network of the checkpoint of `epoch`, for a run killed after its last epoch's
/// checkpoint and before its final weights: the resume finishes it without training.
fn last_checkpoint<N: Network>(
    ctx: &RunContext,
    build: &impl Fn(&Device) -> Result<N>,
    epoch: usize,
) -> Result<(N, Option<N>)> {
    ctx.events.emit(Event::Finishing { epochs: epoch });
    let ad = ctx.devices[0].clone().autodiff();
    let model = classifier(ctx.config, build(&ad)?);
    let model = load_weights(model, &ctx.run.model_checkpoint(epoch))?;
    Ok((model.net, model.ema))
}

/// The phases of a run, one Learner launch each, as (last epoch, frozen prefixes). Plain
/// training is one phase; fine-tuning with `unfreeze_after = n` trains the head alone to
/// epoch n, then resumes from that checkpoint with everything trainable.
fn phases(config: &TrainConfig, tuning: Option<&Tuning>) -> Vec<(usize, Vec<String>)> {
    let epochs = config.train_loop.epochs;
    match tuning {
        Some(t) => match t.unfreeze_after {
            Some(n) => vec![(n, t.head_only.clone()), (epochs, t.frozen.clone())],
            None => vec![(epochs, t.frozen.clone())],
        },
        None => vec![(epochs, Vec::new())],
    }
}

/// The model a phase starts from: built from the seed, frozen where the phase says, from its
/// data-dependent initialisation on a fresh run, in its classifier, with the checkpoint's
/// weights on a resumed one. Also the seconds of the data-dependent initialisation.
fn phase_model<N: Network>(
    ctx: &RunContext,
    build: &impl Fn(&Device) -> Result<N>,
    start_epoch: usize,
    end: usize,
    frozen: &[String],
    tuning: Option<&Tuning>,
) -> Result<(Classifier<N>, f64)> {
    let (config, device) = (ctx.config, &ctx.devices[0]);
    let ad = device.clone().autodiff();
    // Seeds: the backend RNG (initialisation, dropout) and, through the loaders, shuffles
    // and augmentation. A resumed run reseeds the backend with the epoch so that dropout
    // does not replay the first epoch's masks.
    let seed = config
        .train_loop
        .seed
        .wrapping_add(start_epoch as u64 * 7919);
    let net = seeded_init(device, seed, || build(&ad))?;
    let (net, frozen_values) = crate::training::finetune::freeze_prefixes(net, frozen);
    // A data-dependent initialisation (airbench's whitening) before the first step only:
    // a resumed run has it in its checkpoint. It counts as training time.
    let images = config.train_loop.data_init_images;
    let (net, init_seconds) = if start_epoch == 0 && images > 0 {
        let started = std::time::Instant::now();
        let net = init_from_data(net, ctx.data, images, &ad, &config.model)?;
        let seconds = started.elapsed().as_secs_f64();
        ctx.events.emit(Event::DataInit {
            images: images.min(ctx.data.train.len()),
            seconds,
        });
        (net, seconds)
    } else {
        (net, 0.0)
    };
    let smoothing = config.train_loop.label_smoothing;
    let mut model = classifier(config, net)
        .with_label_smoothing((smoothing > 0.0).then_some(smoothing as f32))
        .with_grad_scale(1.0 / ctx.devices.len() as f32);
    if start_epoch > 0 {
        // The Learner loads this checkpoint too; loading it here first gives the model the
        // checkpoint's parameter ids, which the learning-rate groups refer to.
        model = load_weights(model, &ctx.run.model_checkpoint(start_epoch))?;
    }
    if tuning.is_some() {
        let (trainable, _) = crate::training::finetune::count_trainable(&model.net);
        ctx.events.emit(Event::Phase {
            first: start_epoch + 1,
            last: end,
            trainable,
            frozen: frozen_values,
        });
    }
    Ok((model, init_seconds))
}

/// `net` as the run trains it: with a lookahead average and a model EMA when the config asks
/// for them (the checkpoints then hold them, so every checkpoint of the run loads into this).
pub(crate) fn classifier<N: Network>(config: &TrainConfig, net: N) -> Classifier<N> {
    let mut model = Classifier::new(net);
    if config.train_loop.lookahead.is_some() {
        model = model.with_average();
    }
    if config.train_loop.ema_decay.is_some() {
        model = model.with_ema();
    }
    model
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
            "`{model}` has no data-dependent initialisation; set `loop.data_init_images` = 0"
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
