//! VGG (Simonyan & Zisserman 2014): repeated blocks of 3x3 convolutions and a 2x2 max pool.

use crate::blocks::{ConvBnAct, ConvBnActConfig, describe_all};
use crate::family::{Family, Variant, family_basics};
use crate::family::{check_dropout, numbered_stages};
use crate::registry::ModelError;
use crate::summary::{Describe, SummaryError, Tracer};
use crate::taps::Taps;
use crate::transfer::KeyTable;
use crate::{Activation, InitScheme};
use burn::nn::pool::{AdaptiveAvgPool2d, AdaptiveAvgPool2dConfig, MaxPool2d, MaxPool2dConfig};
use burn::nn::{Dropout, DropoutConfig, Linear, LinearConfig};
use burn::prelude::*;

/// One VGG block: `num_convs` 3x3 convolutions (padding 1) then a 2x2/2 max pool,
/// which halves the resolution.
#[derive(Config, Debug)]
pub struct VggBlockConfig {
    /// Number of convolutions.
    pub num_convs: usize,
    /// Input channels.
    pub in_channels: usize,
    /// Output channels of every convolution.
    pub out_channels: usize,
    /// Batch norm after each convolution.
    #[config(default = false)]
    pub batch_norm: bool,
    /// Weight initialisation.
    #[config(default = "InitScheme::Auto")]
    pub init: InitScheme,
}

/// A VGG block.
#[derive(Module, Debug)]
pub struct VggBlock {
    /// The 3x3 convolutions (with ReLU).
    pub convs: Vec<ConvBnAct>,
    /// 2x2/2 max pooling.
    pub pool: MaxPool2d,
}

impl VggBlockConfig {
    /// Initialises the block on `device`.
    pub fn init(&self, device: &Device) -> VggBlock {
        let convs = (0..self.num_convs)
            .map(|i| {
                let cin = if i == 0 {
                    self.in_channels
                } else {
                    self.out_channels
                };
                ConvBnActConfig::new([cin, self.out_channels], 3)
                    .with_padding(1)
                    .with_batch_norm(self.batch_norm)
                    .with_init(self.init)
                    .init(device)
            })
            .collect();
        VggBlock {
            convs,
            pool: MaxPool2dConfig::new([2, 2]).init(),
        }
    }
}

impl VggBlock {
    /// `[N, C, H, W] -> [N, out, H/2, W/2]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.forward_tapped(x, &mut Taps::none())
    }

    /// [`forward`](Self::forward), handing each convolution's output to `taps`.
    pub fn forward_tapped(&self, x: Tensor<4>, taps: &mut Taps) -> Tensor<4> {
        let x = taps.scoped("convs", |taps| {
            self.convs
                .iter()
                .enumerate()
                .fold(x, |x, (i, c)| taps.tap(i, c.forward(x)))
        });
        taps.tap("pool", self.pool.forward(x))
    }
}

impl Describe for VggBlock {
    fn describe(&self, t: &mut Tracer) -> Result<(), SummaryError> {
        t.scoped("convs", |t| describe_all(&self.convs, t))?;
        t.max_pool2d("pool", &self.pool)
    }
}

/// VGG-11 (configuration A): `[num_convs, out_channels]` per block.
pub const VGG11: [[usize; 2]; 5] = [[1, 64], [1, 128], [2, 256], [2, 512], [2, 512]];
/// VGG-13 (configuration B).
pub const VGG13: [[usize; 2]; 5] = [[2, 64], [2, 128], [2, 256], [2, 512], [2, 512]];
/// VGG-16 (configuration D).
pub const VGG16: [[usize; 2]; 5] = [[2, 64], [2, 128], [3, 256], [3, 512], [3, 512]];
/// VGG-19 (configuration E).
pub const VGG19: [[usize; 2]; 5] = [[2, 64], [2, 128], [4, 256], [4, 512], [4, 512]];

/// A VGG network: blocks, adaptive average pooling to 7x7, then three dense layers.
#[derive(Config, Debug)]
pub struct VggConfig {
    /// Image channels.
    #[config(default = 3)]
    pub in_channels: usize,
    /// Output classes.
    #[config(default = 1000)]
    pub num_classes: usize,
    /// `[num_convs, out_channels]` of each block (see [`VGG11`] ... [`VGG19`]).
    #[config(default = "VGG16.to_vec()")]
    pub blocks: Vec<[usize; 2]>,
    /// Batch norm after each convolution (torchvision's `vgg16_bn`).
    #[config(default = false)]
    pub batch_norm: bool,
    /// Divides every block's channels (d2l trains VGG-11 with channels / 4 on Fashion-MNIST).
    #[config(default = 1)]
    pub width_divisor: usize,
    /// Width of the two hidden dense layers.
    #[config(default = 4096)]
    pub hidden: usize,
    /// Dropout after each hidden dense layer.
    #[config(default = 0.5)]
    pub dropout: f64,
    /// Weight initialisation.
    #[config(default = "InitScheme::Auto")]
    pub init: InitScheme,
}

/// VGG.
#[derive(Module, Debug)]
pub struct Vgg {
    /// The convolutional blocks.
    pub blocks: Vec<VggBlock>,
    /// To 7x7 whatever the input size.
    pub avgpool: AdaptiveAvgPool2d,
    /// `C*7*7 -> hidden`.
    pub fc1: Linear,
    /// `hidden -> hidden`.
    pub fc2: Linear,
    /// `hidden -> classes`.
    pub fc3: Linear,
    /// Dropout after `fc1` and `fc2`.
    pub dropout: Dropout,
}

