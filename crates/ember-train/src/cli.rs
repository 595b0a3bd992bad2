//! `ember train`'s flags as a clap `Args` group (feature `cli`), for the `ember` command and for
//! programs of your own: a flag given overrides the config file's (or a recipe's) value, a
//! flag left out keeps it. The groups follow [`TrainConfig`]'s sections, one `apply` each.
//!
//! ```no_run
//! # use clap::Parser;
//! #[derive(Parser)]
//! struct Args {
//!     #[command(flatten)]
//!     train: ember_train::cli::TrainArgs,
//! }
//! let recipe = toml::from_str(include_str!("../../../recipes/lenet_mnist.toml")).unwrap();
//! let config = Args::parse().train.config_over(recipe)?;
//! # Ok::<(), ember_train::error::TrainError>(())
//! ```

use crate::backend::Backend;
use crate::config::{
    DataConfig, LoopConfig, Monitor, OptimConfig, OptimizerKind, RuntimeConfig, ScheduleConfig,
    ScheduleKind, TrainConfig, Tta,
};
use crate::error::{Result, TrainError};
use clap::Args;
use ember_data::DatasetSpec;
use ember_data::transform::Preset;
use std::path::PathBuf;

/// `H,W` (or `HxW`): two positive integers.
pub fn parse_hw(s: &str) -> std::result::Result<[usize; 2], String> {
    let dims: Vec<usize> = s
        .split([',', 'x'])
        .map(|p| p.trim().parse::<usize>())
        .collect::<std::result::Result<_, _>>()
        .map_err(|_| format!("`{s}` is not H,W (two positive integers, e.g. 32,32)"))?;
    match dims[..] {
        [h, w] if h > 0 && w > 0 => Ok([h, w]),
        _ => Err(format!(
            "`{s}` is not H,W (two positive integers, e.g. 32,32)"
        )),
    }
}

#[derive(Args)]
pub struct TrainArgs {
    /// A TOML config (e.g. a run's config.toml); flags given beside it override its values.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Continue the run in RUN_DIR from its last complete checkpoint (its config.toml is used;
    /// --epochs may extend it).
    #[arg(long, value_name = "RUN_DIR", conflicts_with = "config")]
    pub resume: Option<PathBuf>,
    /// Zoo model name (`ember summary --list`).
    #[arg(long)]
    pub model: Option<String>,
    #[command(flatten, next_help_heading = "Data")]
    pub data: DataArgs,
    #[command(flatten, next_help_heading = "Optimizer")]
    pub optim: OptimArgs,
    #[command(flatten, next_help_heading = "Learning-rate schedule")]
    pub schedule: ScheduleArgs,
    #[command(flatten, next_help_heading = "Training loop")]
    pub train_loop: LoopArgs,
    #[command(flatten, next_help_heading = "Runtime")]
    pub runtime: RuntimeArgs,
}

/// `ember train` flags of the `[data]` section ([`DataConfig`]).
#[derive(Args)]
pub struct DataArgs {
    /// mnist, fashion-mnist, cifar10, cifar100, cifar100-coarse or folder:PATH.
    #[arg(long)]
    pub dataset: Option<DatasetSpec>,
    /// Folder holding the dataset (default: $EMBER_DATA_DIR/<name> or ~/.cache/ember/<name>).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Fraction of the training set held out for validation (0 for none).
    #[arg(long)]
    pub val_split: Option<f64>,
    /// Train on only N images of the training split (quick experiments).
    #[arg(long)]
    pub train_limit: Option<usize>,
    /// Keep only these classes, relabelled 0..k: `5,6,7` or `5-9`.
    #[arg(long, value_name = "LIST")]
    pub classes: Option<String>,
    /// Train on at most N images per class (few-shot fine-tuning).
    #[arg(long)]
    pub per_class: Option<usize>,
    /// Resize images to H,W (e.g. 224 for AlexNet on Fashion-MNIST).
    #[arg(long, value_parser = parse_resize)]
    pub resize: Option<[usize; 2]>,
    /// Training augmentation: none, cifar or imagenet.
    #[arg(long)]
    pub augment: Option<Preset>,
    /// Cutout after the augmentation: zero a random NxN square (16 for CIFAR; 0 = off).
    #[arg(long, value_name = "N")]
    pub cutout: Option<usize>,
}

impl DataArgs {
    /// Overrides the section with the flags given.
    pub fn apply(&self, c: &mut DataConfig) -> Result<()> {
        if let Some(v) = &self.dataset {
            c.dataset = v.clone();
        }
        if self.data_dir.is_some() {
            c.data_dir = self.data_dir.clone();
        }
        if let Some(v) = &self.val_split {
            c.val_split = *v;
        }
        if self.train_limit.is_some() {
            c.train_limit = self.train_limit;
        }
        if let Some(list) = &self.classes {
            c.classes =
                Some(ember_data::split::parse_class_list(list).map_err(TrainError::Config)?);
        }
        if self.per_class.is_some() {
            c.per_class = self.per_class;
        }
        if self.resize.is_some() {
            c.resize = self.resize;
        }
        if let Some(v) = &self.augment {
            c.augment = *v;
        }
        if let Some(v) = &self.cutout {
            c.cutout = *v;
        }
        Ok(())
    }
}

