//! Everything a training run is made of, as one serde struct in sections: `ember train
//! --config FILE` reads it, and every run writes the full, resolved config to
//! `RUN_DIR/config.toml`.

use crate::backend::Backend;
use crate::distributed::Distributed;
use crate::error::{Result, TrainError};
use ember_data::DatasetSpec;
use ember_data::transform::{Augment, PadMode, Preset};
use knob::{Knob, Section};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

pub mod finetune;
pub mod knob;
pub mod typed;

pub use typed::{LrSchedule, OptimizerSpec};

/// The optimizers of d2l's optimisation chapter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OptimizerKind {
    /// Minibatch SGD; with `momentum > 0`, heavy-ball momentum; with `nesterov`, Nesterov's.
    Sgd,
    /// SGD with momentum (0.9 unless `momentum` says otherwise).
    Momentum,
    /// SGD with Nesterov momentum (0.9 unless `momentum` says otherwise).
    Nesterov,
    /// AdaGrad (Duchi et al. 2011).
    Adagrad,
    /// RMSProp (Tieleman & Hinton 2012), smoothing 0.99.
    Rmsprop,
    /// AdaDelta (Zeiler 2012), rho 0.9; `lr` scales the step (1.0 is the paper's).
    Adadelta,
    /// Adam (Kingma & Ba 2015).
    Adam,
    /// AdamW: Adam with decoupled weight decay (Loshchilov & Hutter 2019).
    Adamw,
}

impl OptimizerKind {
    /// All, in the book's order.
    pub const ALL: [OptimizerKind; 8] = [
        OptimizerKind::Sgd,
        OptimizerKind::Momentum,
        OptimizerKind::Nesterov,
        OptimizerKind::Adagrad,
        OptimizerKind::Rmsprop,
        OptimizerKind::Adadelta,
        OptimizerKind::Adam,
        OptimizerKind::Adamw,
    ];

    /// Its name in configs and on the command line (serde's).
    pub fn name(self) -> String {
        ember_data::names::name_of(&self)
    }
}

/// Learning-rate schedules; every one is a function of the optimizer step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ScheduleKind {
    /// `lr` throughout.
    Constant,
    /// `lr * gamma^floor(epoch / step_size)`.
    Step,
    /// `lr * gamma^epoch`.
    Exponential,
    /// Cosine annealing from `lr` to `min_lr` over the run.
    Cosine,
    /// Linear warm-up over `warmup_epochs`, then cosine annealing.
    #[serde(alias = "warmup_cosine")]
    WarmupCosine,
    /// Smith's one-cycle: cosine up from `lr / 25` to `lr` over 30% of the run, then down to
    /// `lr / 25e4` (PyTorch's `OneCycleLR` defaults). Only the learning rate cycles: PyTorch's
    /// `OneCycleLR` also cycles momentum (0.95 -> 0.85 -> 0.95) by default, which Burn's
    /// optimizers cannot change during a run; Ember keeps `momentum` constant.
    OneCycle,
    /// Piecewise linear through `knots`: `[fraction of the run, factor of lr]` pairs, e.g.
    /// airbench's `[[0, 0.2], [0.23, 1], [1, 0.07]]` (a knot at fraction `f` of `T` steps
    /// sits at step `floor(f T)`, as `np.interp` over `int(0.23 * T)` in the source).
    #[serde(alias = "piecewise_linear")]
    PiecewiseLinear,
    /// PyTorch's `ReduceLROnPlateau` on the monitored validation metric (`loop.monitor`):
    /// after `patience` epochs without an improvement of more than `threshold` (relative),
    /// the rate is multiplied by `gamma`, not below `min_lr`, then `cooldown` epochs pass
    /// before counting again.
    Plateau,
}

impl ScheduleKind {
    /// All of them.
    pub const ALL: [ScheduleKind; 8] = [
        ScheduleKind::Constant,
        ScheduleKind::Step,
        ScheduleKind::Exponential,
        ScheduleKind::Cosine,
        ScheduleKind::WarmupCosine,
        ScheduleKind::OneCycle,
        ScheduleKind::PiecewiseLinear,
        ScheduleKind::Plateau,
    ];

    /// Its name in configs and on the command line (serde's).
    pub fn name(self) -> String {
        ember_data::names::name_of(&self)
    }
}

/// The validation metric early stopping and "best" checkpoints watch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Monitor {
    /// Validation accuracy, higher is better.
    #[serde(alias = "accuracy")]
    ValAccuracy,
    /// Validation loss, lower is better.
    #[serde(alias = "loss")]
    ValLoss,
}

impl Monitor {
    /// `value` of this metric on a larger-is-better scale (a loss negated).
    pub fn score(self, value: f64) -> f64 {
        match self {
            Monitor::ValAccuracy => value,
            Monitor::ValLoss => -value,
        }
    }
}

