//! `ember`: the command-line face of Ember.

mod augment;
mod summary;

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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Summary(args) => summary::run(args),
        Command::Augment(args) => augment::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
