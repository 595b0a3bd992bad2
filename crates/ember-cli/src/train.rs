//! `ember train`, `ember eval` and `ember predict`.

use crate::args::{BackendArg, RunArg};
use anyhow::{Context, Result, bail};
use clap::Args;
use ember_data::split::ClassSubset;
use ember_data::transform::Preset;
use ember_data::{ClassificationDataset, DatasetSpec, Split};
use ember_train::config::{
    DataConfig, LoopConfig, Monitor, OptimConfig, OptimizerKind, RuntimeConfig, ScheduleConfig,
    ScheduleKind, TrainConfig, Tta,
};
use ember_train::eval::EvalSplit;
use ember_train::finetune::Freeze;
use ember_train::predict::{TrainedModel, top_k};
use ember_train::run::RunDir;
use ember_train::weights::{self, Layout, LoadOptions};
use ember_train::{Backend, trainer};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::summary::parse_size;

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
                Some(ember_data::split::parse_class_list(list).map_err(anyhow::Error::msg)?);
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
    /// Passes over the training set (default 10).
    #[arg(long)]
    pub epochs: Option<usize>,
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
    /// Test-time augmentation of the final report: none, or flip (image and mirror averaged).
    #[arg(long)]
    pub tta: Option<Tta>,
    /// Seed of initialisation, split, shuffles, augmentation and dropout (default 42).
    #[arg(long)]
    pub seed: Option<u64>,
}