/// Test-time augmentation for evaluation reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tta {
    /// Each image once.
    #[default]
    None,
    /// The mean of the logits of each image and its left-right mirror.
    Flip,
    /// Six views (airbench's `tta_level=2`): weight 1/4 for the image and its mirror, 1/8
    /// for each of the image shifted one pixel up-left and down-right (reflect padding) and
    /// their mirrors.
    #[serde(alias = "flip_translate")]
    FlipTranslate,
}

/// How the `cifar` preset mirrors its training images.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FlipMode {
    /// Each image with probability 1/2, afresh every epoch.
    #[default]
    Random,
    /// [`Transform::AltFlip`](ember_data::transform::Transform::AltFlip): half the images,
    /// chosen once, and the other half in odd epochs.
    Alternating,
    /// Never.
    None,
}

/// A group of parameters with its own learning rate and weight decay (PyTorch's optimizer
/// parameter groups), e.g. airbench's batch-norm biases:
/// `[[optim.groups]] params = "*.bn.beta"`, `lr_factor = 64`, `weight_decay = 2.08e-5`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParamGroupConfig {
    /// Parameter names (as in the weights file: `block1.conv1.bn.beta`) matched with `*` for
    /// any run of characters: `*.bn.beta`, `fc.*`, `whiten.bias`.
    pub params: String,
    /// The group's learning rate is the schedule's times this.
    #[serde(default = "one")]
    pub lr_factor: f64,
    /// The group's L2 penalty (default: `optim.weight_decay`).
    #[serde(default)]
    pub weight_decay: Option<f64>,
}

fn one() -> f64 {
    1.0
}

/// Lookahead (Zhang et al. 2019) as airbench94 uses it: every `every` steps the weights and
/// batch-norm statistics move to a running average `a <- d a + (1 - d) w`, `w <- a`, with
/// `d = decay * (step / total)^power`, and after the last step the network is the average.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LookaheadConfig {
    /// Steps between pulls.
    pub every: usize,
    /// The decay at the end of the run (airbench: 0.95^5).
    pub decay: f64,
    /// How the decay grows over the run: `(step / total)^power`.
    pub power: f64,
}

impl Default for LookaheadConfig {
    fn default() -> Self {
        Self {
            every: 5,
            decay: 0.95f64.powi(5),
            power: 3.0,
        }
    }
}

impl LookaheadConfig {
    /// The decay of the pull after optimizer step `step` (1-based) of `total`.
    pub fn decay_at(&self, step: u64, total: u64) -> f64 {
        self.decay * (step as f64 / total.max(1) as f64).powf(self.power)
    }
}

/// Parameters that stop training after some epochs: airbench's whitening bias trains for 3.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FreezeAfter {
    /// Parameter names, with `*` wildcards (as in [`ParamGroupConfig::params`]).
    pub params: String,
    /// Epochs they train for; from the next epoch on they get no update (no gradient step,
    /// no decay, momentum kept), as `requires_grad = False` gives in PyTorch.
    pub epochs: usize,
}

ember_data::named_enum!(
    OptimizerKind => "optimizer",
    ScheduleKind => "schedule",
    Monitor => "metric to monitor",
    Tta => "test-time augmentation",
    FlipMode => "flip",
);

/// Largest image side `data.resize`, `data.cutout` and `data.crop_padding` accept (written
/// out in their checks' messages).
pub const MAX_SIDE: usize = 8192;
/// Most loader threads `runtime.workers` accepts (written out in its check's message).
pub const MAX_WORKERS: usize = 256;

/// One training run, fully described, in sections: what to train on ([`DataConfig`]), how
/// to step ([`OptimConfig`]), the learning-rate schedule ([`ScheduleConfig`]), the loop around
/// it ([`LoopConfig`]), where and how it runs ([`RuntimeConfig`]), and fine-tuning.
///
/// Each section is declared with [`section!`](crate::section): a knob is one declaration
/// (doc, type, default, flag, checks) from which the CLI's flags, `--set`, the search spaces'
/// paths and the validation are derived ([`knob`]).
///
/// Files written before the sections existed (every key at the top level: `lr = 0.1`,
/// `schedule = "cosine"`) still load through [`TrainConfig::from_table`] (and so
/// [`TrainConfig::load`] and [`TrainConfig::from_toml`]): each knob's name found at the top
/// level is moved into its section first, so search spaces may also name knobs either way
/// (`lr` or `optim.lr`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    /// A zoo model name (`ember summary --list`).
    pub model: String,
    /// Overrides of the model's own configuration knobs, e.g. `{ width_divisor = 4 }`.
    pub model_options: toml::Table,
    /// The images.
    pub data: DataConfig,
    /// The optimizer.
    pub optim: OptimConfig,
    /// The learning-rate schedule.
    pub schedule: ScheduleConfig,
    /// Epochs, batches, early stopping, the final report.
    #[serde(rename = "loop")]
    pub train_loop: LoopConfig,
    /// Backend, devices, threads, the run directory, logging.
    pub runtime: RuntimeConfig,
    /// Start from pre-trained weights (`ember finetune`): a `[finetune]` table.
    pub finetune: Option<finetune::FinetuneConfig>,
}

