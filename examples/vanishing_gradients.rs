//! Vanishing gradients and their remedies, measured (d2l: numerical stability and
//! initialisation; batch normalisation; ResNet).
//!
//! ```text
//! cargo run --release --example vanishing_gradients [-- --depth 20 --epochs 8 --lr 0.01 --out runs/vanishing_gradients]
//! ```
//!
//! A deep plain MLP (`depth` hidden layers of `width` units) on MNIST in four forms, each with
//! Xavier and Kaiming initialisation:
//! * sigmoid: the derivative is at most 1/4, so the gradient shrinks layer after layer;
//! * ReLU: the derivative is 0 or 1; Kaiming's `Var(w) = 2 / fan_in` keeps the signal's
//!   variance constant through the depth, Xavier's `2 / (fan_in + fan_out)` halves it per layer;
//! * ReLU + batch norm: every layer's output is re-standardised, whatever the initialisation;
//! * residual (ReLU + BN + identity shortcut `h + F(h)`): the gradient has a path around
//!   every layer.
//!
//! Writes `init.png` (gradient norm and activation std per depth at initialisation),
//! `curves.png` (validation accuracy and training loss per epoch) and prints a table.

/// mimalloc, kept warm (feature `mimalloc`, on by default): the binary chooses the allocator.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: ember::train::allocator::Allocator = ember::train::allocator::Allocator;

use anyhow::Result;
use clap::Parser;
use ember::burn::data::dataloader::DataLoader;
use ember::burn::data::dataset::Dataset;
use ember::burn::module::Module;
use ember::burn::nn::loss::CrossEntropyLossConfig;
use ember::burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig};
use ember::burn::tensor::{Device, Tensor};
use ember::data::ImageItem;
use ember::data::loader::{ImageLoader, LoaderConfig};
use ember::data::transform::Preset;
use ember::models::{Activation, InitScheme, Taps};
use ember::train::config::{
    DataConfig, LoopConfig, OptimConfig, OptimizerKind, RuntimeConfig, ScheduleConfig,
    ScheduleKind, TrainConfig,
};
use ember::train::diagnostics::{activation_stats, gradient_norms};
use ember::train::plot::{Axes, Series, palette, panels_png};
use ember::train::trainer::{self, AsItems};
use ember::train::{Backend, Network};
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Parser)]
struct Args {
    /// Hidden layers.
    #[arg(long, default_value_t = 20)]
    depth: usize,
    /// Units per hidden layer.
    #[arg(long, default_value_t = 128)]
    width: usize,
    /// Training epochs per network.
    #[arg(long, default_value_t = 8)]
    epochs: usize,
    /// SGD with momentum 0.9 at this learning rate, for every network.
    #[arg(long, default_value_t = 0.01)]
    lr: f64,
    /// MNIST files (the shipped 6,000-image subset by default).
    #[arg(long, default_value = "data/mnist-subset")]
    data_dir: PathBuf,
    #[arg(long, default_value = "runs/vanishing_gradients")]
    out: PathBuf,
    #[arg(long, default_value_t = 42)]
    seed: u64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Form {
    Sigmoid,
    Relu,
    ReluBn,
    Residual,
}

impl Form {
    const ALL: [Form; 4] = [Form::Sigmoid, Form::Relu, Form::ReluBn, Form::Residual];

    fn name(self) -> &'static str {
        match self {
            Form::Sigmoid => "sigmoid",
            Form::Relu => "relu",
            Form::ReluBn => "relu+bn",
            Form::Residual => "residual",
        }
    }
}

/// One hidden layer: `act(bn(W h + b))`, plus `h` in the residual form.
#[derive(Module, Debug)]
struct Hidden {
    linear: Linear,
    bn: Option<BatchNorm>,
}

#[derive(Module, Debug)]
struct DeepMlp {
    input: Linear,
    layers: Vec<Hidden>,
    output: Linear,
    #[module(skip)]
    activation: Activation,
    #[module(skip)]
    residual: bool,
}