impl LoopArgs {
    /// Overrides the section with the flags given.
    pub fn apply(&self, c: &mut LoopConfig) -> Result<()> {
        if let Some(v) = &self.epochs {
            c.epochs = *v;
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

fn parse_resize(s: &str) -> Result<[usize; 2], String> {
    match s.parse::<usize>() {
        Ok(n) if n > 0 => Ok([n, n]),
        _ => parse_size(s),
    }
}

impl TrainArgs {
    /// The config: file (or the resumed run's), then flags.
    pub fn config(&self) -> Result<TrainConfig> {
        let mut c = match (&self.resume, &self.config) {
            (Some(dir), _) => {
                let mut c = TrainConfig::load(&dir.join("config.toml"))?;
                c.runtime.out = dir.clone();
                c
            }
            (None, Some(file)) => TrainConfig::load(file)?,
            (None, None) => TrainConfig::default(),
        };
        if let Some(m) = &self.model {
            c.model = m.clone();
        }
        self.data.apply(&mut c.data)?;
        self.optim.apply(&mut c.optim)?;
        self.schedule.apply(&mut c.schedule)?;
        self.train_loop.apply(&mut c.train_loop)?;
        self.runtime.apply(&mut c.runtime)?;
        if self.config.is_none() && self.resume.is_none() && self.model.is_none() {
            bail!("give --model NAME (`ember summary --list` lists them) or --config FILE");
        }
        if self.config.is_none() && self.resume.is_none() && self.data.dataset.is_none() {
            bail!(
                "give --dataset (mnist, fashion-mnist, cifar10, cifar100, cifar100-coarse or folder:PATH) or --config FILE"
            );
        }
        if self.runtime.out.is_none() && self.resume.is_none() && self.config.is_none() {
            c.runtime.out = default_run_dir(&c.model, Some(&c.data.dataset), "");
        }
        c.validate()?;
        Ok(c)
    }
}

/// `runs/MODEL-DATASET{suffix}`, the run directory of a training given no `--out`
/// (`folder:data/x` becomes `folder_data_x`).
fn default_run_dir(model: &str, dataset: Option<&DatasetSpec>, suffix: &str) -> PathBuf {
    let ds = dataset
        .map(|d| d.to_string().replace(['/', ':'], "_"))
        .unwrap_or_default();
    PathBuf::from(format!("runs/{model}-{ds}{suffix}"))
}

pub fn run(args: TrainArgs) -> Result<()> {
    let config = args.config()?;
    let resume = args.resume.is_some();
    train_and_report(config, resume)
}

#[derive(Args)]
pub struct FinetuneArgs {
    /// Pre-trained weights: a run directory (its best weights), or a .bpk, .safetensors or
    /// .pth/.pt file (torchvision's ImageNet files load into the matching zoo model).
    #[arg(long, value_name = "RUN_DIR|WEIGHTS")]
    from: Option<PathBuf>,
    /// Whose tensor names the file uses: auto (torchvision for .pth/.pt), ember, torchvision.
    #[arg(long)]
    layout: Option<Layout>,
    /// Load what fits and report the rest instead of failing.
    #[arg(long)]
    allow_partial: bool,
    /// Re-initialise the classifier head even when the classes did not change.
    #[arg(long)]
    reset_head: bool,
    /// none, all-but-head, stages:K (the first K stages) or prefix:NAME,... (default none).
    #[arg(long)]
    freeze: Option<Freeze>,
    /// Backbone learning rate = --lr x this (default 0.1).
    #[arg(long)]
    backbone_lr_factor: Option<f64>,
    /// Train only the head for N epochs, then everything.
    #[arg(long, value_name = "N")]
    unfreeze_after: Option<usize>,
    #[command(flatten)]
    train: TrainArgs,
}

pub fn finetune(mut args: FinetuneArgs) -> Result<()> {
    let resume = args.train.resume.is_some();
    // From a run, the model defaults to the run's (with its options).
    let mut source_options = None;
    if let Some(from) = &args.from
        && from.is_dir()
        && args.train.model.is_none()
        && args.train.config.is_none()
        && !resume
    {
        let source = TrainConfig::load(&RunDir::new(from).config())
            .with_context(|| format!("{} is not a run directory; give --model", from.display()))?;
        args.train.model = Some(source.model.clone());
        source_options = Some(source.model_options);
    }
    if args.train.runtime.out.is_none() && !resume && args.train.config.is_none() {
        let model = args.train.model.clone().unwrap_or_default();
        let dir = default_run_dir(&model, args.train.data.dataset.as_ref(), "-finetune");
        args.train.runtime.out = Some(dir);
    }
    let mut config = args.train.config()?;
    if let Some(o) = source_options
        && config.model_options.is_empty()
    {
        config.model_options = o;
    }
    let mut ft = config.finetune.clone().unwrap_or_default();
    match (&args.from, resume) {
        (Some(from), _) => ft.from = from.clone(),
        (None, false) if config.finetune.is_none() => {
            bail!("give --from RUN_DIR or a weights file (.bpk, .safetensors, .pth)")
        }
        _ => {}
    }
    if let Some(l) = args.layout {
        ft.layout = l;
    }
    if args.allow_partial {
        ft.allow_partial = true;
    }
    if args.reset_head {
        ft.reset_head = true;
    }
    if let Some(f) = args.freeze {
        ft.freeze = f;
    }
    if let Some(f) = args.backbone_lr_factor {
        ft.backbone_lr_factor = f;
    }
    if args.unfreeze_after.is_some() {
        ft.unfreeze_after = args.unfreeze_after;
    }
    config.finetune = Some(ft);
    config.validate()?;
    train_and_report(config, resume)
}

#[derive(Args)]
pub struct ExportArgs {
    /// A run directory or a weights file (.bpk, .safetensors, .pth/.pt).
    #[arg(long, value_name = "RUN_DIR|WEIGHTS")]
    from: PathBuf,
    /// The zoo model the weights are for (default: the run's).
    #[arg(long)]
    model: Option<String>,
    /// Classes of the model (default: the run's, or the zoo model's).
    #[arg(long)]
    num_classes: Option<usize>,
    /// Whose tensor names the file uses: auto, ember, torchvision.
    #[arg(long, default_value = "auto")]
    layout: Layout,
    /// Write what fits and report the rest.
    #[arg(long)]
    allow_partial: bool,
    /// The file to write: .safetensors or .bpk.
    #[arg(long)]
    out: PathBuf,
}

pub fn export(args: ExportArgs) -> Result<()> {
    let device = Backend::Flex.device()?;
    let config = match (&args.model, args.from.is_dir()) {
        (Some(name), _) => ember_models::ModelConfig::from_name(name)?,
        (None, true) => RunDir::new(&args.from)
            .load_info()?
            .model_config
            .context("the run trained a custom network; only zoo models can be exported")?,
        (None, false) => bail!("give --model NAME for a weights file"),
    };
    let config = match args.num_classes {
        Some(n) => config.with_num_classes(n),
        None => config,
    };
    let options = LoadOptions {
        allow_partial: args.allow_partial,
        layout: args.layout,
        ..LoadOptions::default()
    };
    let (model, report) = weights::load_pretrained(&config, &args.from, &device, &options)?;
    weights::save_as(&model, &config, &args.out)?;
    println!("{}", report.describe());
    println!("wrote {}", args.out.display());
    Ok(())
}

fn train_and_report(config: TrainConfig, resume: bool) -> Result<()> {
    println!(
        "training {} on {} for {} epochs ({}, lr {}, batch {}) on {} -> {}",
        config.model,
        config.data.dataset,
        config.train_loop.epochs,
        config.optim.optimizer.name(),
        config.optim.lr,
        config.train_loop.batch_size,
        config.runtime.backend,
        config.runtime.out.display()
    );
    // The run's events (backend choice, loaded weights, resume warnings) as the CLI shows
    // them: warnings on stderr, the rest beside Burn's progress lines.
    let outcome = trainer::Training::new(&config)
        .resume(resume)
        .on_event(trainer::print_event)
        .launch()?;
    println!(
        "done in {:.1} s{}",
        outcome.seconds,
        if outcome.stopped_early {
            " (stopped early)"
        } else {
            ""
        }
    );
    if let Some(best) = outcome.best_epoch {
        println!(
            "best epoch {best} (by {:?}); weights in {}",
            config.train_loop.monitor,
            outcome.run.best().display()
        );
    }
    if let Some(r) = &outcome.report {
        println!(
            "{} accuracy {:.2}% (top-5 {:.2}%) on {} images; report in {}",
            outcome.report_split,
            100.0 * r.accuracy,
            100.0 * r.top5,
            r.n,
            outcome.run.root.join("report.txt").display()
        );
    }
    println!(
        "metrics: {}  curves: {}",
        outcome.run.metrics().display(),
        outcome.run.curves().display()
    );
    Ok(())
}

#[derive(Args)]
pub struct EvalArgs {
    #[command(flatten)]
    run: RunArg,
    /// Dataset to evaluate on (default: the run's).
    #[arg(long)]
    dataset: Option<DatasetSpec>,
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// test, train, or val (the run's own validation images). Default: test, or val for a
    /// run on a folder dataset (which has no test split).
    #[arg(long)]
    split: Option<EvalSplit>,
    #[arg(long, default_value_t = 256)]
    batch_size: usize,
    #[command(flatten)]
    backend: BackendArg,
    #[arg(long, default_value_t = 2)]
    workers: usize,
    /// Test-time augmentation: none, or flip (average the logits of each image and its mirror).
    #[arg(long, default_value = "none")]
    tta: Tta,
    /// Print {"accuracy":..., "top5":..., "n":...} only.
    #[arg(long)]
    json: bool,
}

pub fn eval(args: EvalArgs) -> Result<()> {
    let device = args.backend.device()?;
    let trained = TrainedModel::load(&args.run, &device)?;
    let (ds, split) = open_split(
        &args.run,
        args.dataset.as_ref(),
        args.data_dir.as_deref(),
        args.split,
    )?;
    let spec = args
        .dataset
        .as_ref()
        .map_or(trained.info.dataset.to_string(), |s| s.to_string());
    let report = trained
        .evaluate(ds, args.batch_size, args.workers, args.tta)
        .with_context(|| format!("evaluating {}", args.run.display()))?;
    if args.json {
        println!(
            "{}",
            serde_json::json!({"accuracy": report.accuracy, "top5": report.top5, "n": report.n, "loss": report.loss})
        );
    } else {
        print!(
            "{}",
            report.to_text(&format!("{} on {spec} ({split})", trained.info.model))
        );
    }
    Ok(())
}

#[derive(Args)]
pub struct PredictArgs {
    #[command(flatten)]
    run: RunArg,
    /// Image files (PNG or JPEG).
    #[arg(required = true)]
    images: Vec<PathBuf>,
    /// How many classes to show per image.
    #[arg(long, default_value_t = 5)]
    top: usize,
    #[command(flatten)]
    backend: BackendArg,
    /// One JSON document per image.
    #[arg(long)]
    json: bool,
}

pub fn predict(args: PredictArgs) -> Result<()> {
    let device = args.backend.device()?;
    let trained = TrainedModel::load(&args.run, &device)?;
    let images = args
        .images
        .iter()
        .map(|p| trained.prepare(p))
        .collect::<Result<Vec<_>, _>>()?;
    let probs = trained.probabilities(&images)?;
    for (path, p) in args.images.iter().zip(&probs) {
        let best = top_k(p, args.top.max(1));
        if args.json {
            let top: Vec<_> = best
                .iter()
                .map(|&(c, p)| serde_json::json!({"class": trained.info.classes[c], "index": c, "probability": p}))
                .collect();
            println!(
                "{}",
                serde_json::json!({"image": path.display().to_string(), "top": top})
            );
        } else {
            println!("{}", path.display());
            for (c, p) in best {
                println!("  {:>6.2}%  {}", 100.0 * p, trained.info.classes[c]);
            }
        }
    }
    Ok(())
}

/// The images of `split` for the run in `run`, labelled as the run's model predicts: `val` is
/// the run's own validation split (re-made from its config: splits are seeded), `test` and
/// `train` the dataset's splits (`dataset` or the run's). Without `split`: `test` where the
/// dataset has one, else (a folder, whose test and train would both be the whole folder,
/// training images included) the run's held-out `val`. Classes are matched by name, so a run
/// trained on some classes (`--classes 0-4`) is scored on those classes of the test split, and
/// a dataset with the classes in another order is scored with the right labels. Returns the
/// images and the split's name.
pub(crate) fn open_split(
    run: &Path,
    dataset: Option<&DatasetSpec>,
    data_dir: Option<&Path>,
    split: Option<EvalSplit>,
) -> Result<(Arc<dyn ClassificationDataset>, EvalSplit)> {
    let run_dir = RunDir::new(run);
    let mut config = TrainConfig::load(&run_dir.config())?;
    let info = run_dir.load_info()?;
    if let Some(dir) = data_dir {
        config.data.data_dir = Some(dir.to_path_buf());
    }
    let spec: DatasetSpec = match dataset {
        Some(s) => s.clone(),
        None => config.data.dataset.clone(),
    };
    let own_folder = dataset.is_none() && matches!(spec, DatasetSpec::Folder(_));
    let split = split.unwrap_or(if own_folder {
        EvalSplit::Val
    } else {
        EvalSplit::Test
    });
    // The run's own dataset is where the run read it (or `--data-dir`); another dataset is
    // at `--data-dir` or its default place, not in the run's folder for its own data.
    let dir = if dataset.is_none() {
        config.data.data_dir.as_deref()
    } else {
        data_dir
    };
    let ds = match split {
        EvalSplit::Val if dataset.is_none() => {
            let data = trainer::load_data(&config)?;
            if data.valid.is_empty() {
                if own_folder {
                    bail!(
                        "the run held out no validation images and its dataset {spec} is one folder \
                         (no test split); evaluate on a separate folder with --dataset folder:DIR"
                    );
                }
                eprintln!("the run held out no validation images; using the test split");
                spec.open(dir, Split::Test)?
            } else {
                data.valid
            }
        }
        EvalSplit::Val => {
            bail!("--split val means the run's validation images; with --dataset use test or train")
        }
        EvalSplit::Test if own_folder => bail!(
            "the run's dataset {spec} is one folder with no test split (its test and train would \
             be the whole folder, training images included); use --split val for the images the \
             run held out, or --dataset folder:DIR for a separate test folder"
        ),
        EvalSplit::Test => spec.open(dir, Split::Test)?,
        EvalSplit::Train => spec.open(dir, Split::Train)?,
    };
    let ds: Arc<dyn ClassificationDataset> = if ds.classes() == info.classes.as_slice() {
        ds
    } else {
        let extra = ds
            .classes()
            .iter()
            .filter(|c| !info.classes.contains(c))
            .count();
        let mapped = ClassSubset::by_name(ds, &info.classes)
            .with_context(|| format!("matching the run's classes to {spec} ({split})"))?;
        if extra > 0 {
            // stderr: stdout may be `--json`.
            eprintln!(
                "scoring the run's {} classes only: {extra} other classes of {spec} left out",
                info.classes.len()
            );
        }
        Arc::new(mapped)
    };
    Ok((ds, split))
}
