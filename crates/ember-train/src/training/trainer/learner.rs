//! Burn's Learner wired for one phase of a run: loaders, metrics, checkpointing, early
//! stopping, the NaN guard, renderers, devices, the schedule and the optimizer.

use super::strategy::StepStrategy;
use super::{AsItems, Event, Events, RunData, Tuning};
use crate::config::{Monitor, TrainConfig};
use crate::error::{Result, TrainError};
use crate::store::run::{AtomicCheckpointer, RunDir};
use crate::training::classifier::{Classifier, Network};
use crate::training::diagnostics::Diagnostics;
use crate::training::guard::NonFiniteGuard;
use crate::training::logger::{EpochHook, EpochRecord, Guarded, RunLogger, SharedRecords};
use crate::training::renderer::LineRenderer;
use burn::data::dataloader::DataLoader;
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
    StoppingCondition, SupervisedTraining, TrainingStrategy,
};
use ember_data::loader::{ImageBatch, ImageLoader, LoaderConfig};
use ember_data::transform::Transform;
use ember_data::{ClassificationDataset, ImageItem};
use std::io::IsTerminal;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What every phase of a run shares: its config, directory, data, devices, events, the
/// epoch records the logger keeps, and its optimizer steps (per full epoch, and in all).
pub(crate) struct RunContext<'a> {
    pub config: &'a TrainConfig,
    pub run: &'a RunDir,
    pub data: &'a RunData,
    pub devices: &'a [Device],
    pub events: &'a Events,
    pub records: SharedRecords,
    pub steps_per_epoch: usize,
    pub total_steps: usize,
    /// The process group of a distributed run.
    pub group: Option<crate::distributed::Group>,
}

impl<'a> RunContext<'a> {
    pub fn new(
        config: &'a TrainConfig,
        run: &'a RunDir,
        data: &'a RunData,
        devices: &'a [Device],
        events: &'a Events,
        records: SharedRecords,
    ) -> Self {
        // Optimizer (and schedule) steps per epoch. With N devices Burn's multi-device
        // strategy cuts each epoch into N slices (the last takes the remainder) and makes one
        // step per round of N batches, one from each slice: as many steps as the largest slice
        // has batches.
        let (steps_per_epoch, total_steps) = run_steps(config, data.train.len(), devices.len());
        Self {
            config,
            run,
            data,
            devices,
            events,
            records,
            steps_per_epoch,
            total_steps,
            group: None,
        }
    }

    /// Whether this process writes the run directory and shows progress: rank 0 of a
    /// distributed run, or the only process.
    pub fn is_root(&self) -> bool {
        self.group.as_ref().is_none_or(|g| g.rank() == 0)
    }

    /// The loader of `ds` through `transforms`: shuffled, dropping a short batch and stopping
    /// part-way as the config says, for training; in order and whole for validation.
    fn loader(
        &self,
        ds: &Arc<dyn ClassificationDataset>,
        transforms: &[Transform],
        training: bool,
    ) -> Result<ImageLoader> {
        let (l, r) = (&self.config.train_loop, &self.config.runtime);
        let items: Arc<dyn burn::data::dataset::Dataset<ImageItem>> = Arc::new(AsItems(ds.clone()));
        let loader = ImageLoader::new(
            items,
            transforms.to_vec(),
            LoaderConfig {
                batch_size: l.batch_size,
                shuffle: training,
                seed: l.seed,
                workers: r.workers,
                drop_last: training && l.drop_last,
                total_batches: (training && l.fractional_epochs.is_some())
                    .then_some(self.total_steps as u64),
                shard: self.group.as_ref().map(|g| (g.rank(), g.size())),
            },
            self.devices[0].clone(),
        )?;
        Ok(loader)
    }

    /// The last epoch the records reach (0 before the first).
    pub fn reached(&self) -> usize {
        self.records
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .last()
            .map_or(0, |r| r.epoch)
    }

    fn has_validation(&self) -> bool {
        !self.data.valid.is_empty()
    }
}

/// One Learner launch of a run: epochs `start_epoch + 1 ..= end`.
pub(crate) struct Phase<'a> {
    pub start_epoch: usize,
    pub end: usize,
    pub hook: Option<EpochHook>,
    pub tuning: Option<&'a Tuning>,
}

