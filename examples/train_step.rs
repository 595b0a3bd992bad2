//! Training-step throughput of one zoo model: forward, cross-entropy, backward and one
//! optimizer step on a fixed random batch, as `benches/torch_train_step.py` does for PyTorch.
//!
//! ```text
//! cargo run --release --example train_step -- --model resnet18_cifar --batch-size 128 --steps 10
//! python3 benches/torch_train_step.py --model resnet18_cifar --batch-size 128 --steps 10
//! ```
//!
//! Prints one JSON line: images/s over the timed steps (after `--warmup` untimed ones), and
//! the median seconds per step. No data loading and no Learner: this isolates the backend's
//! kernels from the rest of `ember train` (see `docs/benchmarks.md` for both).

/// mimalloc, kept warm (feature `mimalloc`, on by default): the binary chooses the allocator.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: ember::train::allocator::Allocator = ember::train::allocator::Allocator;

use burn::prelude::*;
use burn::tensor::Distribution;
use burn::train::TrainStep;
use clap::Parser;
use ember::data::loader::ImageBatch;
use ember::models::ModelConfig;
use ember::train::Backend;
use ember::train::classifier::Classifier;
use ember::train::config::{OptimConfig, OptimizerKind, TrainConfig};
use std::time::Instant;

#[derive(Parser)]
struct Args {
    /// A zoo model name (`ember summary --list`).
    #[arg(long, default_value = "resnet18_cifar")]
    model: String,
    #[arg(long, default_value_t = 128)]
    batch_size: usize,
    /// Timed steps.
    #[arg(long, default_value_t = 10)]
    steps: usize,
    /// Untimed steps first (allocator and caches warm up).
    #[arg(long, default_value_t = 2)]
    warmup: usize,
    #[arg(long, default_value = "momentum")]
    optimizer: OptimizerKind,
    #[arg(long, default_value = "auto")]
    backend: Backend,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let device = args.backend.device()?;
    device.seed(0);
    let train_device = device.clone().autodiff();
    let config = ModelConfig::from_name(&args.model)?;
    let [c, h, w] = config.canonical_input();
    let classes = config.num_classes();
    let mut model = Classifier::new(config.init(&train_device)?);
    let train_config = TrainConfig {
        optim: OptimConfig {
            optimizer: args.optimizer,
            lr: 0.01,
            ..Default::default()
        },
        ..TrainConfig::default()
    };
    let mut optim = ember::train::optim::build(&train_config);

    let images = Tensor::<4>::random(
        [args.batch_size, c, h, w],
        Distribution::Normal(0.0, 1.0),
        &train_device,
    );
    let targets = Tensor::<1, Int>::from_data(
        TensorData::new(
            (0..args.batch_size)
                .map(|i| (i % classes) as i64)
                .collect::<Vec<_>>(),
            [args.batch_size],
        ),
        &train_device,
    );

    let mut seconds = Vec::with_capacity(args.steps);
    let mut last_loss = f64::NAN;
    for step in 0..args.warmup + args.steps {
        let started = Instant::now();
        let batch = ImageBatch {
            images: images.clone(),
            targets: targets.clone(),
        };
        let output = model.step(batch);
        let grads = output.grads;
        model = optim.step(0.01, model, grads);
        // Reading the loss waits for the step on asynchronous backends (wgpu).
        last_loss = output.item.loss.mean().into_scalar::<f64>();
        if step >= args.warmup {
            seconds.push(started.elapsed().as_secs_f64());
        }
    }
    let total: f64 = seconds.iter().sum();
    seconds.sort_by(f64::total_cmp);
    let median = seconds.get(seconds.len() / 2).copied().unwrap_or(f64::NAN);
    println!(
        "{}",
        serde_json::json!({
            "framework": format!("ember {}", args.backend.resolve().backend.name()),
            "model": args.model,
            "batch": args.batch_size,
            "optimizer": format!("{:?}", args.optimizer).to_lowercase(),
            "threads": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            "steps": args.steps,
            "images_per_s": (args.steps * args.batch_size) as f64 / total,
            "median_seconds_per_step": median,
            "last_loss": last_loss,
        })
    );
    Ok(())
}
