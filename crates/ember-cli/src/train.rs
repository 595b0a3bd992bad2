//! `ember train`, `ember eval` and `ember predict`.

use crate::args::{BackendArg, RunArg};
use anyhow::{Context, Result, bail};
use clap::Args;
use ember_data::split::ClassSubset;
use ember_data::{ClassificationDataset, DatasetSpec, Split};
use ember_train::config::{TrainConfig, Tta};
use ember_train::eval::EvalSplit;
use ember_train::finetune::Freeze;
use ember_train::predict::{TrainedModel, top_k};
use ember_train::run::{RunDir, Weights};
use ember_train::weights::{self, Layout, LoadOptions};
use ember_train::{Backend, trainer};
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use ember_train::cli::TrainArgs;
use ember_train::cli::default_run_dir;

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
    /// Test-time augmentation: none, flip (average the logits of each image and its mirror),
    /// or flip-translate (airbench's six views: image, mirror and 1-pixel shifts).
    #[arg(long, default_value = "none")]
    tta: Tta,
    /// Which weights: best (the epoch with the best validation metric, as the run's report)
    /// or final (the last epoch's). Best was chosen on the validation split, so on that split
    /// only final gives a fair figure.
    #[arg(long, default_value = "best")]
    weights: Weights,
    /// Print {"accuracy":..., "top5":..., "n":..., "loss":..., "weights":...} only.
    #[arg(long)]
    json: bool,
}

pub fn eval(args: EvalArgs) -> Result<()> {
    let device = args.backend.device()?;
    let trained = TrainedModel::load_from(&args.run, args.weights, &device)?;
    let (ds, split) = open_split(
        &args.run,
        args.dataset.as_ref(),
        args.data_dir.as_deref(),
        args.split,
    )?;
    if split == EvalSplit::Val
        && args.dataset.is_none()
        && args.weights == Weights::Best
        && RunDir::new(&args.run.path).best().is_file()
    {
        eprintln!(
            "note: the best weights were chosen on these validation images, so this accuracy is optimistic; `--weights final` gives a fair one"
        );
    }
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
            serde_json::json!({"accuracy": report.accuracy, "top5": report.top5, "n": report.n, "loss": report.loss, "weights": args.weights})
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
    /// Which weights: best (the epoch with the best validation metric) or final (the last
    /// epoch's).
    #[arg(long, default_value = "best")]
    weights: Weights,
    /// One JSON document per image.
    #[arg(long)]
    json: bool,
}

pub fn predict(args: PredictArgs) -> Result<()> {
    let device = args.backend.device()?;
    let trained = TrainedModel::load_from(&args.run, args.weights, &device)?;
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
