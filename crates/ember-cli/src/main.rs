//! `ember`: the command-line face of Ember.

mod augment;
mod search;
mod summary;
mod train;
mod viz;

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
    Finetune(Box<train::FinetuneArgs>),
    /// Convert weights (a run, .bpk, .safetensors or a torchvision .pth) to .safetensors or .bpk.
    Export(train::ExportArgs),
    /// Accuracy, per-class accuracy and confusion matrix of a run on a dataset split.
    Eval(train::EvalArgs),
    /// Top classes of image files, by a trained run.
    Predict(train::PredictArgs),
    /// Pictures of a trained run: filters, feature maps, top patches, curves, gradients.
    Viz(viz::VizArgs),
    /// Hyper-parameter search over `ember train` options: grid, random or Bayesian (TPE),
    /// with median or ASHA pruning; resumable.
    Search(Box<search::SearchArgs>),
    /// Average the softmax outputs of several trained runs; compare with the best one.
    Ensemble(search::EnsembleArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Summary(args) => summary::run(args),
        Command::Augment(args) => augment::run(args),
        Command::Train(args) => train::run(*args),
        Command::Finetune(args) => train::finetune(*args),
        Command::Export(args) => train::export(args),
        Command::Eval(args) => train::eval(args),
        Command::Predict(args) => train::predict(args),
        Command::Viz(args) => viz::run(args),
        Command::Search(args) => search::run(*args),
        Command::Ensemble(args) => search::ensemble_cmd(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