crate::section! {
    /// What a run trains and validates on.
    pub struct DataConfig in "data", "Data" {
        /// `mnist`, `fashion-mnist`, `cifar10`, `cifar100`, `cifar100-coarse` or `folder:PATH`.
        dataset: DatasetSpec = DatasetSpec::Mnist; flag "dataset",
        /// Where the dataset is (or is downloaded to); default `$EMBER_DATA_DIR/<name>` or
        /// `~/.cache/ember/<name>`.
        data_dir: Option<PathBuf> = None; flag "data-dir",
        /// Fraction of the training set held out for validation (seeded, stratified; 0 for
        /// none).
        val_split: f64 = 0.1; flag "val-split";
            check |v| (0.0..1.0).contains(v) => "must be in [0, 1)",
        /// Use only the first N training images (after the split): quick experiments.
        train_limit: Option<usize> = None; flag "train-limit";
            check |v| *v != Some(0) => "must be at least 1",
        /// Keep only these classes (labels of the dataset), relabelled 0..k in this order:
        /// `5,6,7` or `5-9` on the command line.
        classes: Option<Vec<usize>> = None; flag "classes"; set set_classes;
            check |v| v.as_ref().is_none_or(|c| !c.is_empty()) => "needs at least one class",
        /// Train on at most N images of each class (after the split): few-shot fine-tuning.
        per_class: Option<usize> = None; flag "per-class";
            check |v| *v != Some(0) => "must be at least 1",
        /// Resize images to `[H, W]` (`N` or `H,W` on the command line; e.g. 224 for AlexNet
        /// on Fashion-MNIST, as d2l does).
        resize: Option<[usize; 2]> = None; flag "resize"; set set_resize;
            check |v| v.is_none_or(|[h, w]| h > 0 && w > 0) => "must be positive";
            check |v| v.is_none_or(|[h, w]| h <= MAX_SIDE && w <= MAX_SIDE)
                => "must be at most 8192 pixels a side",
        /// Training augmentation: a preset (`none`, `cifar` or `imagenet`) or a list of
        /// transforms (`[{ type = "trivial_augment_wide" }, { type = "normalize" }]`; see
        /// `Augment`). The four knobs below tune the presets.
        augment: Augment = Augment::Preset(Preset::None); flag "augment",
        /// Cutout (DeVries & Taylor 2017) after the preset: one `N x N` square at a uniformly
        /// random centre, clipped at the borders, set to 0 (the mean, after normalisation); 0
        /// turns it off. 16 is the CIFAR-10 recipe.
        cutout: usize = 0; flag "cutout"; check |v| *v <= MAX_SIDE => "must be at most 8192",
        /// Padding, in pixels a side, of the `cifar` preset's random crop (4 is the classic
        /// recipe; airbench translates by 2).
        crop_padding: usize = 4; flag "crop-padding";
            check |v| *v <= MAX_SIDE => "must be at most 8192",
        /// How that padding is filled: `zero`, `edge` or `reflect`.
        pad_mode: PadMode = PadMode::Zero; flag "pad-mode",
        /// The `cifar` preset's flip: `random`, `alternating` (half the images, chosen once,
        /// and the other half in odd epochs) or `none`.
        flip: FlipMode = FlipMode::Random; flag "flip",
    }
}

crate::section! {
    /// How each step changes the weights.
    pub struct OptimConfig in "optim", "Optimizer" {
        /// `sgd`, `momentum`, `nesterov`, `adagrad`, `rmsprop`, `adadelta`, `adam` or `adamw`.
        optimizer: OptimizerKind = OptimizerKind::Sgd; flag "optimizer",
        /// The (peak) learning rate.
        lr: f64 = 0.1; flag "lr"; check |v| *v > 0.0 && v.is_finite() => "must be > 0",
        /// Momentum (SGD, RMSProp); unset: 0.9 for `momentum`/`nesterov`, else 0.
        momentum: Option<f64> = None; flag "momentum";
            check |v| v.is_none_or(|m| (0.0..1.0).contains(&m)) => "must be in [0, 1)",
        /// Nesterov momentum for `sgd`.
        nesterov: bool = false; switch "nesterov",
        /// L2 penalty (decoupled for AdamW).
        weight_decay: f64 = 0.0; flag "weight-decay";
            check |v| *v >= 0.0 && v.is_finite() => "must be >= 0",
        /// No weight decay on rank-1 parameters: biases and batch-norm scales and shifts (timm).
        no_decay_norm_bias: bool = false; switch "no-decay-norm-bias",
        /// Clip each parameter's gradient to this L2 norm.
        grad_clip: Option<f64> = None; flag "grad-clip";
            check |v| v.is_none_or(|c| c > 0.0) => "must be > 0",
        /// Parameter groups with their own rate and decay; a parameter in several takes the
        /// last.
        groups: Vec<ParamGroupConfig> = Vec::new(),
    }
}

