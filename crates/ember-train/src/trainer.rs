//! One training run on Burn's Learner, from a [`TrainConfig`] to a run directory.

use crate::backend::Backend;
use crate::classifier::{Classifier, Network};
use crate::config::{Monitor, TrainConfig};
use crate::diagnostics::Diagnostics;
use crate::error::{Result, TrainError};
use crate::eval::{EvalReport, evaluate};
use crate::finetune::Freeze;
use crate::guard::NonFiniteGuard;
use crate::logger::{EpochHook, EpochRecord, Guarded, RunLogger, SharedRecords, read_metrics};
use crate::renderer::LineRenderer;
use crate::run::{AtomicCheckpointer, RunDir, RunInfo, write_atomic};
use crate::schedule::Schedule;
use crate::weights::LoadOptions;
use burn::data::dataloader::DataLoader;
use burn::data::dataset::Dataset;
use burn::lr_scheduler::module_lr_scheduler::ModuleLrScheduler;
use burn::module::Module;
use burn::module::ParamGroup;
use burn::tensor::Device;
use burn::train::checkpoint::{
    ComposedCheckpointingStrategy, KeepLastNCheckpoints, MetricCheckpointingStrategy,
};
use burn::train::logger::FileMetricLogger;
use burn::train::metric::store::{Aggregate, Direction, Split as MetricSplit};
use burn::train::metric::{AccuracyMetric, LearningRateMetric, LossMetric, TopKAccuracyMetric};
use burn::train::{
    ExecutionStrategy, Interrupter, Learner, MetricEarlyStoppingStrategy, MultiDeviceOptim,
    StoppingCondition, SupervisedTraining,
};
use ember_data::loader::{ImageBatch, ImageLoader, LoaderConfig};
use ember_data::split::{ClassSubset, Subset, train_val_split};
use ember_data::transform::{Preset, Transform};
use ember_data::{ClassificationDataset, DatasetSpec, ImageItem, Split};
use ember_models::ModelConfig;
use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The data of a run: the splits, their class names and the transforms.
pub struct RunData {
    /// Training images.
    pub train: Arc<dyn ClassificationDataset>,
    /// Validation images (empty without a validation split).
    pub valid: Arc<dyn ClassificationDataset>,
    /// The official test split, when the dataset has one.
    pub test: Option<Arc<dyn ClassificationDataset>>,
    /// Class names.
    pub classes: Vec<String>,
    /// `[C, H, W]` of the images the model sees.
    pub input: [usize; 3],
    /// Training transforms (augmentation + normalisation).
    pub train_transforms: Vec<Transform>,
    /// Evaluation transforms (deterministic).
    pub eval_transforms: Vec<Transform>,
}

/// Opens the dataset of `config` and splits it.
pub fn load_data(config: &TrainConfig) -> Result<RunData> {
    let spec: DatasetSpec = config.dataset.parse().map_err(TrainError::Config)?;
    let dir = config.data_dir.as_deref();
    let only = |ds: Arc<dyn ClassificationDataset>| -> Result<Arc<dyn ClassificationDataset>> {
        Ok(match &config.classes {
            Some(c) => Arc::new(ClassSubset::new(ds, c, None)?),
            None => ds,
        })
    };
    let full = only(spec.open(dir, Split::Train)?)?;
    let classes = full.classes().to_vec();
    let (train, valid): (
        Arc<dyn ClassificationDataset>,
        Arc<dyn ClassificationDataset>,
    ) = if config.val_split > 0.0 {
        let (t, v) = train_val_split(full, config.val_split, config.seed, true)?;
        (Arc::new(t), Arc::new(v))
    } else {
        let n = full.len();
        (
            Arc::new(Subset::new(full.clone(), (0..n).collect())),
            Arc::new(Subset::new(full, Vec::new())),
        )
    };
    let train: Arc<dyn ClassificationDataset> = match config.per_class {
        Some(n) => {
            let all: Vec<usize> = (0..classes.len()).collect();
            Arc::new(ClassSubset::new(train, &all, Some(n))?)
        }
        None => train,
    };
    let train: Arc<dyn ClassificationDataset> = match config.train_limit {
        Some(limit) if limit < train.len() => {
            // Evenly spaced items keep the class mix of the (shuffled-by-class) split.
            let step = train.len() as f64 / limit as f64;
            let idx = (0..limit).map(|i| (i as f64 * step) as usize).collect();
            Arc::new(Subset::new(train, idx))
        }
        _ => train,
    };
    let test = if spec.has_test_split() {
        Some(only(spec.open(dir, Split::Test)?)?)
    } else {
        None
    };
    let first = train
        .get(0)
        .map_err(|e| TrainError::Config(format!("cannot read the first training image: {e}")))?;
    let img = &first.image;
    let [h, w] = config.resize.unwrap_or([img.height, img.width]);
    let input = [img.channels, h, w];
    let stats = spec.stats().for_channels(img.channels);
    let eval_preset = if config.augment == Preset::Imagenet {
        Preset::Imagenet
    } else {
        Preset::None
    };
    Ok(RunData {
        train,
        valid,
        test,
        classes,
        input,
        train_transforms: {
            let mut t = config.augment.train([h, w], &stats);
            if config.cutout > 0 {
                t.push(Transform::Cutout {
                    size: config.cutout,
                });
            }
            t
        },
        eval_transforms: eval_preset.eval([h, w], &stats),
    })
}

