//! `ember search` and `ember ensemble`.

use crate::args::BackendArg;
use crate::train::open_split;
use anyhow::{Result, bail};
use clap::Args;
use ember_data::{DatasetSpec, ImageItem};
use ember_train::Backend;
use ember_train::config::Monitor;
use ember_train::ensemble::{EnsembleReport, ensemble};
use ember_train::eval::EvalSplit;
use ember_train::search::prune::Prune;
use ember_train::search::sampler::Strategy;
use ember_train::search::space::Space;
use ember_train::search::{SearchOptions, TrialState, ranked, search, table, trial_dir};
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Args)]
pub struct SearchArgs {
    /// The search space: a [base] table of `ember train` options and [space.NAME] knobs.
    #[arg(long)]
    space: PathBuf,
    /// grid, random or bayes (tree-structured Parzen estimator).
    #[arg(long, default_value = "bayes")]
    strategy: Strategy,
    /// Trials to run (a grid stops when exhausted).
    #[arg(long, default_value_t = 20)]
    trials: usize,
    /// val_accuracy (maximised) or val_loss (minimised), at each trial's best epoch.
    #[arg(long, default_value = "val_accuracy")]
    objective: Monitor,
    /// none, median (median stopping rule) or asha (asynchronous successive halving).
    #[arg(long, default_value = "none")]
    prune: Prune,
    /// Trials at once (each with its own data loader thread).
    #[arg(long, default_value_t = 1)]
    parallel: usize,
    /// Seed of the sampler (the trials' own seed is the space's [base] seed).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Search directory; running the same command again resumes it.
    #[arg(long)]
    out: PathBuf,
    /// Afterwards, average the best K trials' softmax outputs on the validation split.
    #[arg(long)]
    ensemble_top: Option<usize>,
}

pub fn run(args: SearchArgs) -> Result<()> {
    let text = std::fs::read_to_string(&args.space).map_err(|e| {
        anyhow::anyhow!(
            "{}: cannot read the search space: {e}",
            args.space.display()
        )
    })?;
    let space = Space::parse(&text, &args.space)?;
    let options = SearchOptions {
        strategy: args.strategy,
        trials: args.trials,
        objective: args.objective,
        prune: args.prune,
        parallel: args.parallel,
        seed: args.seed,
    };
    if args.ensemble_top == Some(0) {
        bail!("--ensemble-top must be at least 1");
    }
    println!(
        "searching {} knobs ({}) with {:?}, {} trials, pruning {:?} -> {}",
        space.knobs.len(),
        space
            .knobs
            .iter()
            .map(|k| k.name.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        options.strategy,
        options.trials,
        options.prune,
        args.out.display()
    );
    let outcome = search(&space, &text, &options, &args.out)?;
    println!("\n{}\n", table(&space, &options, &outcome.trials));
    match &outcome.best {
        Some(best) => println!(
            "best: trial {} ({}); its config: {} (ember train --config); results: {}, plot: {}",
            best.id,
            best.objective.map_or("-".into(), |o| format!("{o:.4}")),
            args.out.join("best.toml").display(),
            args.out.join("results.csv").display(),
            args.out.join("search.png").display()
        ),
        None => bail!("no trial finished; see the failures above"),
    }
    if let Some(k) = args.ensemble_top {
        let runs: Vec<PathBuf> = ranked(&outcome.trials, options.objective)
            .into_iter()
            .filter(|t| t.objective.is_some() && t.state == TrialState::Complete)
            .filter(|t| {
                let r = ember_train::run::RunDir::new(trial_dir(&args.out, t.id));
                r.best().is_file() || r.final_weights().is_file()
            })
            .take(k)
            .map(|t| trial_dir(&args.out, t.id))
            .collect();
        if runs.is_empty() {
            bail!("no complete trial to ensemble");
        }
        let (ds, _) = open_split(&runs[0], None, None, Some(EvalSplit::Val))?;
        let report = run_ensemble(&runs, ds, Backend::Flex)?;
        print_report(&report, "validation split");
    }
    Ok(())
}

#[derive(Args)]
pub struct EnsembleArgs {
    /// Run directories made by `ember train` (or a search's trial-NNN directories).
    #[arg(long, num_args = 1.., required = true)]
    runs: Vec<PathBuf>,
    /// Dataset (default: the first run's).
    #[arg(long)]
    dataset: Option<DatasetSpec>,
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// val (the first run's validation images), test or train. Default: test, or val for
    /// runs on a folder dataset (which has no test split).
    #[arg(long)]
    split: Option<EvalSplit>,
    #[command(flatten)]
    backend: BackendArg,
    /// One JSON document.
    #[arg(long)]
    json: bool,
}

fn run_ensemble(
    runs: &[PathBuf],
    ds: Arc<dyn ember_data::ClassificationDataset>,
    backend: Backend,
) -> Result<EnsembleReport> {
    let device = backend.device()?;
    let ds: Arc<dyn burn::data::dataset::Dataset<ImageItem>> =
        Arc::new(ember_train::trainer::AsItems(ds));
    Ok(ensemble(runs, ds, &device)?)
}

fn print_report(r: &EnsembleReport, split: &str) {
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

pub fn ensemble_cmd(args: EnsembleArgs) -> Result<()> {
    let first: &Path = &args.runs[0];
    let (ds, split) = open_split(
        first,
        args.dataset.as_ref(),
        args.data_dir.as_deref(),
        args.split,
    )?;
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
