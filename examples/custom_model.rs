//! Compose your own network from ember-models blocks, then train, evaluate, predict with,
//! visualise and fine-tune it through the same functions the zoo models go through.
//!
//! ```text
//! cargo run --release --example custom_model
//! ```
//!
//! `TinyResNet` = a 3x3 conv-BN-ReLU stem, two residual `BasicBlock`s (the second halves the
//! resolution with a 1x1 projection shortcut), global average pooling and a linear head. Any
//! Burn module with `forward(images) -> logits` becomes trainable by implementing `Network`;
//! `forward_tapped` (optional) names the feature maps that `viz::layer_output` can show.
//!
//! One function, `build(info, device)`, makes the network for a run's images and classes: the
//! trainer calls it to train and to fine-tune, `TrainedModel::load_with` to rebuild the trained
//! run. A `Transfer` (head and stages) is what fine-tuning needs to know besides.

/// mimalloc, kept warm (feature `mimalloc`, on by default): the binary chooses the allocator.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: ember::train::allocator::Allocator = ember::train::allocator::Allocator;

use ember::burn::module::Module;
use ember::burn::nn::pool::{AdaptiveAvgPool2d, AdaptiveAvgPool2dConfig};
use ember::burn::nn::{Linear, LinearConfig};
use ember::burn::tensor::{Device, Tensor, TensorData};
use ember::data::transform::Preset;
use ember::data::{DatasetSpec, Split};
use ember::models::Taps;
use ember::models::blocks::{BasicBlock, BasicBlockConfig, ConvBnAct, ConvBnActConfig};
use ember::train::config::{
    DataConfig, LoopConfig, OptimConfig, OptimizerKind, RuntimeConfig, TrainConfig, Tta,
};
use ember::train::finetune::{FinetuneConfig, Freeze};
use ember::train::predict::{TrainedModel, top_k};
use ember::train::run::RunInfo;
use ember::train::trainer::Transfer;
use ember::train::{Backend, Network, Training, viz};
use std::path::{Path, PathBuf};

#[derive(Module, Debug)]
struct TinyResNet {
    stem: ConvBnAct,
    block1: BasicBlock,
    block2: BasicBlock,
    pool: AdaptiveAvgPool2d,
    head: Linear,
}

/// The network for a run's `[C, H, W]` images and classes.
fn build(info: &RunInfo, device: &Device) -> ember::train::error::Result<TinyResNet> {
    let [in_channels, _, _] = info.input;
    Ok(TinyResNet {
        stem: ConvBnActConfig::conv_bn_relu([in_channels, 16], 3).init(device),
        block1: BasicBlockConfig::new(16, 16).init(device),
        block2: BasicBlockConfig::new(16, 32).with_stride(2).init(device),
        pool: AdaptiveAvgPool2dConfig::new([1, 1]).init(),
        head: LinearConfig::new(32, info.classes.len()).init(device),
    })
}

impl Network for TinyResNet {
    fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        self.forward_tapped(images, &mut Taps::none())
    }

    fn forward_tapped(&self, images: Tensor<4>, taps: &mut Taps) -> Tensor<2> {
        let x = taps.tap("stem", self.stem.forward(images));
        let x = taps.tap("block1", self.block1.forward(x));
        let x = taps.tap("block2", self.block2.forward(x));
        self.head.forward(self.pool.forward(x).flatten(1, 3))
    }
}