/// The zoo model of `config`, fitted to `input` and `classes` classes, with `model_options`
/// applied; fails before training if the images do not fit the network.
pub fn model_config(
    config: &TrainConfig,
    input: [usize; 3],
    classes: usize,
    device: &Device,
) -> Result<ModelConfig> {
    let base = ModelConfig::from_name(&config.model)?;
    let base = if config.model_options.is_empty() {
        base
    } else {
        let mut value = serde_json::to_value(&base)
            .map_err(|e| TrainError::Config(format!("model config: {e}")))?;
        let options = serde_json::to_value(&config.model_options)
            .map_err(|e| TrainError::Config(format!("model_options: {e}")))?;
        if let (Some(obj), serde_json::Value::Object(opts)) = (value.as_object_mut(), options) {
            obj.extend(opts);
        }
        ModelConfig::try_from(value)
            .map_err(|e| TrainError::Config(format!("model_options: {e}")))?
    };
    let fitted = base.with_num_classes(classes).with_input(input);
    fitted.validate()?;
    if let Err(e) = fitted.summary(&config.model, input, device) {
        let [c, h, w] = input;
        let canonical = fitted.canonical_input();
        let hint = if c != canonical[0] {
            String::new()
        } else {
            format!(
                "; it was designed for {}x{}: try --resize {}",
                canonical[1], canonical[2], canonical[1]
            )
        };
        return Err(TrainError::Fit(format!(
            "{} cannot take {c}x{h}x{w} images: {e}{hint}",
            config.model
        )));
    }
    Ok(fitted)
}

/// The devices of `--backend` and `--devices`.
pub fn devices(backend: Backend, n: usize) -> Result<Vec<Device>> {
    let backend = backend.resolve().backend;
    #[allow(unused_mut)]
    let mut devices = vec![backend.device()?];
    if n > 1 {
        devices = match backend {
            #[cfg(feature = "wgpu")]
            Backend::Wgpu => (0..n)
                .map(|i| Device::wgpu(burn::tensor::DeviceKind::DiscreteGpu(i)))
                .collect(),
            #[cfg(feature = "cuda")]
            Backend::Cuda => (0..n).map(Device::cuda).collect(),
            // CPU backends have one device; several handles share its threads, which is what
            // the data-parallel test needs (two CPU "devices").
            _ => vec![devices[0].clone(); n],
        };
    }
    Ok(devices)
}

/// What a finished run produced.
#[derive(Debug, Clone)]
pub struct TrainOutcome {
    /// The run directory.
    pub run: RunDir,
    /// Every epoch's metrics, resumed ones included.
    pub records: Vec<EpochRecord>,
    /// The best epoch by the monitored metric (with validation).
    pub best_epoch: Option<usize>,
    /// The evaluation of the best (or final) weights on the test split, or the validation split.
    pub report: Option<EvalReport>,
    /// Which split the report is on.
    pub report_split: String,
    /// Whether early stopping ended the run before `epochs`.
    pub stopped_early: bool,
    /// Wall-clock seconds of this invocation's training.
    pub seconds: f64,
}

/// Trains the zoo model named in `config`. With `resume`, continues the run in `config.out`
/// from its last complete checkpoint.
pub fn train(config: &TrainConfig, resume: bool) -> Result<TrainOutcome> {
    if config.backend == Backend::Auto {
        println!("backend auto -> {}", config.backend.resolve().reason);
    }
    train_hooked(config, resume, None)
}

