//! Transfer learning, measured: pre-train on some classes, fine-tune on others with few
//! labelled images, against training from scratch on the same budget (d2l 14.2). Then the
//! book's older idea: greedy layer-wise pre-training of a deep MLP against end-to-end training.
//!
//! ```text
//! cargo run --release --example finetune                          # shipped MNIST subset
//! cargo run --release --example finetune -- --data-dir ../shared/data/mnist \
//!     --per-class 10 --epochs 30                                   # docs/results.md
//! cargo run --release --example finetune -- --dataset folder:/tmp/cifar10/train \
//!     --model resnet18_cifar --base-channels 16 --augment cifar --pretrain-epochs 8
//! ```
//!
//! Transfer: the source task is classes 0-4 (every training image), the target task classes 5-9
//! with `--per-class` images each. Four ways to the target, same epochs and evaluation:
//! from scratch, head only (the backbone frozen), full fine-tuning (backbone lr x 0.1), and
//! the head first, then everything. Greedy: an MLP of `--depth` sigmoid layers; step k trains
//! hidden layer k and a new output layer with layers 1..k-1 frozen, then the whole stack is
//! fine-tuned end to end; the baseline trains the same stack end to end from the start for
//! the same total number of epochs. One JSON line per run, then a table.

/// mimalloc, kept warm (feature `mimalloc`, on by default): the binary chooses the allocator.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: ember::train::allocator::Allocator = ember::train::allocator::Allocator;

use clap::Parser;
use ember::data::transform::Preset;
use ember::train::config::{
    DataConfig, LoopConfig, OptimConfig, OptimizerKind, RuntimeConfig, ScheduleConfig,
    ScheduleKind, TrainConfig,
};
use ember::train::finetune::{FinetuneConfig, Freeze};
use ember::train::{Backend, trainer};
use std::path::{Path, PathBuf};

#[derive(Parser)]
struct Args {
    /// mnist, fashion-mnist, cifar10 or folder:PATH.
    #[arg(long, default_value = "mnist")]
    dataset: ember::data::DatasetSpec,
    #[arg(long, default_value = "data/mnist-subset")]
    data_dir: PathBuf,
    /// The network of the transfer experiment.
    #[arg(long, default_value = "lenet5_bn")]
    model: String,
    /// For ResNets: channels of the first stage (64 in the paper).
    #[arg(long)]
    base_channels: Option<i64>,
    /// Training augmentation: none, cifar, imagenet.
    #[arg(long, default_value = "none")]
    augment: Preset,
    /// Source classes.
    #[arg(long, default_value = "0-4")]
    source: String,
    /// Target classes.
    #[arg(long, default_value = "5-9")]
    target: String,
    /// Labelled target images per class (0 skips the transfer part).
    #[arg(long, default_value_t = 100)]
    per_class: usize,
    #[arg(long, default_value_t = 5)]
    pretrain_epochs: usize,
    /// Epochs of every target run.
    #[arg(long, default_value_t = 10)]
    epochs: usize,
    /// Learning rate of pre-training and of training from scratch.
    #[arg(long, default_value_t = 2e-3)]
    lr: f64,
    /// The new head's learning rate when fine-tuning; the backbone gets a tenth (d2l's recipe).
    #[arg(long, default_value_t = 1e-2)]
    head_lr: f64,
    /// Hidden layers of the greedy MLP (0 skips that part).
    #[arg(long, default_value_t = 10)]
    depth: usize,
    /// Epochs per greedy step (and for the final fine-tuning).
    #[arg(long, default_value_t = 2)]
    layer_epochs: usize,
    /// Learning rate of the greedy MLP (SGD with momentum 0.9).
    #[arg(long, default_value_t = 0.5)]
    mlp_lr: f64,
    #[arg(long, default_value = "auto")]
    backend: Backend,
    #[arg(long, default_value = "runs/finetune")]
    out: PathBuf,
    #[arg(long, default_value_t = 1)]
    workers: usize,
    #[arg(long, default_value_t = 42)]
    seed: u64,
}