/// `ember train` flags of the `[optim]` section ([`OptimConfig`]).
#[derive(Args)]
pub struct OptimArgs {
    /// sgd, momentum, nesterov, adagrad, rmsprop, adadelta, adam, adamw.
    #[arg(long)]
    pub optimizer: Option<OptimizerKind>,
    /// Learning rate (the peak for one-cycle and warm-up schedules).
    #[arg(long)]
    pub lr: Option<f64>,
    /// Momentum for SGD and RMSProp (default 0.9 for momentum/nesterov, else 0).
    #[arg(long)]
    pub momentum: Option<f64>,
    /// Nesterov momentum (with --optimizer sgd).
    #[arg(long)]
    pub nesterov: bool,
    /// L2 penalty (decoupled for AdamW).
    #[arg(long)]
    pub weight_decay: Option<f64>,
    /// No weight decay on biases and batch-norm parameters (timm's rule: rank-1 parameters).
    #[arg(long)]
    pub no_decay_norm_bias: bool,
    /// Clip each parameter's gradient to this L2 norm.
    #[arg(long)]
    pub grad_clip: Option<f64>,
}

impl OptimArgs {
    /// Overrides the section with the flags given.
    pub fn apply(&self, c: &mut OptimConfig) -> Result<()> {
        if let Some(v) = &self.optimizer {
            c.optimizer = *v;
        }
        if let Some(v) = &self.lr {
            c.lr = *v;
        }
        if self.momentum.is_some() {
            c.momentum = self.momentum;
        }
        if self.nesterov {
            c.nesterov = true;
        }
        if let Some(v) = &self.weight_decay {
            c.weight_decay = *v;
        }
        if self.no_decay_norm_bias {
            c.no_decay_norm_bias = true;
        }
        if self.grad_clip.is_some() {
            c.grad_clip = self.grad_clip;
        }
        Ok(())
    }
}

/// `ember train` flags of the `[schedule]` section ([`ScheduleConfig`]).
#[derive(Args)]
pub struct ScheduleArgs {
    /// constant, step, exponential, cosine, warmup-cosine, one-cycle (the learning rate
    /// only: unlike PyTorch's OneCycleLR, momentum is not cycled).
    #[arg(long)]
    pub schedule: Option<ScheduleKind>,
    /// Step decay: epochs between decays.
    #[arg(long)]
    pub step_size: Option<usize>,
    /// Step/exponential decay factor.
    #[arg(long)]
    pub gamma: Option<f64>,
    /// Warm-up length in epochs for warmup-cosine (default 1).
    #[arg(long)]
    pub warmup_epochs: Option<f64>,
}

impl ScheduleArgs {
    /// Overrides the section with the flags given.
    pub fn apply(&self, c: &mut ScheduleConfig) -> Result<()> {
        if let Some(v) = &self.schedule {
            c.kind = *v;
        }
        if let Some(v) = &self.step_size {
            c.step_size = *v;
        }
        if let Some(v) = &self.gamma {
            c.gamma = *v;
        }
        if let Some(v) = &self.warmup_epochs {
            c.warmup_epochs = *v;
        }
        Ok(())
    }
}

/// `ember train` flags of the `[loop]` section ([`LoopConfig`]).
#[derive(Args)]
pub struct LoopArgs {
    /// Passes over the training set (default 10); a fraction (9.9) ends the run part-way
    /// through its last epoch.
    #[arg(long, value_parser = parse_epochs)]
    pub epochs: Option<f64>,
    /// Images per batch (default 128).
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Label smoothing of the training loss, e.g. 0.1 (validation uses plain cross-entropy).
    #[arg(long, value_name = "EPS")]
    pub label_smoothing: Option<f64>,
    /// Stop when the monitored validation metric has not improved for N epochs.
    #[arg(long)]
    pub early_stop_patience: Option<usize>,
    /// val_accuracy or val_loss.
    #[arg(long)]
    pub monitor: Option<Monitor>,
    /// Test-time augmentation of the final report: none, flip (image and mirror averaged) or
    /// flip-translate (airbench's six views).
    #[arg(long)]
    pub tta: Option<Tta>,
    /// Seed of initialisation, split, shuffles, augmentation and dropout (default 42).
    #[arg(long)]
    pub seed: Option<u64>,
}

impl LoopArgs {
    /// Overrides the section with the flags given.
    pub fn apply(&self, c: &mut LoopConfig) -> Result<()> {
        if let Some(v) = self.epochs {
            c.epochs = v.ceil() as usize;
            c.fractional_epochs = (v.fract() != 0.0).then_some(v);
        }
        if let Some(v) = &self.batch_size {
            c.batch_size = *v;
        }
        if let Some(v) = &self.label_smoothing {
            c.label_smoothing = *v;
        }
        if self.early_stop_patience.is_some() {
            c.early_stop_patience = self.early_stop_patience;
        }
        if let Some(v) = &self.monitor {
            c.monitor = *v;
        }
        if let Some(v) = &self.tta {
            c.tta = *v;
        }
        if let Some(v) = &self.seed {
            c.seed = *v;
        }
        Ok(())
    }
}