impl DeepMlp {
    fn new(form: Form, init: InitScheme, a: &Args, classes: usize, device: &Device) -> Self {
        let act = if form == Form::Sigmoid {
            Activation::Sigmoid
        } else {
            Activation::Relu
        };
        let bn = matches!(form, Form::ReluBn | Form::Residual);
        let linear = |i, o| init.linear(act, LinearConfig::new(i, o), device);
        Self {
            input: linear(28 * 28, a.width),
            layers: (0..a.depth)
                .map(|_| Hidden {
                    linear: linear(a.width, a.width),
                    bn: bn.then(|| BatchNormConfig::new(a.width).init(device)),
                })
                .collect(),
            output: linear(a.width, classes),
            activation: act,
            residual: form == Form::Residual,
        }
    }
}

impl Network for DeepMlp {
    fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        self.forward_tapped(images, &mut Taps::none())
    }

    fn forward_tapped(&self, images: Tensor<4>, taps: &mut Taps) -> Tensor<2> {
        let x = images.flatten::<2>(1, 3);
        let mut h = taps.tap("input", self.activation.forward(self.input.forward(x)));
        for (i, layer) in self.layers.iter().enumerate() {
            let mut z = layer.linear.forward(h.clone());
            if let Some(bn) = &layer.bn {
                z = bn.forward(z);
            }
            let f = self.activation.forward(z);
            h = if self.residual { h + f } else { f };
            h = taps.scoped("layers", |t| t.tap(i, h));
        }
        self.output.forward(h)
    }
}

/// What one network showed.
struct Outcome {
    label: String,
    form: Form,
    kaiming: bool,
    /// (depth, gradient norm of the layer's weights) at initialisation.
    grad_by_depth: Vec<(f64, f64)>,
    /// (depth, std of the layer's output) at initialisation.
    std_by_depth: Vec<(f64, f64)>,
    val_accuracy: Vec<(f64, f64)>,
    train_loss: Vec<(f64, f64)>,
}