/// Trains one phase on Burn's Learner; returns the network, its EMA (with `loop.ema_decay`)
/// and the seconds it took.
pub(crate) fn launch<N: Network>(
    ctx: &RunContext,
    mut model: Classifier<N>,
    phase: Phase,
) -> Result<((N, Option<N>), f64)> {
    let (config, run) = (ctx.config, ctx.run);
    // Four measured steps per epoch: enough for a mean, and a small cost (about a tenth of
    // a second each for LeNet on 2 cores).
    let diagnostics = config
        .runtime
        .diagnostics
        .then(|| Diagnostics::new(ctx.steps_per_epoch.div_ceil(4), &run.root));
    if let Some(d) = &diagnostics {
        model = model.with_diagnostics(d.clone());
    }
    let mut training = supervised::<N>(ctx, &phase, diagnostics)?;
    let guard = NonFiniteGuard::new(training.interrupter());
    training = training.metric_train(guard.clone());
    if let Some(strategy) = training_strategy(ctx, &model)? {
        training = training.with_training_strategy(strategy);
    }
    if phase.start_epoch > 0 {
        training = training.checkpoint(phase.start_epoch);
        ctx.events.emit(Event::Resuming {
            run: run.root.clone(),
            epoch: phase.start_epoch,
        });
    }
    // Discriminative rates of fine-tuning: the backbone follows the same schedule, scaled.
    let backbone = phase
        .tuning
        .filter(|t| t.backbone_lr_factor != 1.0)
        .map(|t| {
            let ids = crate::training::finetune::backbone_ids(&model.net, &t.head);
            (ParamGroup::from_ids(ids), t.backbone_lr_factor)
        });
    let lr = crate::training::schedule::module_schedule(
        config,
        &model.net,
        ctx.steps_per_epoch,
        backbone,
        Some(ctx.records.clone()),
    )?;
    let optim = crate::training::optim::build_for(config, &model.net)?;
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
    let model = result.model;
    Ok(((model.net, model.ema), seconds))
}

/// Burn's `SupervisedTraining` of a phase: loaders, metrics, Ember's loggers, atomic
/// checkpoints (the last two and the best), early stopping, the renderer.
fn supervised<N: Network>(
    ctx: &RunContext,
    phase: &Phase,
    diagnostics: Option<Diagnostics>,
) -> Result<SupervisedTraining<Classifier<N>>> {
    let (config, run, data) = (ctx.config, ctx.run, ctx.data);
    let train_loader = ctx.loader(&data.train, &data.train_transforms, true)?;
    train_loader.set_epoch(phase.start_epoch as u64);
    let valid_loader = ctx.loader(&data.valid, &data.eval_transforms, false)?;
    let (best, early_stopping) = monitored(config);
    let mut strategy = ComposedCheckpointingStrategy::builder().add(KeepLastNCheckpoints::new(2));
    if ctx.has_validation() {
        strategy = strategy.add(best);
    }
    let ckpt = run.checkpoints();
    let interrupter = Interrupter::new();
    let items = data.train.len();
    let k = data.classes.len().clamp(1, 5);
    let mut training = SupervisedTraining::new(
        &run.root,
        Arc::new(train_loader) as Arc<dyn DataLoader<ImageBatch>>,
        Arc::new(valid_loader) as Arc<dyn DataLoader<ImageBatch>>,
    )
    .metrics((AccuracyMetric::new(), LossMetric::new()))
    .metric_train_numeric(TopKAccuracyMetric::new(k))
    .metric_valid_numeric(TopKAccuracyMetric::new(k))
    .metric_train_numeric(LearningRateMetric::new())
    .with_metric_logger(
        Guarded::new(
            FileMetricLogger::new(&run.root),
            "Burn's metric log (train/, valid/)",
        )
        .with_events(ctx.events.clone()),
    )
    .with_metric_logger(
        RunLogger::new(
            run.metrics(),
            ctx.records.clone(),
            items,
            ctx.has_validation(),
        )
        .with_epoch_items(epoch_items(
            config,
            ctx.steps_per_epoch,
            ctx.total_steps,
            items,
        ))
        .with_diagnostics(diagnostics)
        .with_hook(phase.hook.clone(), interrupter.clone())
        .with_events(ctx.events.clone()),
    )
    .with_interrupter(interrupter)
    .with_custom_checkpointers(
        AtomicCheckpointer::new(&ckpt, "model"),
        AtomicCheckpointer::new(&ckpt, "optim"),
        AtomicCheckpointer::new(&ckpt, "scheduler"),
    )
    .with_checkpointing_strategy(strategy.build())
    .num_epochs(phase.end);
    if config.train_loop.early_stop_patience.is_some() {
        training = training.early_stopping(early_stopping);
    }
    if !ctx.is_root() || ctx.events.is_silent() {
        training = training.renderer(Box::new(crate::training::renderer::Silent));
    } else if crate::distributed::launched_by_mpi()
        || !(std::io::stdout().is_terminal() && std::env::var_os("EMBER_NO_TUI").is_none())
    {
        // Under `mpirun` stdout is a pseudo-terminal of the launcher's, not the user's: Burn's
        // dashboard cannot take it over (it fails, "No such device or address"), so rank 0
        // (of a run, or of a search's trials) prints progress lines.
        training = training.renderer(Box::new(LineRenderer::new(Duration::from_secs_f64(
            config.runtime.log_every_secs,
        ))));
    }
    Ok(training)
}

