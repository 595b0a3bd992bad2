//! `ember eval`: accuracy, per-class accuracy and confusion matrix of a run on a split.

use crate::args::{BackendArg, ImagesArg, RunArg};
use anyhow::{Context, Result};
use clap::Args;
use ember_train::config::Tta;
use ember_train::eval::EvalSplit;
use ember_train::predict::TrainedModel;
use ember_train::run::{RunDir, Weights};

#[derive(Args)]
pub struct EvalArgs {
    #[command(flatten)]
    run: RunArg,
    #[command(flatten)]
    images: ImagesArg,
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
    /// Which weights: best (the epoch with the best validation metric, as the run's report),
    /// final (the last epoch's) or ema (the model EMA's, with `--ema-decay`). Best was chosen
    /// on the validation split, so on that split only final or ema give a fair figure.
    #[arg(long, default_value = "best")]
    weights: Weights,
    /// Print {"accuracy":..., "top5":..., "n":..., "loss":..., "weights":...} only.
    #[arg(long)]
    json: bool,
}

pub fn run(args: EvalArgs) -> Result<()> {
    let device = args.backend.device()?;
    let trained = TrainedModel::load_from(&args.run, args.weights, &device)?;
    let (ds, split) = args.images.open(&args.run, None)?;
    if split == EvalSplit::Val
        && args.images.dataset.is_none()
        && args.weights == Weights::Best
        && RunDir::new(&args.run.path).best().is_file()
    {
        eprintln!(
            "note: the best weights were chosen on these validation images, so this accuracy is optimistic; `--weights final` gives a fair one"
        );
    }
    let spec = args
        .images
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
