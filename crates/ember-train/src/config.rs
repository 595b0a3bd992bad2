//! Everything a training run is made of, as one serde struct in sections: `ember train
//! --config FILE` reads it, and every run writes the full, resolved config to
//! `RUN_DIR/config.toml`.

use crate::backend::Backend;
use crate::error::{Result, TrainError};
use ember_data::DatasetSpec;
use ember_data::transform::{PadMode, Preset};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

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

    /// Its name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            OptimizerKind::Sgd => "sgd",
            OptimizerKind::Momentum => "momentum",
            OptimizerKind::Nesterov => "nesterov",
            OptimizerKind::Adagrad => "adagrad",
            OptimizerKind::Rmsprop => "rmsprop",
            OptimizerKind::Adadelta => "adadelta",
            OptimizerKind::Adam => "adam",
            OptimizerKind::Adamw => "adamw",
        }
    }
}

impl std::str::FromStr for OptimizerKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|o| o.name() == s.to_ascii_lowercase())
            .ok_or_else(|| {
                let names: Vec<_> = Self::ALL.iter().map(|o| o.name()).collect();
                format!(
                    "unknown optimizer `{s}`; expected one of {}",
                    names.join(", ")
                )
            })
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
    WarmupCosine,
    /// Smith's one-cycle: cosine up from `lr / 25` to `lr` over 30% of the run, then down to
    /// `lr / 25e4` (PyTorch's `OneCycleLR` defaults). Only the learning rate cycles: PyTorch's
    /// `OneCycleLR` also cycles momentum (0.95 -> 0.85 -> 0.95) by default, which Burn's
    /// optimizers cannot change during a run; Ember keeps `momentum` constant.
    OneCycle,
    /// Piecewise linear through `knots`: `[fraction of the run, factor of lr]` pairs, e.g.
    /// airbench's `[[0, 0.2], [0.23, 1], [1, 0.07]]` (a knot at fraction `f` of `T` steps
    /// sits at step `floor(f T)`, as `np.interp` over `int(0.23 * T)` in the source).
    PiecewiseLinear,
}

impl ScheduleKind {
    /// All of them.
    pub const ALL: [ScheduleKind; 7] = [
        ScheduleKind::Constant,
        ScheduleKind::Step,
        ScheduleKind::Exponential,
        ScheduleKind::Cosine,
        ScheduleKind::WarmupCosine,
        ScheduleKind::OneCycle,
        ScheduleKind::PiecewiseLinear,
    ];

    /// Its name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            ScheduleKind::Constant => "constant",
            ScheduleKind::Step => "step",
            ScheduleKind::Exponential => "exponential",
            ScheduleKind::Cosine => "cosine",
            ScheduleKind::WarmupCosine => "warmup-cosine",
            ScheduleKind::OneCycle => "one-cycle",
            ScheduleKind::PiecewiseLinear => "piecewise-linear",
        }
    }
}

impl std::str::FromStr for ScheduleKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.to_ascii_lowercase().replace('_', "-");
        Self::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| {
                let names: Vec<_> = Self::ALL.iter().map(|k| k.name()).collect();
                format!(
                    "unknown schedule `{s}`; expected one of {}",
                    names.join(", ")
                )
            })
    }
}

/// The validation metric early stopping and "best" checkpoints watch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Monitor {
    /// Validation accuracy, higher is better.
    ValAccuracy,
    /// Validation loss, lower is better.
    ValLoss,
}

impl std::str::FromStr for Monitor {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "val_accuracy" | "accuracy" => Ok(Monitor::ValAccuracy),
            "val_loss" | "loss" => Ok(Monitor::ValLoss),
            other => Err(format!(
                "unknown metric `{other}` to monitor; expected val_accuracy or val_loss"
            )),
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
    FlipTranslate,
}

impl std::str::FromStr for Tta {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "none" => Ok(Tta::None),
            "flip" => Ok(Tta::Flip),
            "flip-translate" | "flip_translate" => Ok(Tta::FlipTranslate),
            other => Err(format!(
                "unknown test-time augmentation `{other}` (none, flip, flip-translate)"
            )),
        }
    }
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

