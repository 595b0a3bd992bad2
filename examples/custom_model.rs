//! Compose your own network from ember-models blocks and train it with ember-train.
//!
//! ```text
//! cargo run --release --example custom_model
//! ```
//!
//! `TinyResNet` = a 3x3 conv-BN-ReLU stem, two residual `BasicBlock`s (the second halves the
//! resolution with a 1x1 projection shortcut), global average pooling and a linear head. Any
//! Burn module with `forward(images) -> logits` becomes trainable by implementing `Network`.

use ember::burn::module::Module;
use ember::burn::nn::pool::{AdaptiveAvgPool2d, AdaptiveAvgPool2dConfig};
use ember::burn::nn::{Linear, LinearConfig};
use ember::burn::tensor::{Device, Tensor};
use ember::data::transform::Preset;
use ember::models::InitScheme;
use ember::models::blocks::{ConvBnAct, ConvBnActConfig};
use ember::models::zoo::resnet::BasicBlock;
use ember::train::config::TrainConfig;
use ember::train::run::RunInfo;
use ember::train::{Network, trainer};

#[derive(Module, Debug)]
struct TinyResNet {
    stem: ConvBnAct,
    block1: BasicBlock,
    block2: BasicBlock,
    pool: AdaptiveAvgPool2d,
    head: Linear,
}

impl TinyResNet {
    fn new(in_channels: usize, classes: usize, device: &Device) -> Self {
        Self {
            stem: ConvBnActConfig::new([in_channels, 16], 3)
                .with_padding(1)
                .with_batch_norm(true)
                .with_bias(false)
                .init(device),
            block1: BasicBlock::new(16, 16, 1, InitScheme::Auto, device),
            block2: BasicBlock::new(16, 32, 2, InitScheme::Auto, device),
            pool: AdaptiveAvgPool2dConfig::new([1, 1]).init(),
            head: LinearConfig::new(32, classes).init(device),
        }
    }
}

impl Network for TinyResNet {
    fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        let x = self.stem.forward(images);
        let x = self.block2.forward(self.block1.forward(x));
        self.head.forward(self.pool.forward(x).flatten(1, 3))
    }
}

fn main() -> anyhow::Result<()> {
    let out = std::path::PathBuf::from("runs/custom_model");
    if out.exists() {
        std::fs::remove_dir_all(&out)?;
    }
    let config = TrainConfig {
        model: "tiny_resnet".into(),
        dataset: "mnist".into(),
        data_dir: Some("data/mnist-subset".into()),
        val_split: 0.1,
        epochs: 2,
        batch_size: 64,
        lr: 0.05,
        augment: Preset::None,
        out,
        ..TrainConfig::default()
    };
    let data = trainer::load_data(&config)?;
    let [c, _, _] = data.input;
    let classes = data.classes.len();
    let info = RunInfo {
        model: config.model.clone(),
        model_config: None,
        input: data.input,
        classes: data.classes.clone(),
        eval_transforms: data.eval_transforms.clone(),
        dataset: config.dataset.clone(),
    };
    let outcome = trainer::train_network(&config, data, info, false, |device| {
        Ok(TinyResNet::new(c, classes, device))
    })?;
    if let Some(r) = outcome.report {
        println!(
            "TinyResNet: test accuracy {:.2}% on {} images",
            100.0 * r.accuracy,
            r.n
        );
    }
    Ok(())
}