/// [`train`], asking `hook` after every epoch whether to stop (see [`EpochHook`]).
pub fn train_hooked(
    config: &TrainConfig,
    resume: bool,
    hook: Option<EpochHook>,
) -> Result<TrainOutcome> {
    config.validate()?;
    let devices = devices(config.backend, config.devices)?;
    let data = load_data(config)?;
    let model_cfg = model_config(config, data.input, data.classes.len(), &devices[0])?;
    let info = RunInfo {
        model: config.model.clone(),
        model_config: Some(model_cfg.clone()),
        input: data.input,
        classes: data.classes.clone(),
        eval_transforms: data.eval_transforms.clone(),
        dataset: config.dataset.clone(),
    };
    let Some(ft) = &config.finetune else {
        return train_network_hooked(
            config,
            data,
            info,
            resume,
            move |d: &Device| model_cfg.init(d).map_err(TrainError::from),
            hook,
        );
    };
    ft.validate(config.epochs)?;
    let head = model_cfg.head();
    let names: Vec<String> = crate::finetune::named_params(&model_cfg.init(&devices[0])?)
        .into_iter()
        .filter(|p| !p.bn_flag)
        .map(|p| p.name)
        .collect();
    let stages = model_cfg.stages();
    let prefixes = |f: &Freeze| crate::finetune::frozen_prefixes(f, &head, &stages, &names);
    let tuning = Tuning {
        frozen: prefixes(&ft.freeze)?,
        head_only: prefixes(&Freeze::AllButHead)?,
        head: head.clone(),
        backbone_lr_factor: ft.backbone_lr_factor,
        unfreeze_after: ft.unfreeze_after,
    };
    // A run's head predicts its own classes: other classes (even as many) get a new head.
    let other_classes = RunDir::new(&ft.from)
        .load_info()
        .is_ok_and(|source| source.classes != data.classes);
    let options = LoadOptions {
        allow_partial: ft.allow_partial,
        layout: ft.layout,
        new_head: true,
        reset_head: ft.reset_head || other_classes,
    };
    let run = RunDir::new(&config.out);
    // Fail before training when the weights do not fit; a run with a checkpoint starts from it.
    let pretrained = if run.latest_checkpoint().is_none() {
        run.ensure_ours()?;
        let (model, report) = crate::weights::load_into(
            model_cfg.init(&devices[0])?,
            &model_cfg,
            &ft.from,
            &options,
        )?;
        println!("loaded {}: {}", report.source.display(), report.describe());
        std::fs::create_dir_all(&run.root).map_err(|e| {
            TrainError::file(&run.root, format!("cannot create the run directory: {e}"))
        })?;
        let json = serde_json::to_string_pretty(&report)
            .map_err(|e| TrainError::Config(format!("load report: {e}")))?;
        write_atomic(&run.root.join("pretrained.json"), json.as_bytes())?;
        Some(model)
    } else {
        None
    };
    train_network_tuned(
        config,
        data,
        info,
        resume,
        move |d: &Device| {
            let mut model = model_cfg.init(d)?;
            if let Some(p) = &pretrained {
                // Copy the values into a model made on the training device: parameters keep
                // that model's gradient tracking.
                use burn::store::ModuleSnapshot;
                let result = model.apply(p.collect(None, None, true), None, None, true);
                if !result.errors.is_empty() || !result.missing.is_empty() {
                    return Err(TrainError::Config(format!(
                        "copying the pre-trained weights failed: {result}"
                    )));
                }
            }
            Ok(model)
        },
        hook,
        Some(&tuning),
    )
}

/// Trains any [`Network`] built by `build` on `data`: the zoo models and users' own.
pub fn train_network<N: Network>(
    config: &TrainConfig,
    data: RunData,
    info: RunInfo,
    resume: bool,
    build: impl Fn(&Device) -> Result<N>,
) -> Result<TrainOutcome> {
    train_network_hooked(config, data, info, resume, build, None)
}

/// [`train_network`], asking `hook` after every epoch whether to stop.
pub fn train_network_hooked<N: Network>(
    config: &TrainConfig,
    data: RunData,
    info: RunInfo,
    resume: bool,
    build: impl Fn(&Device) -> Result<N>,
    hook: Option<EpochHook>,
) -> Result<TrainOutcome> {
    train_network_tuned(config, data, info, resume, build, hook, None)
}