impl OptimConfig {
    /// The effective momentum.
    pub fn momentum(&self) -> f64 {
        match (self.momentum, self.optimizer) {
            (Some(m), _) => m,
            (None, OptimizerKind::Momentum | OptimizerKind::Nesterov) => 0.9,
            (None, _) => 0.0,
        }
    }
}

crate::section! {
    /// The learning rate over the run; `kind` says which of the other fields apply.
    pub struct ScheduleConfig in "schedule", "Learning-rate schedule" {
        /// `constant`, `step`, `exponential`, `cosine`, `warmup-cosine`, `one-cycle` (the
        /// learning rate only: unlike PyTorch's OneCycleLR, momentum is not cycled),
        /// `piecewise-linear` or `plateau` (ReduceLROnPlateau).
        kind: ScheduleKind = ScheduleKind::Constant; flag "schedule",
        /// Step decay: epochs between decays.
        step_size: usize = 30; flag "step-size",
        /// Step and exponential decay factor; plateau's reduction factor.
        gamma: f64 = 0.1; flag "gamma"; check |v| *v > 0.0 => "must be > 0",
        /// Plateau: epochs without improvement before the rate drops.
        patience: usize = 10; flag "patience",
        /// Plateau: the relative improvement that counts (`1e-4`: better than best x (1 -
        /// 1e-4) for a loss, best x (1 + 1e-4) for an accuracy).
        threshold: f64 = 1e-4; flag "threshold";
            check |v| *v >= 0.0 && v.is_finite() => "must be >= 0",
        /// Plateau: epochs after a drop before epochs without improvement count again.
        cooldown: usize = 0; flag "cooldown",
        /// Warm-up length in epochs (`warmup-cosine`).
        warmup_epochs: f64 = 1.0; flag "warmup-epochs"; check |v| *v >= 0.0 => "must be >= 0",
        /// Floor of the cosine schedules and of plateau's drops.
        min_lr: f64 = 0.0; flag "min-lr"; check |v| *v >= 0.0 => "must be >= 0",
        /// `piecewise-linear`: `[fraction of the run, factor of lr]`, fractions rising from 0
        /// to 1.
        knots: Vec<[f64; 2]> = Vec::new(),
    }
}

crate::section! {
    /// The training loop: how long, in which batches, what to watch, how to report.
    pub struct LoopConfig in "loop", "Training loop" {
        /// Passes over the training set; on the command line a fraction (9.9) ends the run
        /// part-way through its last epoch (`fractional_epochs`).
        epochs: usize = 10; flag "epochs"; set set_epochs;
            check |v| *v >= 1 => "must be at least 1",
        /// Images per batch.
        batch_size: usize = 128; flag "batch-size"; check |v| *v >= 1 => "must be at least 1",
        /// Label smoothing of the training loss: targets `(1 - eps) one_hot + eps / classes`
        /// (PyTorch's `label_smoothing`). Validation and reports use plain cross-entropy.
        label_smoothing: f64 = 0.0; flag "label-smoothing";
            check |v| (0.0..1.0).contains(v) => "must be in [0, 1)",
        /// Stop when the monitored metric has not improved for this many epochs.
        early_stop_patience: Option<usize> = None; flag "early-stop-patience";
            check |v| *v != Some(0) => "must be at least 1",
        /// What early stopping and the best checkpoint watch: `val_accuracy` or `val_loss`.
        monitor: Monitor = Monitor::ValAccuracy; flag "monitor",
        /// Test-time augmentation of the final evaluation report: `none`, `flip` (image and
        /// mirror averaged) or `flip-translate` (airbench's six views).
        tta: Tta = Tta::None; flag "tta",
        /// Seed of initialisation, split, shuffles, augmentation and dropout.
        seed: u64 = 42; flag "seed",
        /// A run of a fractional number of epochs (airbench's 9.9): the schedule spans
        /// `ceil(fractional_epochs * steps per epoch)` steps and the last epoch stops there;
        /// `epochs` must be its ceiling.
        fractional_epochs: Option<f64> = None;
            check |v| v.is_none_or(|f| f > 0.0 && f.is_finite()) => "must be > 0",
        /// Drop each epoch's last batch when it is short (so every step sees `batch_size` images).
        drop_last: bool = false; switch "drop-last",
        /// Initialise the network from this many training images before the first step (its
        /// data-dependent initialisation, e.g. airbench's whitening layer); 0: none. The images
        /// are evenly spaced over the training split, with the evaluation transforms.
        data_init_images: usize = 0; flag "data-init-images",
        /// Parameters that stop training after some epochs.
        freeze: Vec<FreezeAfter> = Vec::new(),
        /// Lookahead weight averaging.
        lookahead: Option<LookaheadConfig> = None,
        /// Model EMA (timm's `ModelEmaV3`): an exponential moving average of the weights and
        /// batch-norm statistics, `e <- d e + (1 - d) w` after every optimizer step, that
        /// validation, the best checkpoint and the report use; `ema.bpk` at the end. timm's
        /// `--model-ema-decay` is 0.9998; short CPU runs want less (0.99-0.999).
        ema_decay: Option<f64> = None; flag "ema-decay";
            check |v| v.is_none_or(|d| (0.0..1.0).contains(&d)) => "must be in [0, 1)",
        /// EMA warm-up (timm's `use_warmup`): the decay grows as `1 - (1 + t)^(-2/3)` up to
        /// `ema_decay`, so the average forgets the random start quickly.
        ema_warmup: bool = false; switch "ema-warmup",
    }
}