fn main() -> Result<()> {
    let args = Args::parse();
    std::fs::create_dir_all(&args.out)?;
    let base = TrainConfig {
        model: "deep_mlp".into(),
        data: DataConfig {
            dataset: ember::data::DatasetSpec::Mnist,
            data_dir: Some(args.data_dir.clone()),
            val_split: 0.1,
            augment: Preset::None.into(),
            ..Default::default()
        },
        optim: OptimConfig {
            optimizer: OptimizerKind::Momentum,
            lr: args.lr,
            ..Default::default()
        },
        train_loop: LoopConfig {
            epochs: args.epochs,
            batch_size: 128,
            seed: args.seed,
            ..Default::default()
        },
        runtime: RuntimeConfig {
            diagnostics: false,
            log_every_secs: 60.0,
            ..Default::default()
        },
        schedule: ScheduleConfig {
            kind: ScheduleKind::Constant,
            ..Default::default()
        },
        ..TrainConfig::default()
    };
    let data = trainer::load_data(&base)?;
    let classes = data.classes.len();
    let device = Backend::Flex.device()?;
    let ad = device.clone().autodiff();
    // One fixed batch of 256 training images for the measurements at initialisation.
    let probe_ds: Arc<dyn Dataset<ImageItem>> = Arc::new(AsItems(data.train.clone()));
    let probe_loader = ImageLoader::new(
        probe_ds,
        data.eval_transforms.clone(),
        LoaderConfig::in_order(256, 2),
        ad.clone(),
    )?;
    let probe = probe_loader
        .iter()
        .next()
        .ok_or_else(|| anyhow::anyhow!("no training images"))??;

    let mut outcomes = Vec::new();
    for form in Form::ALL {
        for (init, kaiming) in [(InitScheme::Xavier, false), (InitScheme::Kaiming, true)] {
            let label = format!(
                "{} {}",
                form.name(),
                if kaiming { "kaiming" } else { "xavier" }
            );
            // Gradients and activations at initialisation, on the probe batch.
            ad.seed(args.seed);
            let net = DeepMlp::new(form, init, &args, classes, &ad);
            let mut taps = Taps::all();
            let logits = net.forward_tapped(probe.images.clone(), &mut taps);
            let loss = CrossEntropyLossConfig::new()
                .init(&ad)
                .forward(logits, probe.targets.clone());
            let grads = loss.backward();
            let norms = gradient_norms(&net, &grads)?;
            // Depth 1 = the input layer, then the hidden layers, then the output layer.
            let grad_by_depth: Vec<(f64, f64)> = norms
                .iter()
                .filter(|g| !g.layer.ends_with(".bn"))
                .enumerate()
                .map(|(d, g)| ((d + 1) as f64, g.grad_norm))
                .collect();
            let std_by_depth: Vec<(f64, f64)> = activation_stats(taps.recorded())?
                .iter()
                .enumerate()
                .map(|(d, a)| ((d + 1) as f64, a.std))
                .collect();

            // Training, same data, seed and optimiser for every network.
            let config = TrainConfig {
                model: label.clone(),
                runtime: RuntimeConfig {
                    out: args.out.join(label.replace([' ', '+'], "_")),
                    ..base.runtime.clone()
                },
                ..base.clone()
            };
            if config.runtime.out.exists() {
                std::fs::remove_dir_all(&config.runtime.out)?;
            }
            println!("== {label}");
            let a = &args;
            let trained = trainer::Training::new(&config)
                .network(|_, d| Ok(DeepMlp::new(form, init, a, classes, d)))
                .launch()?;
            let pick = |f: &dyn Fn(&ember::train::logger::EpochRecord) -> Option<f64>| {
                trained
                    .records
                    .iter()
                    .filter_map(|r| f(r).map(|v| (r.epoch as f64, v)))
                    .collect::<Vec<_>>()
            };
            outcomes.push(Outcome {
                label,
                form,
                kaiming,
                grad_by_depth,
                std_by_depth,
                val_accuracy: pick(&|r| r.val_accuracy.map(|v| 100.0 * v)),
                train_loss: pick(&|r| r.train_loss),
            });
        }
    }

    let series = |f: &dyn Fn(&Outcome) -> Vec<(f64, f64)>| -> Vec<Series> {
        outcomes
            .iter()
            .map(|o| Series {
                label: o.label.clone(),
                points: f(o),
                color: palette(Form::ALL.iter().position(|&x| x == o.form).unwrap_or(0)),
                dashed: !o.kaiming,
                markers_only: false,
            })
            .collect()
    };
    let axes = |title: &str, x: &str, y: &str, log_y: bool| Axes {
        title: title.into(),
        x_desc: x.into(),
        y_desc: y.into(),
        log_y,
        x_names: None,
    };
    let init_png = args.out.join("init.png");
    panels_png(
        &[
            (
                axes(
                    "Gradient norm at initialisation",
                    "layer (input = 1)",
                    "||dL/dW||",
                    true,
                ),
                series(&|o| o.grad_by_depth.clone()),
            ),
            (
                axes(
                    "Activation std at initialisation",
                    "layer (input = 1)",
                    "std",
                    true,
                ),
                series(&|o| o.std_by_depth.clone()),
            ),
        ],
        640,
        520,
        &init_png,
    )?;
    let curves_png = args.out.join("curves.png");
    panels_png(
        &[
            (
                axes("Validation accuracy", "epoch", "%", false),
                series(&|o| o.val_accuracy.clone()),
            ),
            (
                axes("Training loss", "epoch", "cross-entropy (log)", true),
                series(&|o| o.train_loss.clone()),
            ),
        ],
        640,
        520,
        &curves_png,
    )?;

    println!(
        "\n{} hidden layers of {} units, SGD momentum 0.9 lr {}, {} epochs, MNIST ({}):\n",
        args.depth,
        args.width,
        args.lr,
        args.epochs,
        args.data_dir.display()
    );
    println!(
        "| network | init | grad norm, first layer | grad norm, last hidden | first / last | val accuracy |"
    );
    println!("|---|---|---:|---:|---:|---:|");
    for o in &outcomes {
        let first = o.grad_by_depth.first().map_or(f64::NAN, |p| p.1);
        let last_hidden = o
            .grad_by_depth
            .iter()
            .rev()
            .nth(1)
            .map_or(f64::NAN, |p| p.1);
        let (name, init) = o.label.split_once(' ').unwrap_or((&o.label, ""));
        println!(
            "| {name} | {init} | {first:.2e} | {last_hidden:.2e} | {:.1e} | {:.1}% |",
            first / last_hidden,
            o.val_accuracy.last().map_or(f64::NAN, |p| p.1)
        );
    }
    println!("\n-> {} and {}", init_png.display(), curves_png.display());
    Ok(())
}
