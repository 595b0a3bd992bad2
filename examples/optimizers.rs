//! The optimisers of d2l chapter 12 on the same model, data and seed.
//!
//! ```text
//! cargo run --release --example optimizers [-- --epochs 8 --target 0.95 --out runs/optimizers]
//! ```
//!
//! Modern LeNet-5 on MNIST (the shipped 6,000-image subset; `--data-dir` for the full set),
//! the same initial weights, batches and augmentation for every optimiser, a constant
//! learning rate at each optimiser's customary value (`--lr NAME=VALUE` to change one).
//! Writes `curves.png` (validation accuracy and training loss per epoch, one line per
//! optimiser) and prints a table: epochs to reach the target validation accuracy, final
//! accuracy, and seconds.

/// mimalloc, kept warm (feature `mimalloc`, on by default): the binary chooses the allocator.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: ember::train::allocator::Allocator = ember::train::allocator::Allocator;

use anyhow::{Context, Result};
use clap::Parser;
use ember::data::transform::Preset;
use ember::train::config::{
    DataConfig, LoopConfig, OptimConfig, OptimizerKind, RuntimeConfig, ScheduleConfig,
    ScheduleKind, TrainConfig,
};
use ember::train::plot::{Axes, Series, palette, panels_png};
use ember::train::trainer;
use std::path::PathBuf;

#[derive(Parser)]
struct Args {
    #[arg(long, default_value_t = 8)]
    epochs: usize,
    /// Validation accuracy (fraction) whose first epoch the table reports.
    #[arg(long, default_value_t = 0.95)]
    target: f64,
    /// Override a learning rate, e.g. `--lr adam=0.003` (repeatable).
    #[arg(long, value_parser = parse_lr)]
    lr: Vec<(OptimizerKind, f64)>,
    #[arg(long, default_value = "data/mnist-subset")]
    data_dir: PathBuf,
    #[arg(long, default_value = "runs/optimizers")]
    out: PathBuf,
    #[arg(long, default_value_t = 42)]
    seed: u64,
}

fn parse_lr(s: &str) -> Result<(OptimizerKind, f64), String> {
    let (name, v) = s
        .split_once('=')
        .ok_or_else(|| format!("expected NAME=VALUE, got `{s}`"))?;
    let kind: OptimizerKind = name.parse()?;
    let lr: f64 = v.parse().map_err(|_| format!("`{v}` is not a number"))?;
    Ok((kind, lr))
}

/// Each optimiser at the learning rate it is usually run with on a problem of this size
/// (d2l's values where it gives one).
const OPTIMIZERS: [(OptimizerKind, f64); 7] = [
    (OptimizerKind::Sgd, 0.1),
    (OptimizerKind::Momentum, 0.02),
    (OptimizerKind::Nesterov, 0.02),
    (OptimizerKind::Adagrad, 0.05),
    (OptimizerKind::Rmsprop, 0.001),
    (OptimizerKind::Adadelta, 1.0),
    (OptimizerKind::Adam, 0.001),
];

fn main() -> Result<()> {
    let args = Args::parse();
    let mut rows = Vec::new();
    for (i, (kind, default_lr)) in OPTIMIZERS.into_iter().enumerate() {
        let lr = args
            .lr
            .iter()
            .rev()
            .find(|(k, _)| *k == kind)
            .map_or(default_lr, |&(_, v)| v);
        let name = format!("{kind:?}").to_lowercase();
        let config = TrainConfig {
            model: "lenet5_modern".into(),
            data: DataConfig {
                dataset: ember::data::DatasetSpec::Mnist,
                data_dir: Some(args.data_dir.clone()),
                val_split: 0.1,
                augment: Preset::None.into(),
                ..Default::default()
            },
            optim: OptimConfig {
                optimizer: kind,
                lr,
                ..Default::default()
            },
            train_loop: LoopConfig {
                epochs: args.epochs,
                batch_size: 128,
                seed: args.seed,
                ..Default::default()
            },
            runtime: RuntimeConfig {
                log_every_secs: 60.0,
                out: args.out.join(&name),
                ..Default::default()
            },
            schedule: ScheduleConfig {
                kind: ScheduleKind::Constant,
                ..Default::default()
            },
            ..TrainConfig::default()
        };
        if config.runtime.out.exists() {
            std::fs::remove_dir_all(&config.runtime.out)
                .with_context(|| format!("removing the old {}", config.runtime.out.display()))?;
        }
        println!("== {name} (lr {lr})");
        let outcome = trainer::Training::new(&config).launch()?;
        rows.push((i, name, lr, outcome));
    }

    let series = |f: &dyn Fn(&ember::train::logger::EpochRecord) -> Option<f64>| {
        rows.iter()
            .map(|(i, name, lr, o)| Series {
                label: format!("{name} ({lr})"),
                points: o
                    .records
                    .iter()
                    .filter_map(|r| f(r).map(|v| (r.epoch as f64, v)))
                    .collect(),
                color: palette(*i),
                dashed: false,
                markers_only: false,
            })
            .collect::<Vec<_>>()
    };
    let axes = |title: &str, y: &str, log_y: bool| Axes {
        title: title.into(),
        x_desc: "epoch".into(),
        y_desc: y.into(),
        log_y,
        x_names: None,
    };
    std::fs::create_dir_all(&args.out)?;
    let png = args.out.join("curves.png");
    panels_png(
        &[
            (
                axes("Validation accuracy", "%", false),
                series(&|r| r.val_accuracy.map(|v| 100.0 * v)),
            ),
            (
                axes("Training loss", "cross-entropy (log)", true),
                series(&|r| r.train_loss),
            ),
        ],
        640,
        480,
        &png,
    )?;

    println!(
        "\nLeNet-5 (modern), MNIST ({}), batch 128, constant learning rate, seed {}, {} epochs:\n",
        args.data_dir.display(),
        args.seed,
        args.epochs
    );
    println!(
        "| optimiser | lr | epochs to {:.0}% val | final val accuracy | final train loss | seconds |",
        100.0 * args.target
    );
    println!("|---|---:|---:|---:|---:|---:|");
    for (_, name, lr, o) in &rows {
        let reached = o
            .records
            .iter()
            .find(|r| r.val_accuracy.is_some_and(|a| a >= args.target))
            .map_or("not reached".to_string(), |r| r.epoch.to_string());
        let last = o.records.last();
        println!(
            "| {name} | {lr} | {reached} | {:.2}% | {:.4} | {:.1} |",
            100.0 * last.and_then(|r| r.val_accuracy).unwrap_or(f64::NAN),
            last.and_then(|r| r.train_loss).unwrap_or(f64::NAN),
            o.seconds
        );
    }
    println!("\n-> {}", png.display());
    Ok(())
}