impl LoopConfig {
    /// The EMA decay at optimizer step `step` (1-based), as timm's `ModelEmaV3.get_decay`
    /// with `update_after_step = 0`: 0 at the first step (the average starts as a copy),
    /// then `ema_decay`, or with warm-up `min(ema_decay, 1 - (1 + t)^(-2/3))`, `t = step - 1`.
    pub fn ema_decay_at(&self, step: u64) -> Option<f64> {
        let decay = self.ema_decay?;
        let t = step.saturating_sub(1);
        if t == 0 {
            return Some(0.0);
        }
        Some(if self.ema_warmup {
            (1.0 - (1.0 + t as f64).powf(-2.0 / 3.0)).clamp(0.0, decay)
        } else {
            decay
        })
    }
}

crate::section! {
    /// Where the run runs and writes.
    pub struct RuntimeConfig in "runtime", "Runtime" {
        /// Which compiled backend runs the model: `auto` (a GPU backend if a GPU is there,
        /// else flex), `flex`, `ndarray`, `wgpu` or `cuda`.
        backend: Backend = Backend::Auto; flag "backend",
        /// Number of devices for Burn's data-parallel strategy (1 = single device).
        devices: usize = 1; flag "devices"; check |v| *v >= 1 => "must be at least 1",
        /// `none`, or `mpi`: data parallelism over MPI processes, launched by `mpirun -np N`
        /// or `srun` (a build with the `mpi` feature). `loop.batch_size` stays the global
        /// batch; each rank trains on its part and the gradients are averaged.
        distributed: Distributed = Distributed::None; flag "distributed",
        /// Loader worker threads.
        workers: usize = 2; flag "workers";
            check |v| *v <= MAX_WORKERS => "must be at most 256 (1-2 per core is plenty)",
        /// The run directory.
        out: PathBuf = PathBuf::from("runs/run"); flag "out",
        /// Print a progress line every this many seconds (when no terminal shows the dashboard).
        log_every_secs: f64 = 10.0; flag "log-every";
            check |v| v.is_finite() && *v > 0.0 && *v <= 1e9
                => "must be a number of seconds in (0, 1e9]",
        /// Record per-layer gradient norms and activation statistics of a few steps per epoch
        /// (`gradients.csv`, `activations.csv`; `ember viz gradients`).
        diagnostics: bool = true; switch_off "no-diagnostics",
    }
}

/// `data.classes` from the command line's `5,6,7` or `5-9` (or a TOML list).
fn set_classes(t: &mut toml::Table, name: &'static str, raw: &str) -> Result<(), String> {
    let list = match knob::typed_value::<Vec<usize>>(raw) {
        Ok(v) => v,
        Err(_) => toml::Value::try_from(ember_data::split::parse_class_list(raw)?)
            .map_err(|e| e.to_string())?,
    };
    t.insert(name.into(), list);
    Ok(())
}

/// `data.resize` from `N` (square), `H,W` or `HxW` (or a TOML pair).
fn set_resize(t: &mut toml::Table, name: &'static str, raw: &str) -> Result<(), String> {
    let [h, w] = match raw.trim().parse::<usize>() {
        Ok(n) if n > 0 => [n, n],
        _ => match knob::typed_value::<[usize; 2]>(raw) {
            Ok(v) => v.try_into().map_err(|e: toml::de::Error| e.to_string())?,
            Err(_) => parse_hw(raw)?,
        },
    };
    t.insert(
        name.into(),
        toml::Value::try_from([h, w]).map_err(|e| e.to_string())?,
    );
    Ok(())
}

