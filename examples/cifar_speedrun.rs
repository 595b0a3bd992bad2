//! CIFAR-10 to 94% as fast as it is known to go: airbench94 (Keller Jordan, "94% on CIFAR-10
//! in 3.29 seconds on a single GPU", arXiv 2404.00498) in Ember, on any backend.
//!
//! ```text
//! cargo run --release --example cifar_speedrun -- --dataset folder:../shared/data/cifar10/cifar10-train-jpg.tar.gz
//! cargo run --release --example cifar_speedrun -- --data-dir DIR     # the official binaries
//! cargo run --release --example cifar_speedrun --features wgpu -- --backend wgpu
//! ```
//!
//! The recipe is data, `recipes/airbench94.toml` (also `ember train --config` material), and
//! every `ember train` flag changes it: 9.9 epochs of batch 1024, whitening from 5,000 training
//! images, SGD with Nesterov momentum 0.85, batch-norm biases at 64x the rate, a piecewise-
//! linear schedule, label smoothing 0.2, lookahead, alternating flips and 2-pixel translations.
//! Prints one JSON line of time-to-accuracy: training seconds (the whitening and every step;
//! neither JPEG decoding nor the per-epoch validation counted), then the final weights'
//! accuracy on the validation split without and with the 6-view test-time augmentation.
//! `docs/results.md` has what it reached and how long it took, against PyTorch on the same
//! cores (`benches/torch_airbench.py`).

/// mimalloc, kept warm (feature `mimalloc`, on by default): the binary chooses the allocator.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: ember::train::allocator::Allocator = ember::train::allocator::Allocator;

use clap::Parser;
use ember::train::cli::TrainArgs;
use ember::train::config::{TrainConfig, Tta};
use ember::train::predict::TrainedModel;
use ember::train::run::Weights;
use ember::train::trainer;

/// The recipe, as data: `recipes/airbench94.toml`.
const RECIPE: &str = include_str!("../recipes/airbench94.toml");

#[derive(Parser)]
struct Args {
    /// Any `ember train` flag changes the recipe (`--resume RUN_DIR` continues a run).
    #[command(flatten)]
    train: TrainArgs,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let recipe: TrainConfig = toml::from_str(RECIPE)?;
    let config = args.train.config_over(recipe)?;
    let outcome = trainer::Training::new(&config)
        .resume(args.train.resume.is_some())
        .launch()?;
    // Each epoch's training seconds, its images over its rate: the sum is the training time
    // without the validation passes; the whitening comes on top.
    let data = trainer::load_data(&config)?;
    let (steps_per_epoch, total_steps) = trainer::run_steps(&config, data.train.len(), 1);
    let images_of = trainer::epoch_items(&config, steps_per_epoch, total_steps, data.train.len());
    let epochs_train_seconds: f64 = outcome
        .records
        .iter()
        .filter_map(|r| {
            r.train_images_per_sec
                .map(|rate| images_of(r.epoch) as f64 / rate)
        })
        .sum();
    let mut accuracy = (None, None);
    if !data.valid.is_empty() {
        let device = config.runtime.backend.device()?;
        let model = TrainedModel::load_from(&config.runtime.out, Weights::Final, &device)?;
        let eval = |tta| {
            model
                .evaluate(data.valid.clone(), 500, config.runtime.workers, tta)
                .map(|r| r.accuracy)
        };
        accuracy = (Some(eval(Tta::None)?), Some(eval(Tta::FlipTranslate)?));
    }
    println!(
        "{}",
        serde_json::json!({
            "example": "cifar_speedrun",
            "model": config.model,
            "backend": config.runtime.backend.resolve().backend.name(),
            "seed": config.train_loop.seed,
            "train_images": data.train.len(),
            "steps": total_steps,
            "steps_per_epoch": steps_per_epoch,
            "train_seconds": epochs_train_seconds + outcome.data_init_seconds,
            "whitening_seconds": outcome.data_init_seconds,
            "seconds_with_validation": outcome.seconds,
            "val_images": data.valid.len(),
            "val_accuracy": accuracy.0,
            "val_accuracy_tta": accuracy.1,
        })
    );
    Ok(())
}
