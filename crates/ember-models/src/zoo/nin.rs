//! Network in Network (Lin et al. 2013): each block is a k x k convolution followed by two 1x1
//! convolutions (a per-pixel MLP across channels); global average pooling replaces dense layers.

use crate::family::{Family, Variant, family_basics};
use crate::family::{check_dropout, numbered_stages};
use crate::registry::ModelError;
use crate::summary::{Describe, SummaryError, Tracer};
use crate::taps::Taps;
use crate::{Activation, InitScheme};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{AdaptiveAvgPool2d, AdaptiveAvgPool2dConfig, MaxPool2d, MaxPool2dConfig};
use burn::nn::{Dropout, DropoutConfig, PaddingConfig2d};
use burn::prelude::*;

/// One NiN block.
#[derive(Config, Debug)]
pub struct NinBlockConfig {
    /// Input channels.
    pub in_channels: usize,
    /// Output channels of all three convolutions.
    pub out_channels: usize,
    /// Kernel of the first convolution.
    pub kernel_size: usize,
    /// Stride of the first convolution.
    #[config(default = 1)]
    pub stride: usize,
    /// Padding of the first convolution.
    #[config(default = 0)]
    pub padding: usize,
    /// Weight initialisation.
    #[config(default = "InitScheme::Auto")]
    pub init: InitScheme,
}

/// `conv k x k -> ReLU -> conv 1x1 -> ReLU -> conv 1x1 -> ReLU`.
#[derive(Module, Debug)]
pub struct NinBlock {
    /// The spatial convolution.
    pub conv: Conv2d,
    /// First 1x1 convolution.
    pub mlp1: Conv2d,
    /// Second 1x1 convolution.
    pub mlp2: Conv2d,
}

impl NinBlockConfig {
    /// Initialises the block on `device`.
    pub fn init(&self, device: &Device) -> NinBlock {
        let (k, s, p) = (self.kernel_size, self.stride, self.padding);
        let conv = |cfg| self.init.conv2d(Activation::Relu, cfg, device);
        let one_by_one = || Conv2dConfig::new([self.out_channels, self.out_channels], [1, 1]);
        NinBlock {
            conv: conv(
                Conv2dConfig::new([self.in_channels, self.out_channels], [k, k])
                    .with_stride([s, s])
                    .with_padding(PaddingConfig2d::Explicit(p, p, p, p)),
            ),
            mlp1: conv(one_by_one()),
            mlp2: conv(one_by_one()),
        }
    }
}

impl NinBlock {
    /// `[N, C, H, W] -> [N, out, H', W']`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.forward_tapped(x, &mut Taps::none())
    }

    /// [`forward`](Self::forward), handing each convolution's output to `taps`.
    pub fn forward_tapped(&self, x: Tensor<4>, taps: &mut Taps) -> Tensor<4> {
        let relu = |x| Activation::Relu.forward(x);
        let x = taps.tap("conv", relu(self.conv.forward(x)));
        let x = taps.tap("mlp1", relu(self.mlp1.forward(x)));
        taps.tap("mlp2", relu(self.mlp2.forward(x)))
    }
}

impl Describe for NinBlock {
    fn describe(&self, t: &mut Tracer) -> Result<(), SummaryError> {
        t.conv2d("conv", &self.conv)?;
        t.conv2d("mlp1", &self.mlp1)?;
        t.conv2d("mlp2", &self.mlp2)
    }
}

/// NiN as in d2l: four blocks (96, 256, 384, classes channels), 3x3/2 max pools between them,
/// dropout, then global average pooling straight to the class scores.
#[derive(Config, Debug)]
pub struct NinConfig {
    /// Image channels.
    #[config(default = 3)]
    pub in_channels: usize,
    /// Output classes (the last block's channels).
    #[config(default = 1000)]
    pub num_classes: usize,
    /// Dropout before the last block.
    #[config(default = 0.5)]
    pub dropout: f64,
    /// Weight initialisation.
    #[config(default = "InitScheme::Auto")]
    pub init: InitScheme,
}

/// Network in Network.
#[derive(Module, Debug)]
pub struct Nin {
    /// The four NiN blocks.
    pub blocks: Vec<NinBlock>,
    /// 3x3/2 max pooling after the first three blocks.
    pub pool: MaxPool2d,
    /// Dropout before the last block.
    pub dropout: Dropout,
    /// Global average pooling: one score per class channel.
    pub gap: AdaptiveAvgPool2d,
}

impl NinConfig {
    /// Initialises the model on `device`.
    pub fn init(&self, device: &Device) -> Nin {
        let specs = [
            (self.in_channels, 96, 11, 4, 0),
            (96, 256, 5, 1, 2),
            (256, 384, 3, 1, 1),
            (384, self.num_classes, 3, 1, 1),
        ];
        Nin {
            blocks: specs
                .iter()
                .map(|&(i, o, k, s, p)| {
                    NinBlockConfig::new(i, o, k)
                        .with_stride(s)
                        .with_padding(p)
                        .with_init(self.init)
                        .init(device)
                })
                .collect(),
            pool: MaxPool2dConfig::new([3, 3]).with_strides([2, 2]).init(),
            dropout: DropoutConfig::new(self.dropout).init(),
            gap: AdaptiveAvgPool2dConfig::new([1, 1]).init(),
        }
    }
}

impl Nin {
    /// `[N, C, H, W]` images (224x224 canonical) to `[N, classes]` logits.
    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        self.forward_tapped(images, &mut Taps::none())
    }

    /// [`forward`](Self::forward), handing each block's and layer's output to `taps`.
    pub fn forward_tapped(&self, images: Tensor<4>, taps: &mut Taps) -> Tensor<2> {
        let last = self.blocks.len() - 1;
        let mut x = images;
        for (i, block) in self.blocks.iter().enumerate() {
            if i == last {
                x = self.dropout.forward(x);
            }
            // A block's output is its last 1x1 convolution's: tapped once, as `blocks.i.mlp2`.
            x = taps.scoped("blocks", |taps| {
                taps.scoped(i, |taps| block.forward_tapped(x, taps))
            });
            if i < last {
                x = taps.tap(format!("pool{}", i + 1), self.pool.forward(x));
            }
        }
        taps.tap("gap", self.gap.forward(x)).flatten::<2>(1, 3)
    }
}

impl Describe for Nin {
    fn describe(&self, t: &mut Tracer) -> Result<(), SummaryError> {
        let last = self.blocks.len() - 1;
        for (i, block) in self.blocks.iter().enumerate() {
            t.scoped("blocks", |t| t.scoped(i, |t| block.describe(t)))?;
            if i < last {
                t.max_pool2d(&format!("pool{}", i + 1), &self.pool)?;
            }
        }
        t.adaptive_avg_pool2d("gap", &self.gap)?;
        t.flatten("flatten");
        Ok(())
    }
}

impl Family for NinConfig {
    family_basics!(Nin, "nin");

    fn variants() -> Vec<Variant<Self>> {
        vec![Variant::new(
            "nin",
            "Network in Network, global average pooling head",
            Self::new(),
        )]
    }

    fn validate(&self) -> Result<(), ModelError> {
        check_dropout(self.dropout)
    }

    /// The last block's three convolutions all have `classes` channels.
    fn head(&self) -> Vec<String> {
        vec!["blocks.3".into()]
    }

    fn stages(&self) -> Vec<Vec<String>> {
        numbered_stages("blocks", 3)
    }
}

crate::network::zoo_network!(Nin);