/// [`train_network_hooked`] with fine-tuning's frozen layers, learning-rate groups and
/// head-only epochs. `build` gives the starting network (pre-trained weights loaded).
pub fn train_network_tuned<N: Network>(
    config: &TrainConfig,
    data: RunData,
    info: RunInfo,
    resume: bool,
    build: impl Fn(&Device) -> Result<N>,
    hook: Option<EpochHook>,
    tuning: Option<&Tuning>,
) -> Result<TrainOutcome> {
    config.validate_options()?;
    let run = RunDir::new(&config.out);
    let devices = devices(config.backend, config.devices)?;
    let device = devices[0].clone();
    let start_epoch = if resume {
        let (newest, damaged) = run.resumable_checkpoint();
        for (epoch, why) in &damaged {
            eprintln!(
                "warning: checkpoint of epoch {epoch} is damaged, not resuming from it ({why})"
            );
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
            eprintln!(
                "warning: resuming from epoch {e} instead of {newer}; epochs after {e} are trained again"
            );
        }
        // A run killed after its last checkpoint but before its final weights and report
        // were written is finished by a resume (no epoch trains); a finished one is not.
        let finished = run.final_weights().is_file() && run.root.join("report.json").is_file();
        if e >= config.epochs && finished {
            return Err(TrainError::Config(format!(
                "the run already finished its {} epochs (checkpoint of epoch {e}); raise --epochs to train further",
                config.epochs
            )));
        }
        e
    } else {
        if run.latest_checkpoint().is_some() {
            return Err(TrainError::file(
                &run.root,
                "already holds a run's checkpoints; continue it with `ember train --resume RUN_DIR` or choose another --out",
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
    let loader = |ds: Arc<dyn ClassificationDataset>, transforms: Vec<Transform>, shuffle: bool| {
        let ds: Arc<dyn Dataset<ImageItem>> = Arc::new(AsItems(ds));
        ImageLoader::new(
            ds,
            transforms,
            LoaderConfig {
                batch_size: config.batch_size,
                shuffle,
                seed: config.seed,
                workers: config.workers,
                drop_last: false,
            },
            device.clone(),
        )
    };
    let train_items = data.train.len();
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
            Some(n) => vec![(n, t.head_only.clone()), (config.epochs, t.frozen.clone())],
            None => vec![(config.epochs, t.frozen.clone())],
        },
        None => vec![(config.epochs, Vec::new())],
    };
    let mut start_epoch = start_epoch;
    let mut seconds = 0.0;
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
            config.seed.wrapping_add(start_epoch as u64 * 7919),
            || build(&ad),
        )?;
        let (net, frozen_values) = crate::finetune::freeze_prefixes(net, &frozen);
        let mut model = Classifier::new(net)
            .with_label_smoothing(
                (config.label_smoothing > 0.0).then_some(config.label_smoothing as f32),
            )
            .with_grad_scale(1.0 / devices.len() as f32);
        if start_epoch > 0 {
            // The Learner loads this checkpoint too; loading it here first gives the model the
            // checkpoint's parameter ids, which the learning-rate groups below refer to.
            model = load_weights(model, &run.model_checkpoint(start_epoch))?;
        }
        if tuning.is_some() {
            let (trainable, _) = crate::finetune::count_trainable(&model.net);
            println!(
                "epochs {}-{end}: {trainable} parameters train, {frozen_values} frozen",
                start_epoch + 1
            );
        }
        let outcome = launch(
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
            println!("all {start_epoch} epochs trained; writing the final weights and report");
            load_weights(
                Classifier::new(build(&ad)?),
                &run.model_checkpoint(start_epoch),
            )?
            .net
        }
        None => return Err(TrainError::Config("nothing to train".into())),
    };
    let records = records.lock().unwrap_or_else(|e| e.into_inner()).clone();
    save_weights(&final_net, &run.final_weights())?;

    let best_epoch = best_epoch(&records, config.monitor);
    let mut eval_net = final_net.valid();
    if let Some(best) = best_epoch {
        // Checkpoints hold the Learner's model (the network inside a `Classifier`); best.bpk
        // and final.bpk hold the network alone, as `ember eval` and fine-tuning load it.
        let path = run.model_checkpoint(best);
        if path.is_file() {
            let best_net = load_weights(Classifier::new(final_net.clone()), &path)?.net;
            save_weights(&best_net, &run.best())?;
            eval_net = best_net.valid();
        }
    }
    let last_epoch = records.last().map_or(0, |r| r.epoch);
    let stopped_early = last_epoch < config.epochs;
    if !records.is_empty() {
        let name = config.model.clone();
        crate::plot::curves_png(&[(name, records.clone())], &run.curves())?;
    }

    // Evaluate on the official test split, else on the validation split.
    let (split_name, eval_ds) = match (&data.test, has_validation) {
        (Some(t), _) => ("test", Some(t.clone())),
        (None, true) => ("validation", Some(data.valid.clone())),
        (None, false) => ("training", None),
    };
    let eval_device = device.clone();
    let report = match eval_ds {
        Some(ds) => {
            let ds: Arc<dyn Dataset<ImageItem>> = Arc::new(AsItems(ds));
            let loader = ImageLoader::new(
                ds,
                data.eval_transforms.clone(),
                LoaderConfig {
                    batch_size: config.batch_size.max(64),
                    shuffle: false,
                    seed: config.seed,
                    workers: config.workers,
                    drop_last: false,
                },
                eval_device,
            )?;
            let report = evaluate(&eval_net, &loader, &data.classes, config.tta)?;
            let which = if best_epoch.is_some() {
                format!("best epoch ({})", best_epoch.unwrap_or(0))
            } else {
                "final weights".into()
            };
            report.save(
                &run.root,
                &format!(
                    "{} on the {} split of {}, {which}",
                    config.model, split_name, config.dataset
                ),
            )?;
            Some(report)
        }
        None => None,
    };
    Ok(TrainOutcome {
        run,
        records,
        best_epoch,
        report,
        report_split: split_name.to_string(),
        stopped_early,
        seconds,
    })
}

