//! `ember train`: a zoo model on a dataset, with Burn's Learner; writes a run directory.

use anyhow::Result;
use ember_train::config::TrainConfig;
use ember_train::trainer;

pub use ember_train::cli::TrainArgs;

pub fn run(args: TrainArgs) -> Result<()> {
    let config = args.config()?;
    let resume = args.resume.is_some();
    train_and_report(config, resume)
}

pub(crate) fn train_and_report(config: TrainConfig, resume: bool) -> Result<()> {
    use ember_train::distributed::{Distributed, launcher_rank, not_one_of_many};
    if config.runtime.distributed == Distributed::None {
        not_one_of_many()?;
    } else if launcher_rank().unwrap_or(0) > 0 {
        // One summary per job: rank 0's. Errors still print on every rank.
        trainer::Training::new(&config).resume(resume).launch()?;
        return Ok(());
    }
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