/// A number of epochs: a whole number, or a fraction of one more.
fn parse_epochs(s: &str) -> std::result::Result<f64, String> {
    let v: f64 = s
        .parse()
        .map_err(|_| format!("--epochs takes a number of epochs (10, or 9.9), got `{s}`"))?;
    if v > 0.0 && v <= 1e6 {
        Ok(v)
    } else {
        Err(format!("--epochs must be in (0, 1e6], got {s}"))
    }
}

/// `ember train` flags of the `[runtime]` section ([`RuntimeConfig`]).
#[derive(Args)]
pub struct RuntimeArgs {
    /// auto (a GPU backend if a GPU is there, else flex), flex, ndarray, wgpu or cuda.
    #[arg(long)]
    pub backend: Option<Backend>,
    /// Devices for Burn's data-parallel training.
    #[arg(long)]
    pub devices: Option<usize>,
    /// Loader worker threads.
    #[arg(long)]
    pub workers: Option<usize>,
    /// Run directory.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Seconds between progress lines (without the dashboard).
    #[arg(long)]
    pub log_every: Option<f64>,
    /// Do not record per-layer gradient norms and activation statistics.
    #[arg(long)]
    pub no_diagnostics: bool,
}

impl RuntimeArgs {
    /// Overrides the section with the flags given.
    pub fn apply(&self, c: &mut RuntimeConfig) -> Result<()> {
        if let Some(v) = &self.backend {
            c.backend = *v;
        }
        if let Some(v) = &self.devices {
            c.devices = *v;
        }
        if let Some(v) = &self.workers {
            c.workers = *v;
        }
        if let Some(v) = &self.out {
            c.out = v.clone();
        }
        if let Some(v) = &self.log_every {
            c.log_every_secs = *v;
        }
        if self.no_diagnostics {
            c.diagnostics = false;
        }
        Ok(())
    }
}

/// `--resize`: `N` (square) or `H,W`.
fn parse_resize(s: &str) -> Result<[usize; 2], String> {
    match s.parse::<usize>() {
        Ok(n) if n > 0 => Ok([n, n]),
        _ => parse_hw(s),
    }
}

impl TrainArgs {
    /// The config: the file (or the resumed run's), then the flags given.
    pub fn config(&self) -> Result<TrainConfig> {
        self.resolve(None)
    }

    /// The config of a recipe (an example's own defaults, e.g. `recipes/resnet_cifar.toml`)
    /// with the flags given; `--config` or `--resume` replace the recipe.
    pub fn config_over(&self, recipe: TrainConfig) -> Result<TrainConfig> {
        self.resolve(Some(recipe))
    }

    fn resolve(&self, recipe: Option<TrainConfig>) -> Result<TrainConfig> {
        let given = self.config.is_some() || self.resume.is_some() || recipe.is_some();
        let mut c = match (&self.resume, &self.config, recipe) {
            (Some(dir), _, _) => {
                let mut c = TrainConfig::load(&dir.join("config.toml"))?;
                c.runtime.out = dir.clone();
                c
            }
            (None, Some(file), _) => TrainConfig::load(file)?,
            (None, None, Some(recipe)) => recipe,
            (None, None, None) => TrainConfig::default(),
        };
        if let Some(m) = &self.model {
            c.model = m.clone();
        }
        self.data.apply(&mut c.data)?;
        self.optim.apply(&mut c.optim)?;
        self.schedule.apply(&mut c.schedule)?;
        self.train_loop.apply(&mut c.train_loop)?;
        self.runtime.apply(&mut c.runtime)?;
        let missing = |m: &str| Err(TrainError::Config(m.to_string()));
        if !given && self.model.is_none() {
            return missing(
                "give --model NAME (`ember summary --list` lists them) or --config FILE",
            );
        }
        if !given && self.data.dataset.is_none() {
            return missing(
                "give --dataset (mnist, fashion-mnist, cifar10, cifar100, cifar100-coarse or folder:PATH) or --config FILE",
            );
        }
        if !given && self.runtime.out.is_none() {
            c.runtime.out = default_run_dir(&c.model, Some(&c.data.dataset), "");
        }
        c.validate()?;
        Ok(c)
    }
}

/// `runs/MODEL-DATASET{suffix}`, the run directory of a training given no `--out`
/// (`folder:data/x` becomes `folder_data_x`).
pub fn default_run_dir(model: &str, dataset: Option<&DatasetSpec>, suffix: &str) -> PathBuf {
    let ds = dataset
        .map(|d| d.to_string().replace(['/', ':'], "_"))
        .unwrap_or_default();
    PathBuf::from(format!("runs/{model}-{ds}{suffix}"))
}