/// `H,W` (or `HxW`): two positive integers.
pub fn parse_hw(s: &str) -> std::result::Result<[usize; 2], String> {
    let err = || format!("`{s}` is not H,W (two positive integers, e.g. 32,32)");
    let dims: Vec<usize> = s
        .split([',', 'x'])
        .map(|p| p.trim().parse::<usize>())
        .collect::<std::result::Result<_, _>>()
        .map_err(|_| err())?;
    match dims[..] {
        [h, w] if h > 0 && w > 0 => Ok([h, w]),
        _ => Err(err()),
    }
}

/// `loop.epochs` from a number of epochs: a whole number, or a fraction of one more (9.9 sets
/// `epochs = 10` and `fractional_epochs = 9.9`; a whole number clears the fraction).
fn set_epochs(t: &mut toml::Table, name: &'static str, raw: &str) -> Result<(), String> {
    let v: f64 = raw
        .trim()
        .parse()
        .map_err(|_| format!("takes a number of epochs (10, or 9.9), got `{raw}`"))?;
    if !(v > 0.0 && v <= 1e6) {
        return Err(format!("must be in (0, 1e6], got {raw}"));
    }
    t.insert(name.into(), toml::Value::Integer(v.ceil() as i64));
    if v.fract() != 0.0 {
        t.insert("fractional_epochs".into(), toml::Value::Float(v));
    } else {
        t.remove("fractional_epochs");
    }
    Ok(())
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            model: "lenet5_modern".into(),
            model_options: toml::Table::new(),
            data: DataConfig::default(),
            optim: OptimConfig::default(),
            schedule: ScheduleConfig::default(),
            train_loop: LoopConfig::default(),
            runtime: RuntimeConfig::default(),
            finetune: None,
        }
    }
}

impl TrainConfig {
    /// The knobs of every section of a training run, section by section (fine-tuning's are
    /// [`FinetuneConfig::KNOBS`](finetune::FinetuneConfig)).
    pub const SECTIONS: [&'static [Knob]; 5] = [
        DataConfig::KNOBS,
        OptimConfig::KNOBS,
        ScheduleConfig::KNOBS,
        LoopConfig::KNOBS,
        RuntimeConfig::KNOBS,
    ];