impl VggConfig {
    /// Initialises the model on `device`.
    pub fn init(&self, device: &Device) -> Vgg {
        let divisor = self.width_divisor.max(1);
        let mut cin = self.in_channels;
        let blocks = self
            .blocks
            .iter()
            .map(|&[num_convs, out]| {
                let out = (out / divisor).max(1);
                let block = VggBlockConfig::new(num_convs, cin, out)
                    .with_batch_norm(self.batch_norm)
                    .with_init(self.init)
                    .init(device);
                cin = out;
                block
            })
            .collect();
        let linear = |i, o| {
            self.init
                .linear(Activation::Relu, LinearConfig::new(i, o), device)
        };
        Vgg {
            blocks,
            avgpool: AdaptiveAvgPool2dConfig::new([7, 7]).init(),
            fc1: linear(cin * 7 * 7, self.hidden),
            fc2: linear(self.hidden, self.hidden),
            fc3: linear(self.hidden, self.num_classes),
            dropout: DropoutConfig::new(self.dropout).init(),
        }
    }
}

impl Vgg {
    /// `[N, C, H, W]` images (224x224 canonical, at least 32x32) to `[N, classes]` logits.
    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        self.forward_tapped(images, &mut Taps::none())
    }

    /// [`forward`](Self::forward), handing each block's and layer's output to `taps`.
    pub fn forward_tapped(&self, images: Tensor<4>, taps: &mut Taps) -> Tensor<2> {
        let x = taps.scoped("blocks", |taps| {
            // A block's output is its pool's: tapped once, as `blocks.i.pool`.
            self.blocks.iter().enumerate().fold(images, |x, (i, b)| {
                taps.scoped(i, |taps| b.forward_tapped(x, taps))
            })
        });
        let x = self.avgpool.forward(x).flatten::<2>(1, 3);
        let relu = |x| Activation::Relu.forward(x);
        let x = self
            .dropout
            .forward(taps.tap("fc1", relu(self.fc1.forward(x))));
        let x = self
            .dropout
            .forward(taps.tap("fc2", relu(self.fc2.forward(x))));
        taps.tap("fc3", self.fc3.forward(x))
    }
}

impl Describe for Vgg {
    fn describe(&self, t: &mut Tracer) -> Result<(), SummaryError> {
        t.scoped("blocks", |t| describe_all(&self.blocks, t))?;
        t.adaptive_avg_pool2d("avgpool", &self.avgpool)?;
        t.flatten("flatten");
        t.linear("fc1", &self.fc1)?;
        t.linear("fc2", &self.fc2)?;
        t.linear("fc3", &self.fc3)
    }
}

impl VggConfig {
    /// The VGG of `blocks` (e.g. [`VGG16`]), with or without batch norm.
    pub fn of(blocks: [[usize; 2]; 5], batch_norm: bool) -> Self {
        Self::new()
            .with_blocks(blocks.to_vec())
            .with_batch_norm(batch_norm)
    }
}

impl Family for VggConfig {
    family_basics!(Vgg, "vgg");

    fn variants() -> Vec<Variant<Self>> {
        let v = |name, about, blocks, bn| Variant::new(name, about, Self::of(blocks, bn));
        vec![
            v("vgg11", "VGG-11 (configuration A)", VGG11, false),
            v("vgg13", "VGG-13 (configuration B)", VGG13, false),
            v("vgg16", "VGG-16 (configuration D)", VGG16, false),
            v("vgg19", "VGG-19 (configuration E)", VGG19, false),
            v("vgg11_bn", "VGG-11 with batch norm", VGG11, true),
            v("vgg13_bn", "VGG-13 with batch norm", VGG13, true),
            v("vgg16_bn", "VGG-16 with batch norm", VGG16, true),
            v("vgg19_bn", "VGG-19 with batch norm", VGG19, true),
        ]
    }

    fn validate(&self) -> Result<(), ModelError> {
        if self.blocks.is_empty() {
            return Err(ModelError::InvalidConfig(
                "a VGG needs at least one block".into(),
            ));
        }
        check_dropout(self.dropout)
    }

    fn head(&self) -> Vec<String> {
        vec!["fc3".into()]
    }

    fn stages(&self) -> Vec<Vec<String>> {
        numbered_stages("blocks", self.blocks.len())
    }

    /// torchvision's `features` is one Sequential: per conv, conv (bn) relu; per block, a max
    /// pool. Count through it as its `make_layers` builds it.
    fn torchvision_keys(&self) -> Option<KeyTable> {
        let mut t = KeyTable::torchvision();
        let mut i = 0;
        for (b, &[convs, _]) in self.blocks.iter().enumerate() {
            for j in 0..convs {
                t = t.rule(
                    format!(r"^features\.{i}\."),
                    format!("blocks.{b}.convs.{j}.conv."),
                );
                if self.batch_norm {
                    t = t.rule(
                        format!(r"^features\.{}\.", i + 1),
                        format!("blocks.{b}.convs.{j}.bn."),
                    );
                    i += 1;
                }
                i += 2;
            }
            i += 1;
        }
        Some(
            t.rule(r"^classifier\.0\.", "fc1.")
                .rule(r"^classifier\.3\.", "fc2.")
                .rule(r"^classifier\.6\.", "fc3."),
        )
    }
}

crate::network::zoo_network!(Vgg);