/// Largest image side `--resize` and `--cutout` accept.
pub const MAX_SIDE: usize = 8192;
/// Most loader threads `--workers` accepts.
pub const MAX_WORKERS: usize = 256;

/// One training run, fully described, in sections: what to train on ([`DataConfig`]), how
/// to step ([`OptimConfig`]), the learning-rate schedule ([`ScheduleConfig`]), the loop around
/// it ([`LoopConfig`]), where and how it runs ([`RuntimeConfig`]), and fine-tuning.
///
/// Files written before the sections existed (every key at the top level: `lr = 0.1`,
/// `schedule = "cosine"`) still load: each known key found at the top level is moved into its
/// section first ([`TrainConfig::SECTION_OF`]), so search spaces may also name knobs either
/// way (`lr` or `optim.lr`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, try_from = "toml::Table")]
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
    pub finetune: Option<crate::finetune::FinetuneConfig>,
}

/// What a run trains and validates on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DataConfig {
    /// `mnist`, `fashion-mnist`, `cifar10`, `cifar100`, `cifar100-coarse` or `folder:PATH`
    /// (read and checked once, when the config is).
    pub dataset: DatasetSpec,
    /// Where the dataset is (or is downloaded to); default `~/.cache/ember/<dataset>`.
    pub data_dir: Option<PathBuf>,
    /// Fraction of the training set held out for validation (seeded, stratified).
    pub val_split: f64,
    /// Use only the first N training images (after the split): quick experiments.
    pub train_limit: Option<usize>,
    /// Keep only these classes (labels of the dataset), relabelled 0..k in this order.
    pub classes: Option<Vec<usize>>,
    /// Train on at most N images of each class (after the split): few-shot fine-tuning.
    pub per_class: Option<usize>,
    /// Resize images to `[H, W]` (e.g. 224 for AlexNet on Fashion-MNIST, as d2l does).
    pub resize: Option<[usize; 2]>,
    /// Training augmentation preset: `none`, `cifar` or `imagenet`.
    pub augment: Preset,
    /// Cutout (DeVries & Taylor 2017) after the preset: one `cutout x cutout` square at a
    /// uniformly random centre, clipped at the borders, set to 0 (the mean, after
    /// normalisation); 0 turns it off. 16 is the CIFAR-10 recipe.
    pub cutout: usize,
    /// Padding, in pixels a side, of the `cifar` preset's random crop (4 is the classic
    /// recipe; airbench translates by 2).
    pub crop_padding: usize,
    /// How that padding is filled (`zero`, `edge`, `reflect`).
    pub pad_mode: PadMode,
    /// The `cifar` preset's flip: `random`, `alternating` or `none`.
    pub flip: FlipMode,
}

impl Default for DataConfig {
    fn default() -> Self {
        Self {
            dataset: DatasetSpec::Mnist,
            data_dir: None,
            val_split: 0.1,
            train_limit: None,
            classes: None,
            per_class: None,
            resize: None,
            augment: Preset::None,
            cutout: 0,
            crop_padding: 4,
            pad_mode: PadMode::Zero,
            flip: FlipMode::Random,
        }
    }
}

/// How each step changes the weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OptimConfig {
    /// The optimizer.
    pub optimizer: OptimizerKind,
    /// The (peak) learning rate.
    pub lr: f64,
    /// Momentum (SGD, RMSProp); `None`: 0.9 for `momentum`/`nesterov`, else 0.
    pub momentum: Option<f64>,
    /// Nesterov momentum for `sgd`.
    pub nesterov: bool,
    /// L2 penalty (decoupled for AdamW).
    pub weight_decay: f64,
    /// No weight decay on rank-1 parameters: biases and batch-norm scales and shifts (timm).
    pub no_decay_norm_bias: bool,
    /// Clip each parameter's gradient to this L2 norm.
    pub grad_clip: Option<f64>,
    /// Parameter groups with their own rate and decay; a parameter in several takes the
    /// last.
    pub groups: Vec<ParamGroupConfig>,
}

