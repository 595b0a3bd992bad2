//! `ember`: the command-line face of Ember.

/// mimalloc, kept warm (feature `mimalloc`, on by default): the binary chooses the allocator.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: ember_train::allocator::Allocator = ember_train::allocator::Allocator;

mod args;
mod cmd;

use cmd::{augment, ensemble, eval, export, finetune, predict, search, summary, train, viz};

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "ember",
    version,
    about = "Convolutional networks made practical, on Burn"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Per-layer output shapes, parameters, MACs and receptive fields of a zoo model.
    Summary(summary::SummaryArgs),
    /// A PNG grid: originals in the first column, augmented versions beside them.
    Augment(augment::AugmentArgs),
    /// Train a zoo model on a dataset with Burn's Learner; writes a run directory.
    Train(Box<train::TrainArgs>),
    /// Fine-tune pre-trained weights (a run, or a .bpk/.safetensors/.pth file) on a new
    /// dataset: new head, frozen layers, a smaller backbone learning rate.
    Finetune(Box<finetune::FinetuneArgs>),
    /// Convert weights (a run, .bpk, .safetensors or a torchvision .pth) to .safetensors or .bpk.
    Export(export::ExportArgs),
    /// Accuracy, per-class accuracy and confusion matrix of a run on a dataset split.
    Eval(eval::EvalArgs),
    /// Top classes of image files, by a trained run.
    Predict(predict::PredictArgs),
    /// Pictures of a trained run: filters, feature maps, top patches, curves, gradients.
    Viz(viz::VizArgs),
    /// Hyper-parameter search over `ember train` options: grid, random or Bayesian (TPE),
    /// with median or ASHA pruning; resumable.
    Search(Box<search::SearchArgs>),
    /// Average the softmax outputs of several trained runs; compare with the best one.
    Ensemble(ensemble::EnsembleArgs),
}

/// A panic is a bug in Ember or below it, never a user's mistake (those are typed errors): say
/// so in one line, keep the backtrace in a file instead of spilling it over a progress display,
/// and let the process exit non-zero (101) as Rust does.
fn install_panic_report() {
    std::panic::set_hook(Box::new(|info| {
        // Caught and turned into a warning where it happened (Burn's file logger on a full disk).
        if ember_train::logger::panic_is_handled() {
            return;
        }
        let location = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let message = ember_train::error::panic_message(info.payload());
        let log = std::env::temp_dir().join(format!("ember-panic-{}.log", std::process::id()));
        let backtrace = std::backtrace::Backtrace::force_capture();
        let written =
            std::fs::write(&log, format!("panic: {message}{location}\n\n{backtrace}\n")).is_ok();
        let details = if written {
            format!("backtrace in {}", log.display())
        } else {
            "set RUST_BACKTRACE=1 for a backtrace".into()
        };
        eprintln!(
            "\nember: internal error, this is a bug (please report it): {message}{location}; {details}"
        );
    }));
}

fn main() -> ExitCode {
    install_panic_report();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Summary(args) => summary::run(args),
        Command::Augment(args) => augment::run(args),
        Command::Train(args) => train::run(*args),
        Command::Finetune(args) => finetune::run(*args),
        Command::Export(args) => export::run(args),
        Command::Eval(args) => eval::run(args),
        Command::Predict(args) => predict::run(args),
        Command::Viz(args) => viz::run(args),
        Command::Search(args) => search::run(*args),
        Command::Ensemble(args) => ensemble::run(args),
    };
    match result {
        Ok(()) => {
            ember_train::distributed::finalize();
            ExitCode::SUCCESS
        }
        Err(e) => {
            // The library names knobs by config path; here they are flags.
            eprintln!(
                "error: {}",
                ember_train::cli::in_flag_words(&format!("{e:#}"))
            );
            ExitCode::FAILURE
        }
    }
}
