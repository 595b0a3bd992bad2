//! `ember ensemble`: the softmax outputs of several trained runs averaged, against the best.

use crate::args::{BackendArg, ImagesArg};
use anyhow::Result;
use clap::Args;
use ember_data::ImageItem;
use ember_train::Backend;
use ember_train::ensemble::{EnsembleReport, ensemble};
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Args)]
pub struct EnsembleArgs {
    /// Run directories made by `ember train` (or a search's trial-NNN directories).
    #[arg(long, num_args = 1.., required = true)]
    runs: Vec<PathBuf>,
    /// The images, of the first run's dataset unless `--dataset` says otherwise.
    #[command(flatten)]
    images: ImagesArg,
    #[command(flatten)]
    backend: BackendArg,
    /// One JSON document.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run_ensemble(
    runs: &[PathBuf],
    ds: Arc<dyn ember_data::ClassificationDataset>,
    backend: Backend,
) -> Result<EnsembleReport> {
    let device = backend.device()?;
    let ds: Arc<dyn burn::data::dataset::Dataset<ImageItem>> =
        Arc::new(ember_train::trainer::AsItems(ds));
    Ok(ensemble(runs, ds, &device)?)
}

pub(crate) fn print_report(r: &EnsembleReport, split: &str) {
    println!(
        "ensemble of {} runs on {} images of the {split}:",
        r.members.len(),
        r.n
    );
    for (dir, acc) in &r.members {
        println!("  {:>7.2}%  {}", 100.0 * acc, dir.display());
    }
    println!(
        "  {:>7.2}%  average of the softmax outputs ({:+.2} points over the best member)",
        100.0 * r.ensemble,
        100.0 * (r.ensemble - r.best_member())
    );
}

pub fn run(args: EnsembleArgs) -> Result<()> {
    let first: &Path = &args.runs[0];
    let (ds, split) = args.images.open(first, None)?;
    let report = run_ensemble(&args.runs, ds, args.backend.kind)?;
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "n": report.n,
                "ensemble": report.ensemble,
                "best_member": report.best_member(),
                "members": report.members.iter().map(|(d, a)| serde_json::json!({"run": d.display().to_string(), "accuracy": a})).collect::<Vec<_>>(),
            })
        );
    } else {
        print_report(&report, &format!("{split} split"));
    }
    Ok(())
}