impl Default for OptimConfig {
    fn default() -> Self {
        Self {
            optimizer: OptimizerKind::Sgd,
            lr: 0.1,
            momentum: None,
            nesterov: false,
            weight_decay: 0.0,
            no_decay_norm_bias: false,
            grad_clip: None,
            groups: Vec::new(),
        }
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

/// The learning rate over the run; `kind` says which of the other fields apply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScheduleConfig {
    /// The schedule.
    pub kind: ScheduleKind,
    /// Step decay: epochs between decays.
    pub step_size: usize,
    /// Step and exponential decay factor.
    pub gamma: f64,
    /// Warm-up length in epochs (`warmup-cosine`).
    pub warmup_epochs: f64,
    /// Floor of the cosine schedules.
    pub min_lr: f64,
    /// `piecewise-linear`: `[fraction of the run, factor of lr]`, fractions rising from 0 to 1.
    pub knots: Vec<[f64; 2]>,
}

impl Default for ScheduleConfig {
    fn default() -> Self {
        Self {
            kind: ScheduleKind::Constant,
            step_size: 30,
            gamma: 0.1,
            warmup_epochs: 1.0,
            min_lr: 0.0,
            knots: Vec::new(),
        }
    }
}

/// The training loop: how long, in which batches, what to watch, how to report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LoopConfig {
    /// Passes over the training set.
    pub epochs: usize,
    /// Images per batch.
    pub batch_size: usize,
    /// Label smoothing of the training loss: targets `(1 - eps) one_hot + eps / classes`
    /// (PyTorch's `label_smoothing`). Validation and reports use plain cross-entropy.
    pub label_smoothing: f64,
    /// Stop when the monitored metric has not improved for this many epochs.
    pub early_stop_patience: Option<usize>,
    /// What early stopping and the best checkpoint watch.
    pub monitor: Monitor,
    /// Test-time augmentation of the final evaluation report.
    pub tta: Tta,
    /// Seed of initialisation, split, shuffles, augmentation and dropout.
    pub seed: u64,
    /// A run of a fractional number of epochs (airbench's 9.9): the schedule spans
    /// `ceil(fractional_epochs * steps per epoch)` steps and the last epoch stops there;
    /// `epochs` must be its ceiling.
    pub fractional_epochs: Option<f64>,
    /// Drop each epoch's last batch when it is short (so every step sees `batch_size` images).
    pub drop_last: bool,
    /// Initialise the network from this many training images before the first step (its
    /// data-dependent initialisation, e.g. airbench's whitening layer); 0: none. The images
    /// are evenly spaced over the training split, with the evaluation transforms.
    pub data_init_images: usize,
    /// Parameters that stop training after some epochs.
    pub freeze: Vec<FreezeAfter>,
    /// Lookahead weight averaging.
    pub lookahead: Option<LookaheadConfig>,
}

impl Default for LoopConfig {
    fn default() -> Self {
        Self {
            epochs: 10,
            batch_size: 128,
            label_smoothing: 0.0,
            early_stop_patience: None,
            monitor: Monitor::ValAccuracy,
            tta: Tta::None,
            seed: 42,
            fractional_epochs: None,
            drop_last: false,
            data_init_images: 0,
            freeze: Vec::new(),
            lookahead: None,
        }
    }
}

/// Where the run runs and writes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RuntimeConfig {
    /// Which compiled backend runs the model (`auto`: a GPU if there is one, else Flex).
    pub backend: Backend,
    /// Number of devices for Burn's data-parallel strategy (1 = single device).
    pub devices: usize,
    /// Loader worker threads.
    pub workers: usize,
    /// The run directory.
    pub out: PathBuf,
    /// Print a progress line every this many seconds (when no terminal shows the dashboard).
    pub log_every_secs: f64,
    /// Record per-layer gradient norms and activation statistics of a few steps per epoch
    /// (`gradients.csv`, `activations.csv`; `ember viz gradients`).
    pub diagnostics: bool,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            backend: Backend::Auto,
            devices: 1,
            workers: 2,
            out: PathBuf::from("runs/run"),
            log_every_secs: 10.0,
            diagnostics: true,
        }
    }
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

