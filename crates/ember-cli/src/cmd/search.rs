//! `ember search` and `ember ensemble`.

use super::ensemble::{print_report, run_ensemble};
use crate::args::open_images;
use anyhow::{Result, bail};
use clap::Args;
use ember_train::Backend;
use ember_train::config::Monitor;
use ember_train::distributed::Distributed;
use ember_train::eval::EvalSplit;
use ember_train::search::prune::Prune;
use ember_train::search::sampler::Strategy;
use ember_train::search::space::Space;
use ember_train::search::{
    SearchEvent, SearchEvents, SearchOptions, TrialState, TrialTrainer, ranked, search,
    search_ranks, table, train_trial, trial_dir,
};
use std::path::PathBuf;
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
    /// none, or mpi: spread the trials over the ranks of `mpirun -np N ember search ...`, one
    /// trial a rank at a time; rank 0 keeps the study (needs a build with `--features mpi`).
    #[arg(long, default_value = "none")]
    distributed: Distributed,
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
    let announce = || {
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
        )
    };
    let outcome = match args.distributed {
        Distributed::None => {
            ember_train::distributed::not_one_of_many()?;
            announce();
            search(&space, &text, &options, &args.out)?
        }
        Distributed::Mpi => {
            let mailbox = ember_train::distributed::mailbox()?;
            let root = mailbox.rank() == 0;
            if root {
                announce();
                let n = mailbox.size();
                println!("{n} ranks: {n} trials at once");
            }
            // The other ranks train what rank 0 sends them and show nothing.
            let quiet = |config: &_, resume, hook| {
                ember_train::trainer::Training::new(config)
                    .resume(resume)
                    .with_hook(hook)
                    .silent()
                    .launch()
                    .map(|o| o.records)
            };
            let (train, events): (&TrialTrainer, SearchEvents) = if root {
                (&train_trial, Arc::new(|e: &SearchEvent| println!("{e}")))
            } else {
                (&quiet, Arc::new(|_: &SearchEvent| {}))
            };
            let spread = search_ranks(&space, &text, &options, &args.out, mailbox, train, events)?;
            match spread {
                Some(outcome) => outcome,
                None => return Ok(()),
            }
        }
    };
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
        let (ds, _) = open_images(&runs[0], None, None, Some(EvalSplit::Val))?;
        let report = run_ensemble(&runs, ds, Backend::Flex)?;
        print_report(&report, "validation split");
    }
    Ok(())
}
