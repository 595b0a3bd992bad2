//! `ember predict`: the top classes of image files, by a trained run.

use crate::args::{BackendArg, RunArg};
use anyhow::Result;
use clap::Args;
use ember_train::predict::{TrainedModel, top_k};
use ember_train::run::Weights;
use std::path::PathBuf;

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
    /// Which weights: best (the epoch with the best validation metric), final (the last
    /// epoch's) or ema (the model EMA's, with `--ema-decay`).
    #[arg(long, default_value = "best")]
    weights: Weights,
    /// One JSON document per image.
    #[arg(long)]
    json: bool,
}

pub fn run(args: PredictArgs) -> Result<()> {
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