/// One Learner launch of a run: epochs `start_epoch + 1 ..= end`.
struct Phase<'a> {
    start_epoch: usize,
    end: usize,
    records: SharedRecords,
    hook: Option<EpochHook>,
    tuning: Option<&'a Tuning>,
}

/// How fine-tuning shapes a run (see [`crate::finetune`]): which parameters train when, at
/// which rate.
#[derive(Debug, Clone, Default)]
pub struct Tuning {
    /// Prefixes of the classifier head.
    pub head: Vec<String>,
    /// Prefixes frozen for the whole run (after any head-only epochs).
    pub frozen: Vec<String>,
    /// Everything but the head: frozen during the first `unfreeze_after` epochs.
    pub head_only: Vec<String>,
    /// The backbone's learning rate is the head's times this.
    pub backbone_lr_factor: f64,
    /// Head-only epochs before everything trains.
    pub unfreeze_after: Option<usize>,
}

#[allow(clippy::too_many_arguments)]
fn launch<N: Network>(
    config: &TrainConfig,
    run: &RunDir,
    mut model: Classifier<N>,
    phase: Phase,
    data: &RunData,
    devices: &[Device],
    loader: &dyn Fn(
        Arc<dyn ClassificationDataset>,
        Vec<Transform>,
        bool,
    ) -> std::result::Result<ImageLoader, ember_data::DataError>,
    train_items: usize,
    has_validation: bool,
) -> Result<(N, f64)> {
    let Phase {
        start_epoch,
        end,
        records,
        hook,
        tuning,
    } = phase;
    let train_loader = loader(data.train.clone(), data.train_transforms.clone(), true)?;
    train_loader.set_epoch(start_epoch as u64);
    let valid_loader = loader(data.valid.clone(), data.eval_transforms.clone(), false)?;
    // Optimizer (and schedule) steps per epoch. With N devices Burn's multi-device strategy
    // cuts each epoch into N slices (the last takes the remainder) and makes one step per
    // round of N batches, one from each slice: as many steps as the largest slice has batches.
    let steps_per_epoch =
        optimizer_steps_per_epoch(data.train.len(), config.batch_size, devices.len());
    // Four measured steps per epoch: enough for a mean; each costs about a tenth of a second
    // for LeNet on 2 cores (full MNIST, dev build: 14.4 s per epoch with 8 samples, 13.6 s without).
    let diagnostics = config
        .diagnostics
        .then(|| Diagnostics::new(steps_per_epoch.div_ceil(4), &run.root));
    if let Some(d) = &diagnostics {
        model = model.with_diagnostics(d.clone());
    }
    let k = data.classes.len().clamp(1, 5);
    // One metric, one direction, for both the best checkpoint and early stopping.
    let (best_strategy, early_stopping) = {
        let condition = StoppingCondition::NoImprovementSince {
            n_epochs: config.early_stop_patience.unwrap_or(1),
        };
        let split = MetricSplit::Valid;
        match config.monitor {
            Monitor::ValAccuracy => {
                let (m, d) = (AccuracyMetric::new(), Direction::Highest);
                (
                    MetricCheckpointingStrategy::new(&m, Aggregate::Mean, d, split.clone()),
                    MetricEarlyStoppingStrategy::new(&m, Aggregate::Mean, d, split, condition),
                )
            }
            Monitor::ValLoss => {
                let (m, d) = (LossMetric::new(), Direction::Lowest);
                (
                    MetricCheckpointingStrategy::new(&m, Aggregate::Mean, d, split.clone()),
                    MetricEarlyStoppingStrategy::new(&m, Aggregate::Mean, d, split, condition),
                )
            }
        }
    };
    let mut strategy = ComposedCheckpointingStrategy::builder().add(KeepLastNCheckpoints::new(2));
    if has_validation {
        strategy = strategy.add(best_strategy);
    }
    let ckpt = run.checkpoints();
    let interrupter = Interrupter::new();
    let mut training = SupervisedTraining::new(
        &run.root,
        Arc::new(train_loader) as Arc<dyn DataLoader<ImageBatch>>,
        Arc::new(valid_loader) as Arc<dyn DataLoader<ImageBatch>>,
    )
    .metrics((AccuracyMetric::new(), LossMetric::new()))
    .metric_train_numeric(TopKAccuracyMetric::new(k))
    .metric_valid_numeric(TopKAccuracyMetric::new(k))
    .metric_train_numeric(LearningRateMetric::new())
    .with_metric_logger(Guarded::new(
        FileMetricLogger::new(&run.root),
        "Burn's metric log (train/, valid/)",
    ))
    .with_metric_logger(
        RunLogger::new(run.metrics(), records.clone(), train_items, has_validation)
            .with_diagnostics(diagnostics)
            .with_hook(hook, interrupter.clone()),
    )
    .with_interrupter(interrupter)
    .with_custom_checkpointers(
        AtomicCheckpointer::new(&ckpt, "model"),
        AtomicCheckpointer::new(&ckpt, "optim"),
        AtomicCheckpointer::new(&ckpt, "scheduler"),
    )
    .with_checkpointing_strategy(strategy.build())
    .num_epochs(end);
    let guard = NonFiniteGuard::new(training.interrupter());
    training = training.metric_train(guard.clone());
    if config.early_stop_patience.is_some() {
        training = training.early_stopping(early_stopping);
    }
    if !(std::io::stdout().is_terminal() && std::env::var_os("EMBER_NO_TUI").is_none()) {
        training = training.renderer(Box::new(LineRenderer::new(Duration::from_secs_f64(
            config.log_every_secs,
        ))));
    }
    if devices.len() > 1 {
        training = training.with_training_strategy(
            ExecutionStrategy::multi(devices.to_vec(), MultiDeviceOptim::OptimMainDevice).into(),
        );
    }
    if start_epoch > 0 {
        training = training.checkpoint(start_epoch);
        println!("resuming {} from epoch {start_epoch}", run.root.display());
    }

    let schedule = Schedule::from_config(config, steps_per_epoch);
    let lr: ModuleLrScheduler = match tuning {
        Some(t) if t.backbone_lr_factor != 1.0 => {
            // Discriminative rates: the backbone follows the same schedule, scaled.
            let backbone = ParamGroup::from_ids(crate::finetune::backbone_ids(&model.net, &t.head));
            let scaled = schedule.scaled(t.backbone_lr_factor);
            ModuleLrScheduler::new(schedule).with_group(backbone, scaled)
        }
        _ => schedule.into(),
    };
    let optim = crate::optim::build_for(config, &model);
    let started = Instant::now();
    let result = training.launch(Learner::new(model, optim, lr));
    let seconds = started.elapsed().as_secs_f64();

    if let Some(value) = guard.tripped() {
        let last = run.latest_checkpoint();
        return Err(TrainError::NonFinite {
            value: format!("{value}"),
            epoch: last.map_or(1, |e| e + 1),
            last_good: last.map_or(run.checkpoints(), |e| run.model_checkpoint(e)),
        });
    }
    if let Some(e) = result.error {
        // The run directory keeps its newest complete checkpoint (checkpoints are written
        // atomically), so a run stopped by a full disk or an I/O error loses only this epoch.
        let way_on = match run.latest_checkpoint() {
            Some(epoch) => format!(
                "; the run keeps its checkpoint of epoch {epoch}: fix the cause (free disk space?) and continue with `ember train --resume {}`",
                run.root.display()
            ),
            None => String::new(),
        };
        return Err(TrainError::Training(format!("{e}{way_on}")));
    }
    Ok((result.model.net, seconds))
}