/// The sectioned form, as serde reads it (after [`TrainConfig::SECTION_OF`] moved the keys).
#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Sectioned {
    model: String,
    model_options: toml::Table,
    data: DataConfig,
    optim: OptimConfig,
    schedule: ScheduleConfig,
    #[serde(rename = "loop")]
    train_loop: LoopConfig,
    runtime: RuntimeConfig,
    finetune: Option<crate::finetune::FinetuneConfig>,
}

impl Default for Sectioned {
    fn default() -> Self {
        let c = TrainConfig::default();
        Self {
            model: c.model,
            model_options: c.model_options,
            data: c.data,
            optim: c.optim,
            schedule: c.schedule,
            train_loop: c.train_loop,
            runtime: c.runtime,
            finetune: c.finetune,
        }
    }
}

impl TryFrom<toml::Table> for TrainConfig {
    type Error = String;

    fn try_from(table: toml::Table) -> std::result::Result<Self, Self::Error> {
        let s: Sectioned = toml::Value::Table(Self::sectioned(table)?)
            .try_into()
            .map_err(|e: toml::de::Error| e.message().to_string())?;
        Ok(Self {
            model: s.model,
            model_options: s.model_options,
            data: s.data,
            optim: s.optim,
            schedule: s.schedule,
            train_loop: s.train_loop,
            runtime: s.runtime,
            finetune: s.finetune,
        })
    }
}