fn classes(s: &str) -> anyhow::Result<Vec<usize>> {
    ember::data::split::parse_class_list(s).map_err(anyhow::Error::msg)
}

fn base(args: &Args, out: &Path) -> TrainConfig {
    let mut model_options = toml::Table::new();
    if let Some(b) = args.base_channels {
        model_options.insert("base_channels".into(), toml::Value::Integer(b));
    }
    TrainConfig {
        model: args.model.clone(),
        model_options,
        data: DataConfig {
            dataset: args.dataset.clone(),
            data_dir: Some(args.data_dir.clone()),
            augment: args.augment.into(),
            ..Default::default()
        },
        optim: OptimConfig {
            optimizer: OptimizerKind::Adam,
            lr: args.lr,
            ..Default::default()
        },
        schedule: ScheduleConfig {
            kind: ScheduleKind::Cosine,
            ..Default::default()
        },
        train_loop: LoopConfig {
            batch_size: 32,
            seed: args.seed,
            ..Default::default()
        },
        runtime: RuntimeConfig {
            backend: args.backend,
            workers: args.workers,
            out: out.to_path_buf(),
            diagnostics: false,
            ..Default::default()
        },
        ..TrainConfig::default()
    }
}

/// Trains (from a clean directory) and prints one JSON line; returns the held-out accuracy.
fn run(name: &str, config: &TrainConfig) -> anyhow::Result<(f64, f64)> {
    if config.runtime.out.exists() {
        std::fs::remove_dir_all(&config.runtime.out)?;
    }
    let outcome = trainer::Training::new(config).launch()?;
    let acc = outcome.report.as_ref().map_or(f64::NAN, |r| r.accuracy);
    println!(
        "{}",
        serde_json::json!({
            "example": "finetune", "run": name, "model": config.model,
            "epochs": outcome.records.len(), "seconds": outcome.seconds,
            "split": outcome.report_split.to_string(), "accuracy": acc,
            "images": outcome.report.as_ref().map(|r| r.n),
        })
    );
    Ok((acc, outcome.seconds))
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let (source, target) = (classes(&args.source)?, classes(&args.target)?);
    let mut table = Vec::new();
    if args.per_class > 0 {
        transfer(&args, &source, &target, &mut table)?;
    }
    if args.depth > 0 {
        greedy(&args, &mut table)?;
    }
    println!("\n| run | held-out accuracy |\n|---|---|");
    for (label, acc) in &table {
        println!("| {label} | {:.2}% |", 100.0 * acc);
    }
    Ok(())
}

/// Pre-train on the source classes, then four ways to the target classes.
fn transfer(
    args: &Args,
    source: &[usize],
    target: &[usize],
    table: &mut Vec<(String, f64)>,
) -> anyhow::Result<()> {
    // Pre-training on the source classes, every image.
    let src_dir = args.out.join("source");
    let mut pre = base(args, &src_dir);
    pre.data.classes = Some(source.to_vec());
    pre.train_loop.epochs = args.pretrain_epochs;
    let (acc, _) = run("pretrain", &pre)?;
    table.push(("pre-train on the source classes".to_string(), acc));

    let target_run = |name: &str, ft: Option<FinetuneConfig>, lr: f64| {
        let mut c = base(args, &args.out.join(name));
        c.data.classes = Some(target.to_vec());
        c.data.per_class = Some(args.per_class);
        c.train_loop.epochs = args.epochs;
        c.optim.lr = lr;
        c.finetune = ft;
        c
    };
    let from = |freeze: Freeze, unfreeze_after: Option<usize>| {
        Some(FinetuneConfig {
            from: src_dir.clone(),
            freeze,
            unfreeze_after,
            backbone_lr_factor: 0.1,
            ..FinetuneConfig::default()
        })
    };
    let runs = [
        ("scratch", "from scratch", None),
        (
            "head_only",
            "head only (backbone frozen)",
            from(Freeze::AllButHead, None),
        ),
        (
            "full",
            "full fine-tune (backbone lr x 0.1)",
            from(Freeze::None, None),
        ),
        (
            "head_then_all",
            "head first, then everything",
            from(Freeze::None, Some(args.epochs / 2)),
        ),
    ];
    for (name, label, ft) in runs {
        let lr = if ft.is_some() { args.head_lr } else { args.lr };
        let (acc, _) = run(name, &target_run(name, ft, lr))?;
        table.push((format!("{label}, {} images/class", args.per_class), acc));
    }
    Ok(())
}