/// The best epoch by `monitor`, among epochs with a validation value.
pub fn best_epoch(records: &[EpochRecord], monitor: Monitor) -> Option<usize> {
    let key = |r: &EpochRecord| match monitor {
        Monitor::ValAccuracy => r.val_accuracy,
        Monitor::ValLoss => r.val_loss.map(|l| -l),
    };
    records
        .iter()
        .filter_map(|r| key(r).filter(|v| v.is_finite()).map(|v| (v, r.epoch)))
        // The first epoch reaching the best value wins ties, like the early-stopping rule.
        .fold(None, |best: Option<(f64, usize)>, (v, e)| match best {
            Some((bv, _)) if bv >= v => best,
            _ => Some((v, e)),
        })
        .map(|(_, e)| e)
}

/// Burn's backends keep one random generator per process (`Backend::seed` replaces it), and
/// parameters are initialised lazily, on first use, from that generator. Two trainings in one
/// process (`ember search --parallel 2`, parallel tests) would interleave their draws, and a
/// seed would no longer fix the initial weights. So seeding, building and drawing every
/// parameter happen under one process-wide lock, in the module's own (fixed) order.
///
/// Dropout masks are drawn from the same generator during training, so trainings with dropout
/// that run at the same time in one process still disturb each other's masks (not their
/// initial weights); runs in separate processes are unaffected.
pub fn seeded_init<M: Module>(
    device: &Device,
    seed: u64,
    build: impl FnOnce() -> Result<M>,
) -> Result<M> {
    static INIT: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = INIT.lock().unwrap_or_else(|e| e.into_inner());
    device.seed(seed);
    let module = build()?;
    module.visit(&mut Materialise);
    Ok(module)
}