fn main() -> anyhow::Result<()> {
    let out = PathBuf::from("runs/custom_model");
    if out.exists() {
        std::fs::remove_dir_all(&out)?;
    }
    let data_dir = PathBuf::from("data/mnist-subset");
    let config = TrainConfig {
        model: "tiny_resnet".into(),
        data: DataConfig {
            dataset: ember::data::DatasetSpec::Mnist,
            data_dir: Some(data_dir.clone()),
            val_split: 0.1,
            augment: Preset::None.into(),
            ..Default::default()
        },
        optim: OptimConfig {
            optimizer: OptimizerKind::Adam,
            lr: 2e-3,
            ..Default::default()
        },
        train_loop: LoopConfig {
            epochs: 3,
            batch_size: 64,
            ..Default::default()
        },
        runtime: RuntimeConfig {
            out: out.clone(),
            ..Default::default()
        },
        ..TrainConfig::default()
    };

    // 1. Train: the one training entry point, with our network instead of a zoo model.
    let outcome = Training::new(&config).network(build).launch()?;
    println!(
        "trained {} epochs in {:.1} s -> {}",
        outcome.records.len(),
        outcome.seconds,
        out.display()
    );

    // 2. Evaluate: rebuild the run's network from its directory, as `ember eval` does for a
    //    zoo model, and score it on MNIST's test split.
    let device = Backend::Flex.device()?;
    let trained = TrainedModel::load_with(&out, &device, build)?;
    let test = DatasetSpec::Mnist.open(Some(&data_dir), Split::Test)?;
    let report = trained.evaluate(test, 256, 2, Tta::None)?;
    println!(
        "test accuracy {:.2}% on {} images (as `ember eval`)",
        100.0 * report.accuracy,
        report.n
    );

    // 3. Predict: an image file through the run's transforms, as `ember predict`.
    let digit = Path::new("docs/img/samples/mnist-test-0-digit7.png");
    let image = trained.prepare(digit)?;
    let probs = trained.probabilities(std::slice::from_ref(&image))?;
    for (class, p) in top_k(&probs[0], 3) {
        println!(
            "{}: {} {:.1}%",
            digit.display(),
            trained.info.classes[class],
            100.0 * p
        );
    }

    // 4. Visualise: the stem's filters and block1's feature maps of that digit, as
    //    `ember viz filters` and `ember viz features`.
    let kernels = viz::conv_kernels(&trained.model);
    let (name, weights) = &kernels[0];
    viz::save_png(&viz::filter_grid(weights)?, &out.join("filters.png"))?;
    let [c, h, w] = trained.info.input;
    let x = Tensor::<4>::from_data(TensorData::new(image.data.clone(), [1, c, h, w]), &device);
    let maps = viz::layer_output(&trained.model, x, "block1")?;
    let [_, mc, mh, mw] = maps.dims();
    let grid = viz::feature_grid(&image, &maps.reshape([mc, mh, mw]))?;
    viz::save_png(&grid, &out.join("features-block1.png"))?;
    println!(
        "{name} filters and {mc} block1 maps of {mh}x{mw} -> {}",
        out.display()
    );

    // 5. Fine-tune: digits 5-9 only, from this run's weights, everything but the head frozen,
    //    as `ember finetune --from runs/custom_model --classes 5-9 --freeze all-but-head`.
    //    The network says where its head and stages are, as a zoo family does.
    let mut tune = config.clone();
    tune.runtime.out = PathBuf::from("runs/custom_model_finetune");
    if tune.runtime.out.exists() {
        std::fs::remove_dir_all(&tune.runtime.out)?;
    }
    tune.data.classes = Some(vec![5, 6, 7, 8, 9]);
    tune.train_loop.epochs = 1;
    tune.finetune = Some(FinetuneConfig {
        from: out.clone(),
        freeze: Freeze::AllButHead,
        ..Default::default()
    });
    let transfer = Transfer {
        head: vec!["head".into()],
        stages: vec![
            vec!["stem".into()],
            vec!["block1".into()],
            vec!["block2".into()],
        ],
    };
    let tuned = Training::new(&tune)
        .network(build)
        .with_transfer(transfer)
        .launch()?;
    if let Some(r) = tuned.report {
        println!(
            "fine-tuned head on digits 5-9: {:.2}% on {} test images",
            100.0 * r.accuracy,
            r.n
        );
    }
    Ok(())
}