/// Greedy layer-wise pre-training (Bengio et al. 2007, supervised variant) of an MLP with
/// `depth` sigmoid layers of 128 units, on every class of the dataset.
fn greedy(args: &Args, table: &mut Vec<(String, f64)>) -> anyhow::Result<()> {
    let mlp = |k: usize, out: &Path| {
        let mut c = base(args, out);
        c.model = "mlp".into();
        c.model_options = toml::Table::new();
        c.model_options.insert(
            "hidden".into(),
            toml::Value::Array(vec![toml::Value::Integer(128); k]),
        );
        c.model_options
            .insert("activation".into(), toml::Value::String("sigmoid".into()));
        c.optim.optimizer = OptimizerKind::Momentum;
        c.optim.lr = args.mlp_lr;
        c.train_loop.epochs = args.layer_epochs;
        c
    };
    let dir = args.out.join("greedy");
    let mut previous: Option<PathBuf> = None;
    for k in 1..=args.depth {
        let out = dir.join(format!("layer{k}"));
        let mut c = mlp(k, &out);
        if let Some(p) = &previous {
            // Layers 1..k-1 come from the previous step and stay fixed; layer k is new
            // (missing from the file: --allow-partial), and so is the output layer.
            let frozen: Vec<String> = (0..k - 1).map(|i| format!("hidden.{i}")).collect();
            c.finetune = Some(FinetuneConfig {
                from: p.clone(),
                allow_partial: true,
                reset_head: true,
                freeze: Freeze::Prefixes(frozen),
                ..FinetuneConfig::default()
            });
        }
        let (acc, _) = run(&format!("greedy_layer{k}"), &c)?;
        table.push((format!("greedy: {k} of {} layers trained", args.depth), acc));
        previous = Some(out);
    }
    // Back-propagation through the whole stack, from the greedy weights, at a tenth of the
    // rate (fine-tuning: the full rate undoes the pre-training in a few steps).
    let mut tune = mlp(args.depth, &dir.join("finetune"));
    tune.optim.lr = args.mlp_lr / 10.0;
    tune.finetune = Some(FinetuneConfig {
        from: previous.unwrap_or_default(),
        backbone_lr_factor: 1.0,
        ..FinetuneConfig::default()
    });
    let (acc, _) = run("greedy_finetune", &tune)?;
    table.push((
        format!(
            "greedy pre-training + end-to-end fine-tuning ({} epochs in all, lr {})",
            (args.depth + 1) * args.layer_epochs,
            tune.optim.lr
        ),
        acc,
    ));
    // The same network trained end to end from the start, for as many epochs in all, at
    // both rates.
    for (name, lr) in [
        ("end_to_end", args.mlp_lr),
        ("end_to_end_slow", args.mlp_lr / 10.0),
    ] {
        let mut e2e = mlp(args.depth, &dir.join(name));
        e2e.train_loop.epochs = (args.depth + 1) * args.layer_epochs;
        e2e.optim.lr = lr;
        let (acc, _) = run(name, &e2e)?;
        table.push((
            format!(
                "end to end from random init ({} epochs, lr {lr})",
                e2e.train_loop.epochs
            ),
            acc,
        ));
    }
    Ok(())
}