/// Draws every lazily initialised parameter of a module (reading a parameter initialises it).
struct Materialise;

impl burn::module::ModuleVisitor for Materialise {
    fn visit_float<const D: usize>(
        &mut self,
        param: &burn::module::Param<burn::tensor::Tensor<D>>,
    ) {
        let _ = param.val();
    }
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

/// Saves a module's weights (burnpack) atomically.
pub fn save_weights<M: Module>(module: &M, path: &std::path::Path) -> Result<()> {
    let bytes = module
        .clone()
        .into_record()
        .into_bytes()
        .map_err(|e| TrainError::file(path, format!("cannot serialise the weights: {e}")))?;
    write_atomic(path, &bytes)
}

/// Loads burnpack weights into `module`, failing clearly on a foreign or corrupt file.
pub fn load_weights<M: Module>(module: M, path: &std::path::Path) -> Result<M> {
    let record = burn::store::ModuleRecord::load(path).map_err(|e| {
        TrainError::file(
            path,
            format!("not a readable Burn weights file (.bpk): {e}"),
        )
    })?;
    module
        .try_load_record(record)
        .map_err(|e| TrainError::file(path, format!("these weights do not fit the model: {e}")))
}

/// A [`ClassificationDataset`] seen as a plain Burn dataset of items (for the loader).
pub struct AsItems(pub Arc<dyn ClassificationDataset>);

impl Dataset<ImageItem> for AsItems {
    fn get(&self, index: usize) -> Result<ImageItem, burn::data::dataset::DatasetError> {
        self.0.get(index)
    }
    fn len(&self) -> usize {
        self.0.len()
    }
}

/// Optimizer steps in one epoch of `items` images, batches of `batch_size` on each of
/// `devices` devices (Burn's `split_dataloader`: `items / devices` each, the last device the
/// remainder; one step per round of one batch from each device).
pub fn optimizer_steps_per_epoch(items: usize, batch_size: usize, devices: usize) -> usize {
    let devices = devices.max(1);
    let largest = items - (items / devices) * (devices - 1);
    largest.div_ceil(batch_size.max(1))
}