    /// Every knob of a training run, fine-tuning's included.
    pub fn knobs() -> impl Iterator<Item = &'static Knob> {
        Self::SECTIONS
            .into_iter()
            .chain([finetune::FinetuneConfig::KNOBS])
            .flatten()
    }

    /// The knob at a path (`optim.lr`), or at an older flat key (`lr`; `schedule` for
    /// `schedule.kind`).
    pub fn knob(path: &str) -> Option<&'static Knob> {
        let path = Self::sectioned_path(path);
        Self::knobs().find(|k| k.path == path)
    }

    /// The knob an older, flat file's top-level key names: `lr` is `optim.lr`, and
    /// `schedule` (when a string) is `schedule.kind`. Fine-tuning was never flat.
    fn flat_key(key: &str) -> Option<&'static Knob> {
        if key == "schedule" {
            return ScheduleConfig::KNOBS.iter().find(|k| k.name == "kind");
        }
        Self::SECTIONS.into_iter().flatten().find(|k| k.name == key)
    }

    /// Moves every key of the older, flat form found at the top level of `table` into its
    /// section; a key given both ways is an error.
    pub fn sectioned(mut table: toml::Table) -> std::result::Result<toml::Table, String> {
        let mut flat: Vec<_> = table
            .keys()
            .filter(|k| !(*k == "schedule" && table[*k].is_table()))
            .filter_map(|k| Some((k.clone(), Self::flat_key(k)?)))
            .collect();
        // `schedule = "cosine"` first: it is both a knob and, once moved, a section's name.
        flat.sort_by_key(|(k, _)| k != "schedule");
        for (key, knob) in flat {
            let Some(value) = table.remove(&key) else {
                continue;
            };
            let section = knob::section_table(&mut table, knob.section)?;
            if section.contains_key(knob.name) {
                return Err(format!(
                    "`{key}` is given twice, as `{key}` and `{}`",
                    knob.path
                ));
            }
            section.insert(knob.name.to_string(), value);
        }
        Ok(table)
    }

    /// The sectioned path of a key: `lr` is `optim.lr`; a sectioned or unknown path is
    /// returned as it is.
    pub fn sectioned_path(key: &str) -> String {
        match key.contains('.') {
            true => key.to_string(),
            false => Self::flat_key(key).map_or_else(|| key.to_string(), |k| k.path.to_string()),
        }
    }

    /// A config from a TOML table, sectioned or in the older flat form.
    pub fn from_table(table: toml::Table) -> std::result::Result<Self, String> {
        toml::Value::Table(Self::sectioned(table)?)
            .try_into()
            .map_err(|e: toml::de::Error| e.message().to_string())
    }

    /// A config from TOML text, sectioned or in the older flat form.
    pub fn from_toml(text: &str) -> std::result::Result<Self, String> {
        let table: toml::Table = toml::from_str(text).map_err(|e| e.message().to_string())?;
        Self::from_table(table)
    }

    /// This config as a TOML table (sections at the top).
    pub fn to_table(&self) -> Result<toml::Table> {
        match toml::Value::try_from(self) {
            Ok(toml::Value::Table(t)) => Ok(t),
            Ok(_) => Err(TrainError::Config("a config is a table".into())),
            Err(e) => Err(TrainError::Config(format!("cannot write the config: {e}"))),
        }
    }

    /// Sets `path` (`optim.lr`, `lr`, `model_options.width_divisor`, `loop.lookahead.every`)
    /// from text: the way `--set PATH=VALUE` and search spaces override a config. A knob's
    /// text is read as its type reads it ([`knob::set_value`]); any other path as a TOML
    /// literal, else a string.
    pub fn set(&mut self, path: &str, raw: &str) -> Result<()> {
        let mut table = self.to_table()?;
        let bad = |msg: String| TrainError::Knob {
            path: path.to_string(),
            msg,
        };
        match Self::knob(path) {
            Some(knob) => knob.set_in(&mut table, raw).map_err(bad)?,
            None => {
                let value =
                    knob::toml_literal(raw).unwrap_or_else(|| toml::Value::String(raw.to_string()));
                set_path(&mut table, &Self::sectioned_path(path), value).map_err(bad)?;
            }
        }
        *self = Self::from_table(table).map_err(|e| bad(format!("not a valid config: {e}")))?;
        Ok(())
    }

    /// Checks every option, the zoo model name included.
    pub fn validate(&self) -> Result<()> {
        self.validate_options()?;
        ember_models::ModelConfig::from_name(&self.model)?;
        Ok(())
    }

    /// Checks every option that would otherwise fail (or panic) after training started, except
    /// the model name (a custom network is not in the zoo): each knob's own checks, then the
    /// rules between knobs.
    pub fn validate_options(&self) -> Result<()> {
        self.data.check_knobs()?;
        self.optim.check_knobs()?;
        self.optim.check_kind_reads()?;
        self.schedule.check_knobs()?;
        self.schedule.check_kind_reads()?;
        self.train_loop.check_knobs()?;
        self.runtime.check_knobs()?;
        if let Some(ft) = &self.finetune {
            ft.check_knobs()?;
            ft.validate(self.train_loop.epochs)?;
        }
        self.validate_between()?;
        self.validate_recipe_options()
    }

    /// The rules that involve two knobs.
    fn validate_between(&self) -> Result<()> {
        if self.runtime.distributed == Distributed::Mpi {
            if !cfg!(feature = "mpi") {
                return Err(crate::distributed::not_built());
            }
            if self.runtime.devices > 1 {
                return broken(
                    "runtime.devices",
                    "must be 1 with `runtime.distributed` = mpi: one device per rank (start \
                     one rank per device)"
                        .into(),
                );
            }
        }
        if let Augment::Pipeline(_) = self.data.augment {
            let d = &self.data;
            let preset_knobs = [
                ("cutout", d.cutout != 0, "{ type = \"cutout\", size = 16 }"),
                (
                    "crop_padding",
                    d.crop_padding != 4,
                    "`padding` in its { type = \"random_crop\" }",
                ),
                (
                    "pad_mode",
                    d.pad_mode != PadMode::Zero,
                    "`pad_mode` in its { type = \"random_crop\" }",
                ),
                (
                    "flip",
                    d.flip != FlipMode::Random,
                    "{ type = \"alt_flip\" } or no flip",
                ),
            ];
            if let Some((name, _, instead)) = preset_knobs.iter().find(|k| k.1) {
                return broken(
                    &format!("data.{name}"),
                    format!(
                        "tunes a named preset, but `data.augment` is a list: write {instead} in \
                         the list instead"
                    ),
                );
            }
        }
        if self.train_loop.early_stop_patience.is_some() && self.data.val_split == 0.0 {
            return broken(
                "loop.early_stop_patience",
                "needs a validation split; set `data.val_split` (e.g. 0.1)".into(),
            );
        }
        if self.schedule.kind == ScheduleKind::Plateau && self.data.val_split == 0.0 {
            return broken(
                "schedule.kind",
                "is `plateau`, which follows the validation metric: set `data.val_split` (e.g. 0.1)"
                    .into(),
            );
        }
        if self.optim.nesterov && self.optim.momentum() == 0.0 {
            return broken(
                "optim.nesterov",
                "needs momentum > 0 (`optim.momentum` = 0.9)".into(),
            );
        }
        if self.schedule.kind == ScheduleKind::Step && self.schedule.step_size == 0 {
            return broken("schedule.step_size", "must be at least 1 epoch".into());
        }
        if self.schedule.min_lr > self.optim.lr {
            return broken(
                "schedule.min_lr",
                format!(
                    "must be in [0, `optim.lr`], got {} > {}",
                    self.schedule.min_lr, self.optim.lr
                ),
            );
        }
        Ok(())
    }

    /// The checks of the options airbench's recipe brought: parameter groups and knots here,
    /// the loop's in [`Self::validate_loop_recipe`].
    fn validate_recipe_options(&self) -> Result<()> {
        for g in &self.optim.groups {
            if g.params.is_empty() {
                return broken(
                    "optim.groups",
                    "`params` must name parameters (e.g. \"*.bn.beta\")".into(),
                );
            }
            if !(g.lr_factor >= 0.0 && g.lr_factor.is_finite()) {
                return broken(
                    "optim.groups",
                    format!(
                        "`{}`: lr_factor must be >= 0, got {}",
                        g.params, g.lr_factor
                    ),
                );
            }
            if let Some(w) = g.weight_decay
                && !(w >= 0.0 && w.is_finite())
            {
                return broken(
                    "optim.groups",
                    format!("`{}`: weight_decay must be >= 0, got {w}", g.params),
                );
            }
        }
        if self.schedule.kind == ScheduleKind::PiecewiseLinear {
            let k = &self.schedule.knots;
            let ok = k.len() >= 2
                && k[0][0] == 0.0
                && k[k.len() - 1][0] == 1.0
                && k.windows(2).all(|w| w[0][0] < w[1][0])
                && k.iter().all(|[_, y]| *y >= 0.0 && y.is_finite());
            if !ok {
                return broken(
                    "schedule.knots",
                    format!(
                        "must be [fraction, factor] pairs with fractions rising from 0 to 1 and factors >= 0 (airbench: [[0, 0.2], [0.23, 1], [1, 0.07]]), got {k:?}"
                    ),
                );
            }
        }
        self.validate_loop_recipe()
    }

    /// The recipe options of the training loop: fractional epochs, lookahead, and what runs
    /// on one device only.
    fn validate_loop_recipe(&self) -> Result<()> {
        if let Some(f) = self.train_loop.fractional_epochs
            && f.ceil() as usize != self.train_loop.epochs
        {
            return broken(
                "loop.fractional_epochs",
                format!(
                    "= {f} needs `loop.epochs` = {} (its ceiling), got {}",
                    f.ceil(),
                    self.train_loop.epochs
                ),
            );
        }
        if let Some(l) = &self.train_loop.lookahead {
            if l.every == 0 {
                return broken("loop.lookahead.every", "must be at least 1 step".into());
            }
            if !((0.0..=1.0).contains(&l.decay) && l.power >= 0.0 && l.power.is_finite()) {
                return broken(
                    "loop.lookahead",
                    format!(
                        "decay must be in [0, 1] and power >= 0, got {} and {}",
                        l.decay, l.power
                    ),
                );
            }
        }
        if self.runtime.devices > 1 {
            let one_device = [
                ("loop.lookahead", self.train_loop.lookahead.is_some()),
                ("loop.ema_decay", self.train_loop.ema_decay.is_some()),
                ("loop.freeze", !self.train_loop.freeze.is_empty()),
                ("loop.drop_last", self.train_loop.drop_last),
                (
                    "loop.fractional_epochs",
                    self.train_loop.fractional_epochs.is_some(),
                ),
            ];
            if let Some((knob, _)) = one_device.iter().find(|(_, on)| *on) {
                return broken(knob, "runs on one device; set `runtime.devices` = 1".into());
            }
        }
        Ok(())
    }

    /// Reads a TOML config file (a run's `config.toml`, or one written by hand; the older
    /// flat form too).
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| TrainError::file(path, format!("cannot read the config: {e}")))?;
        Self::from_toml(&text)
            .map_err(|e| TrainError::file(path, format!("not a valid config: {e}")))
    }

    /// Writes it as TOML, atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        let text = toml::to_string_pretty(self)
            .map_err(|e| TrainError::file(path, format!("cannot serialise the config: {e}")))?;
        crate::store::run::write_atomic(path, text.as_bytes())
    }
}

/// The error of a rule that involves `path` (and maybe other knobs, named in backticks).
fn broken<T>(path: &str, msg: String) -> Result<T> {
    Err(TrainError::Knob {
        path: path.into(),
        msg,
    })
}

/// Sets `value` at the dotted `path` of `table` (`model_options.hidden`), making the tables
/// on the way; a value in the way of a table is an error.
pub fn set_path(table: &mut toml::Table, path: &str, value: toml::Value) -> Result<(), String> {
    match path.split_once('.') {
        None => {
            table.insert(path.to_string(), value);
            Ok(())
        }
        Some((head, rest)) => set_path(knob::section_table(table, head)?, rest, value),
    }
}