/// The best checkpoint and early stopping, on one metric in one direction (`loop.monitor`).
fn monitored(config: &TrainConfig) -> (MetricCheckpointingStrategy, MetricEarlyStoppingStrategy) {
    let condition = StoppingCondition::NoImprovementSince {
        n_epochs: config.train_loop.early_stop_patience.unwrap_or(1),
    };
    let split = MetricSplit::Valid;
    match config.train_loop.monitor {
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
}

/// The training strategy when Burn's single-device default is not it: Burn's multi-device
/// one, or Ember's step loop when something happens between steps (lookahead, freezing),
/// which Burn's loop has no hook for.
fn training_strategy<N: Network>(
    ctx: &RunContext,
    model: &Classifier<N>,
) -> Result<Option<TrainingStrategy<Classifier<N>>>> {
    let l = &ctx.config.train_loop;
    if ctx.devices.len() > 1 {
        let multi =
            ExecutionStrategy::multi(ctx.devices.to_vec(), MultiDeviceOptim::OptimMainDevice);
        return Ok(Some(multi.into()));
    }
    if l.lookahead.is_none() && l.ema_decay.is_none() && l.freeze.is_empty() && ctx.group.is_none()
    {
        return Ok(None);
    }
    let mut freeze = Vec::new();
    for f in &l.freeze {
        let ids = crate::training::optim::group_ids(&model.net, &f.params)?;
        freeze.push((f.epochs, ids.into_iter().collect()));
    }
    let strategy = StepStrategy {
        device: ctx.devices[0].clone().autodiff(),
        steps_per_epoch: ctx.steps_per_epoch,
        total_steps: ctx.total_steps,
        freeze,
        lookahead: l.lookahead.clone(),
        ema: l.ema_decay.is_some().then(|| l.clone()),
        group: ctx.group.clone(),
        classes: ctx.data.classes.len(),
    };
    Ok(Some(TrainingStrategy::Custom(Arc::new(strategy))))
}

/// The best epoch by `monitor`, among epochs with a validation value.
pub fn best_epoch(records: &[EpochRecord], monitor: Monitor) -> Option<usize> {
    records
        .iter()
        .filter_map(|r| {
            let v = monitor.score(r.monitored(monitor)?);
            v.is_finite().then_some((v, r.epoch))
        })
        // The first epoch reaching the best value wins ties, like the early-stopping rule.
        .fold(None, |best: Option<(f64, usize)>, (v, e)| match best {
            Some((bv, _)) if bv >= v => best,
            _ => Some((v, e)),
        })
        .map(|(_, e)| e)
}

/// The images epoch `e` (1-based) trains on: the split's size, or, with dropped short batches
/// or a fractional last epoch, its steps times the batch size (what the training rate in
/// `metrics.csv` is over).
pub fn epoch_items(
    config: &TrainConfig,
    steps_per_epoch: usize,
    total_steps: usize,
    items: usize,
) -> crate::training::logger::EpochItems {
    let batch = config.train_loop.batch_size;
    let cut = config.train_loop.drop_last || config.train_loop.fractional_epochs.is_some();
    Arc::new(move |e: usize| {
        if !cut {
            return items;
        }
        let steps = total_steps
            .saturating_sub(e.saturating_sub(1) * steps_per_epoch)
            .min(steps_per_epoch);
        (steps * batch).min(items)
    })
}

/// Optimizer steps in a full epoch of `items` training images, and in the whole run, for
/// `config` on `devices` devices: a dropped short batch is no step, and a fractional run
/// ends part-way through its last epoch.
pub fn run_steps(config: &TrainConfig, items: usize, devices: usize) -> (usize, usize) {
    let batch = config.train_loop.batch_size.max(1);
    let spe = if config.train_loop.drop_last && devices <= 1 {
        (items / batch).max(1)
    } else {
        optimizer_steps_per_epoch(items, batch, devices)
    };
    (spe, crate::training::schedule::total_steps(config, spe))
}

/// Optimizer steps in one epoch of `items` images, batches of `batch_size` on each of
/// `devices` devices (Burn's `split_dataloader`: `items / devices` each, the last device the
/// remainder; one step per round of one batch from each device).
pub fn optimizer_steps_per_epoch(items: usize, batch_size: usize, devices: usize) -> usize {
    let devices = devices.max(1);
    let largest = items - (items / devices) * (devices - 1);
    largest.div_ceil(batch_size.max(1))
}