impl TrainConfig {
    /// Where each key of the older, flat files lives now: `(flat key, section, name)`.
    pub const SECTION_OF: &'static [(&'static str, &'static str, &'static str)] = &[
        ("dataset", "data", "dataset"),
        ("data_dir", "data", "data_dir"),
        ("val_split", "data", "val_split"),
        ("train_limit", "data", "train_limit"),
        ("classes", "data", "classes"),
        ("per_class", "data", "per_class"),
        ("resize", "data", "resize"),
        ("augment", "data", "augment"),
        ("cutout", "data", "cutout"),
        ("optimizer", "optim", "optimizer"),
        ("lr", "optim", "lr"),
        ("momentum", "optim", "momentum"),
        ("nesterov", "optim", "nesterov"),
        ("weight_decay", "optim", "weight_decay"),
        ("no_decay_norm_bias", "optim", "no_decay_norm_bias"),
        ("grad_clip", "optim", "grad_clip"),
        ("schedule", "schedule", "kind"),
        ("step_size", "schedule", "step_size"),
        ("gamma", "schedule", "gamma"),
        ("warmup_epochs", "schedule", "warmup_epochs"),
        ("min_lr", "schedule", "min_lr"),
        ("epochs", "loop", "epochs"),
        ("batch_size", "loop", "batch_size"),
        ("label_smoothing", "loop", "label_smoothing"),
        ("early_stop_patience", "loop", "early_stop_patience"),
        ("monitor", "loop", "monitor"),
        ("tta", "loop", "tta"),
        ("seed", "loop", "seed"),
        ("backend", "runtime", "backend"),
        ("devices", "runtime", "devices"),
        ("workers", "runtime", "workers"),
        ("out", "runtime", "out"),
        ("log_every_secs", "runtime", "log_every_secs"),
        ("diagnostics", "runtime", "diagnostics"),
    ];

    /// Moves every key of the older, flat form found at the top level of `table` into its
    /// section; a key given both ways is an error.
    pub fn sectioned(mut table: toml::Table) -> std::result::Result<toml::Table, String> {
        for &(key, section, name) in Self::SECTION_OF {
            // `schedule` is both a section and, in older files, the schedule's kind.
            if key == "schedule" && !matches!(table.get(key), Some(toml::Value::String(_))) {
                continue;
            }
            let Some(value) = table.remove(key) else {
                continue;
            };
            let entry = table
                .entry(section)
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            let toml::Value::Table(t) = entry else {
                return Err(format!("`{section}` must be a table"));
            };
            if t.contains_key(name) {
                return Err(format!(
                    "`{key}` is given twice, as `{key}` and `{section}.{name}`"
                ));
            }
            t.insert(name.to_string(), value);
        }
        Ok(table)
    }

    /// The sectioned path of a key: `lr` is `optim.lr`; a sectioned or unknown path is
    /// returned as it is.
    pub fn sectioned_path(key: &str) -> String {
        Self::SECTION_OF
            .iter()
            .find(|(k, _, _)| *k == key)
            .map_or_else(|| key.to_string(), |(_, s, n)| format!("{s}.{n}"))
    }

    /// Checks every option, the zoo model name included.
    pub fn validate(&self) -> Result<()> {
        self.validate_options()?;
        ember_models::ModelConfig::from_name(&self.model)?;
        Ok(())
    }

    /// Checks every option that would otherwise fail (or panic) after training started, except
    /// the model name (a custom network is not in the zoo).
    pub fn validate_options(&self) -> Result<()> {
        let bad = |m: String| Err(TrainError::Config(m));
        if !(self.optim.lr > 0.0 && self.optim.lr.is_finite()) {
            return bad(format!("--lr must be > 0, got {}", self.optim.lr));
        }
        if self.train_loop.batch_size == 0 {
            return bad("--batch-size must be at least 1".into());
        }
        if self.train_loop.epochs == 0 {
            return bad("--epochs must be at least 1".into());
        }
        if !(0.0..1.0).contains(&self.data.val_split) {
            return bad(format!(
                "--val-split must be in [0, 1), got {}",
                self.data.val_split
            ));
        }
        if self.train_loop.early_stop_patience.is_some() && self.data.val_split == 0.0 {
            return bad(
                "--early-stop-patience needs a validation split; set --val-split (e.g. 0.1)".into(),
            );
        }
        if self.train_loop.early_stop_patience == Some(0) {
            return bad("--early-stop-patience must be at least 1".into());
        }
        let m = self.optim.momentum();
        if !(0.0..1.0).contains(&m) {
            return bad(format!("--momentum must be in [0, 1), got {m}"));
        }
        if self.optim.nesterov && m == 0.0 {
            return bad("--nesterov needs momentum > 0 (--momentum 0.9)".into());
        }
        if self.optim.weight_decay < 0.0 || !self.optim.weight_decay.is_finite() {
            return bad(format!(
                "--weight-decay must be >= 0, got {}",
                self.optim.weight_decay
            ));
        }
        if let Some(c) = self.optim.grad_clip
            && (c.is_nan() || c <= 0.0)
        {
            return bad(format!("--grad-clip must be > 0, got {c}"));
        }
        if self.schedule.gamma.is_nan() || self.schedule.gamma <= 0.0 {
            return bad(format!("--gamma must be > 0, got {}", self.schedule.gamma));
        }
        if self.schedule.kind == ScheduleKind::Step && self.schedule.step_size == 0 {
            return bad("--step-size must be at least 1 epoch".into());
        }
        if self.schedule.min_lr < 0.0 || self.schedule.min_lr > self.optim.lr {
            return bad(format!(
                "--min-lr must be in [0, lr], got {}",
                self.schedule.min_lr
            ));
        }
        if self.schedule.warmup_epochs < 0.0 {
            return bad("--warmup-epochs must be >= 0".into());
        }
        if self.runtime.devices == 0 {
            return bad("--devices must be at least 1".into());
        }
        if let Some([h, w]) = self.data.resize
            && (h == 0 || w == 0)
        {
            return bad("--resize must be positive".into());
        }
        if self.data.per_class == Some(0) {
            return bad("--per-class must be at least 1".into());
        }
        if let Some(c) = &self.data.classes
            && c.is_empty()
        {
            return bad("--classes needs at least one class".into());
        }
        if let Some(ft) = &self.finetune {
            ft.validate(self.train_loop.epochs)?;
        }
        if !(0.0..1.0).contains(&self.train_loop.label_smoothing) {
            return bad(format!(
                "--label-smoothing must be in [0, 1), got {}",
                self.train_loop.label_smoothing
            ));
        }
        // Each goes to a std constructor or an allocation that would panic or abort.
        if !(self.runtime.log_every_secs.is_finite()
            && self.runtime.log_every_secs > 0.0
            && self.runtime.log_every_secs <= 1e9)
        {
            return bad(format!(
                "--log-every must be a number of seconds in (0, 1e9], got {}",
                self.runtime.log_every_secs
            ));
        }
        if let Some([h, w]) = self.data.resize
            && (h > MAX_SIDE || w > MAX_SIDE)
        {
            return bad(format!(
                "--resize {h}x{w} is larger than {MAX_SIDE} pixels a side"
            ));
        }
        if self.runtime.workers > MAX_WORKERS {
            return bad(format!(
                "--workers {} is more than {MAX_WORKERS}; 1-2 per core is plenty",
                self.runtime.workers
            ));
        }
        if self.data.cutout > MAX_SIDE {
            return bad(format!(
                "--cutout {} is larger than {MAX_SIDE}",
                self.data.cutout
            ));
        }
        if self.data.train_limit == Some(0) {
            return bad("--train-limit must be at least 1".into());
        }
        self.validate_recipe_options()
    }

    /// The checks of the options airbench's recipe brought: groups, knots, fractional
    /// epochs, lookahead, freezing.
    fn validate_recipe_options(&self) -> Result<()> {
        let bad = |m: String| Err(TrainError::Config(m));
        for g in &self.optim.groups {
            if g.params.is_empty() {
                return bad(
                    "optim.groups: `params` must name parameters (e.g. \"*.bn.beta\")".into(),
                );
            }
            if !(g.lr_factor >= 0.0 && g.lr_factor.is_finite()) {
                return bad(format!(
                    "optim.groups `{}`: lr_factor must be >= 0, got {}",
                    g.params, g.lr_factor
                ));
            }
            if let Some(w) = g.weight_decay
                && !(w >= 0.0 && w.is_finite())
            {
                return bad(format!(
                    "optim.groups `{}`: weight_decay must be >= 0, got {w}",
                    g.params
                ));
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
                return bad(format!(
                    "schedule.knots must be [fraction, factor] pairs with fractions rising from 0 to 1 and factors >= 0 (airbench: [[0, 0.2], [0.23, 1], [1, 0.07]]), got {k:?}"
                ));
            }
        }
        if let Some(f) = self.train_loop.fractional_epochs {
            if !(f > 0.0 && f.is_finite()) {
                return bad(format!("loop.fractional_epochs must be > 0, got {f}"));
            }
            if f.ceil() as usize != self.train_loop.epochs {
                return bad(format!(
                    "loop.fractional_epochs = {f} needs epochs = {} (its ceiling), got {}",
                    f.ceil(),
                    self.train_loop.epochs
                ));
            }
        }
        if let Some(l) = &self.train_loop.lookahead {
            if l.every == 0 {
                return bad("loop.lookahead.every must be at least 1 step".into());
            }
            if !((0.0..=1.0).contains(&l.decay) && l.power >= 0.0 && l.power.is_finite()) {
                return bad(format!(
                    "loop.lookahead: decay must be in [0, 1] and power >= 0, got {} and {}",
                    l.decay, l.power
                ));
            }
            if self.runtime.devices > 1 {
                return bad("loop.lookahead runs on one device; set --devices 1".into());
            }
        }
        if self.runtime.devices > 1 {
            let one_device = [
                ("loop.freeze", !self.train_loop.freeze.is_empty()),
                ("loop.drop_last", self.train_loop.drop_last),
                (
                    "loop.fractional_epochs",
                    self.train_loop.fractional_epochs.is_some(),
                ),
            ];
            if let Some((knob, _)) = one_device.iter().find(|(_, on)| *on) {
                return bad(format!("{knob} runs on one device; set --devices 1"));
            }
        }
        if self.data.crop_padding > MAX_SIDE {
            return bad(format!(
                "data.crop_padding {} is larger than {MAX_SIDE}",
                self.data.crop_padding
            ));
        }
        Ok(())
    }

    /// Reads a TOML config file (a run's `config.toml`, or one written by hand).
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| TrainError::file(path, format!("cannot read the config: {e}")))?;
        toml::from_str(&text)
            .map_err(|e| TrainError::file(path, format!("not a valid config: {e}")))
    }

    /// Writes it as TOML, atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        let text = toml::to_string_pretty(self)
            .map_err(|e| TrainError::file(path, format!("cannot serialise the config: {e}")))?;
        crate::run::write_atomic(path, text.as_bytes())
    }
}
