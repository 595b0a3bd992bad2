//! `ember train`, `ember eval` and `ember predict`.

use crate::args::{BackendArg, RunArg};
use anyhow::{Context, Result, bail};
use clap::Args;
use ember_data::{ClassificationDataset, DatasetSpec};
use ember_train::config::{TrainConfig, Tta};
use ember_train::eval::EvalSplit;
use ember_train::inspect::images::{SplitError, run_images};
use ember_train::predict::{TrainedModel, top_k};
use ember_train::run::{RunDir, Weights};
use ember_train::weights::{self, Layout, LoadOptions};
use ember_train::{Backend, TrainError, trainer};
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use ember_train::cli::TrainArgs;
use ember_train::cli::{FinetuneSection, KnobFlags, default_run_dir, in_flag_terms};

pub fn run(args: TrainArgs) -> Result<()> {
    let config = args.config()?;
    let resume = args.resume.is_some();
    train_and_report(config, resume)
}

#[derive(Args)]
pub struct FinetuneArgs {
    /// The `[finetune]` section's flags, from its knobs' declarations.
    #[command(flatten)]
    finetune: KnobFlags<FinetuneSection>,
    #[command(flatten)]
    train: TrainArgs,
}

pub fn finetune(mut args: FinetuneArgs) -> Result<()> {
    // Text a knob's type does not read (`--freeze half`) is the first error, as a parser's.
    args.finetune.check().map_err(in_flag_terms)?;
    let resume = args.train.resume.is_some();
    let from = args.finetune.get("finetune.from").map(PathBuf::from);
    // From a run, the model defaults to the run's (with its options).
    let mut source_options = None;
    if let Some(from) = &from
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
    if args.train.knobs.get("runtime.out").is_none() && !resume && args.train.config.is_none() {
        let model = args.train.model.clone().unwrap_or_default();
        let dataset = args
            .train
            .knobs
            .get("data.dataset")
            .and_then(|d| d.parse().ok());
        let dir = default_run_dir(&model, dataset.as_ref(), "-finetune");
        args.train
            .knobs
            .insert("runtime.out", dir.display().to_string())?;
    }
    let mut config = args.train.unchecked(None).map_err(in_flag_terms)?;
    if let Some(o) = source_options
        && config.model_options.is_empty()
    {
        config.model_options = o;
    }
    let mut table = config.to_table()?;
    args.finetune
        .apply_to_table(&mut table)
        .map_err(in_flag_terms)?;
    let mut config = TrainConfig::from_table(table).map_err(anyhow::Error::msg)?;
    let ft = config.finetune.get_or_insert_with(Default::default);
    if ft.from.as_os_str().is_empty() && !resume {
        bail!("give --from RUN_DIR or a weights file (.bpk, .safetensors, .pth)")
    }
    config.validate().map_err(in_flag_terms)?;
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

/// The images to score a run on (the library's [`run_images`]), its notes on stderr (stdout
/// may be `--json`), and its split errors in this command's flags.
pub(crate) fn open_split(
    run: &Path,
    dataset: Option<&DatasetSpec>,
    data_dir: Option<&Path>,
    split: Option<EvalSplit>,
) -> Result<(Arc<dyn ClassificationDataset>, EvalSplit)> {
    match run_images(run, dataset, data_dir, split) {
        Ok(r) => {
            for note in &r.notes {
                eprintln!("{note}");
            }
            Ok((r.images, r.split))
        }
        Err(TrainError::Split(e)) => {
            let fix = match e {
                SplitError::NoValidation(_) => "--dataset folder:DIR",
                SplitError::ValidationOfAnotherDataset => "--split test or --split train",
                SplitError::NoTestSplit(_) => "--split val, or --dataset folder:DIR",
            };
            bail!("{e} ({fix})")
        }
        Err(e) => Err(e.into()),
    }
}
