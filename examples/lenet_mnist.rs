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
//! It writes a run directory (metrics.csv, curves.png, report.txt, confusion.png, weights) and
//! prints one JSON line with the timing and the test accuracy.

use clap::Parser;
use ember::train::config::{
    DataConfig, LoopConfig, OptimConfig, OptimizerKind, RuntimeConfig, ScheduleConfig,
    ScheduleKind, TrainConfig,
};
use ember::train::{Backend, trainer};
use std::path::PathBuf;

#[derive(Parser)]
struct Args {
    /// MNIST folder (the four IDX files, gzipped or not).
    #[arg(long, default_value = "data/mnist-subset")]
    data_dir: PathBuf,
    #[arg(long, default_value_t = 5)]
    epochs: usize,
    #[arg(long, default_value_t = 128)]
    batch_size: usize,
    #[arg(long, default_value = "auto")]
    backend: Backend,
    #[arg(long, default_value_t = 1e-3)]
    lr: f64,
    /// sgd, momentum, nesterov, adagrad, rmsprop, adadelta, adam, adamw.
    #[arg(long, default_value = "adam")]
    optimizer: OptimizerKind,
    /// Fraction held out for validation (0: train on everything, report on the test set).
    #[arg(long, default_value_t = 0.0)]
    val_split: f64,
    #[arg(long, default_value = "runs/lenet_mnist")]
    out: PathBuf,
    #[arg(long, default_value_t = 1)]
    workers: usize,
    #[arg(long, default_value_t = 42)]
    seed: u64,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.out.join("checkpoint").exists() {
        std::fs::remove_dir_all(&args.out)?;
    }
    let config = TrainConfig {
        model: "lenet5_modern".into(),
        data: DataConfig {
            dataset: ember::data::DatasetSpec::Mnist,
            data_dir: Some(args.data_dir.clone()),
            val_split: args.val_split,
            ..Default::default()
        },
        optim: OptimConfig {
            optimizer: args.optimizer,
            lr: args.lr,
            ..Default::default()
        },
        train_loop: LoopConfig {
            epochs: args.epochs,
            batch_size: args.batch_size,
            seed: args.seed,
            ..Default::default()
        },
        runtime: RuntimeConfig {
            backend: args.backend,
            workers: args.workers,
            out: args.out.clone(),
            ..Default::default()
        },
        schedule: ScheduleConfig {
            kind: ScheduleKind::Cosine,
            ..Default::default()
        },
        ..TrainConfig::default()
    };
    let outcome = trainer::Training::new(&config).launch()?;
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
            "backend": args.backend.resolve().backend.name(),
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
