//! The quickstart: LeNet-5 (ReLU, max pooling) on MNIST with Burn's Learner.
//!
//! Runs offline on the MNIST subset the repository ships (6,000 training and 1,000 test
//! digits) in about a minute on two cores:
//!
//! ```text
//! cargo run --release --example lenet_mnist
//! cargo run --release --example lenet_mnist -- --data-dir ../shared/data/mnist --epochs 12 \
//!     --optimizer momentum --lr 0.1                                                  # full MNIST
//! cargo run --release --example lenet_mnist --features wgpu -- --backend wgpu
//! ```
//!
//! The recipe is data, `recipes/lenet_mnist.toml`; every `ember train` flag changes it. It
//! writes a run directory (metrics.csv, curves.png, report.txt, confusion.png, weights) and
//! prints one JSON line with the timing and the test accuracy.

/// mimalloc, kept warm (feature `mimalloc`, on by default): the binary chooses the allocator.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: ember::train::allocator::Allocator = ember::train::allocator::Allocator;

use clap::Parser;
use ember::train::cli::TrainArgs;
use ember::train::config::TrainConfig;
use ember::train::trainer;

/// The recipe, as data: `recipes/lenet_mnist.toml` (also `ember train --config` material).
const RECIPE: &str = include_str!("../recipes/lenet_mnist.toml");

#[derive(Parser)]
struct Args {
    /// Any `ember train` flag changes the recipe.
    #[command(flatten)]
    train: TrainArgs,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let recipe: TrainConfig = toml::from_str(RECIPE)?;
    let config = args.train.config_over(recipe)?;
    // A fresh run each time, unless --resume continues one.
    if args.train.resume.is_none() && config.runtime.out.join("checkpoint").exists() {
        std::fs::remove_dir_all(&config.runtime.out)?;
    }
    let outcome = trainer::Training::new(&config)
        .resume(args.train.resume.is_some())
        .launch()?;
    let report = outcome.report.as_ref();
    let train_images: f64 = outcome
        .records
        .iter()
        .filter_map(|r| r.train_images_per_sec)
        .fold(0.0, f64::max);
    println!(
        "{}",
        serde_json::json!({
            "example": "lenet_mnist",
            "backend": config.runtime.backend.resolve().backend.name(),
            "epochs": outcome.records.len(),
            "seconds": outcome.seconds,
            "seconds_per_epoch": outcome.seconds / outcome.records.len().max(1) as f64,
            "best_train_images_per_sec": train_images,
            "test_accuracy": report.map(|r| r.accuracy),
            "test_images": report.map(|r| r.n),
            "run": outcome.run.root,
        })
    );
    Ok(())
}
