//! ResNet-9, the fast CIFAR-10 network of Myrtle.ai's DAWNBench entry (Page, "How to train
//! your ResNet", 2018): 94% test accuracy in 24 epochs on one GPU.
//!
//! ```text
//! prep    conv 3x3 -> 64, BN, ReLU                         32x32
//! layer1  conv 3x3 -> 128, BN, ReLU, max pool 2            16x16
//!         + residual(conv-BN-ReLU 128, conv-BN-ReLU 128)
//! layer2  conv 3x3 -> 256, BN, ReLU, max pool 2              8x8
//! layer3  conv 3x3 -> 512, BN, ReLU, max pool 2              4x4
//!         + residual(conv-BN-ReLU 512, conv-BN-ReLU 512)
//! head    max pool 4, linear 512 -> classes (no bias), x 0.125
//! ```
//!
//! 6,573,120 parameters for 10 classes. The residual adds `x + F(x)` with no ReLU after the
//! sum, as in the original. The logits are scaled by 0.125, which the recipe relies on (it
//! makes the softmax less confident at the start; Page's code calls it `Mul(weight)`).

use crate::blocks::{ConvBnAct, ConvBnActConfig};
use crate::family::named_stages;
use crate::family::{Family, Variant, family_basics};
use crate::registry::ModelError;
use crate::summary::{Describe, SummaryError, Tracer};
use crate::taps::Taps;
use crate::{Activation, InitScheme};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;

/// ResNet-9's configuration.
#[derive(Config, Debug)]
pub struct ResNet9Config {
    /// Image channels.
    #[config(default = 3)]
    pub in_channels: usize,
    /// Output classes.
    #[config(default = 10)]
    pub num_classes: usize,
    /// Channels of the prep layer; the stages have 2x, 4x and 8x (64 in the original).
    #[config(default = 64)]
    pub base_channels: usize,
    /// Scale of the logits (0.125 in the original).
    #[config(default = 0.125)]
    pub logit_scale: f64,
    /// Weight initialisation (torchvision-style Kaiming fan-out convolutions).
    #[config(default = "InitScheme::Torchvision")]
    pub init: InitScheme,
}

/// A stage: convolution, BN, ReLU, 2x2 max pool, optionally a residual pair after it.
#[derive(Module, Debug)]
pub struct Stage {
    /// 3x3 convolution that changes the width.
    pub conv: ConvBnAct,
    /// 2x2/2 max pooling.
    pub pool: MaxPool2d,
    /// Two conv-BN-ReLU layers added back to their input.
    pub residual: Vec<ConvBnAct>,
}

/// ResNet-9.
#[derive(Module, Debug)]
pub struct ResNet9 {
    /// 3x3 convolution to `base` channels.
    pub prep: ConvBnAct,
    /// `2 base` channels, pooled, residual.
    pub layer1: Stage,
    /// `4 base` channels, pooled.
    pub layer2: Stage,
    /// `8 base` channels, pooled, residual.
    pub layer3: Stage,
    /// 4x4 max pooling to one value per channel.
    pub pool: MaxPool2d,
    /// `8 base -> classes`, no bias.
    pub fc: Linear,
    /// Scale of the logits.
    pub logit_scale: f64,
}

impl ResNet9Config {
    /// Initialises the model on `device`.
    pub fn init(&self, device: &Device) -> ResNet9 {
        let conv = |cin: usize, cout: usize| {
            ConvBnActConfig::new([cin, cout], 3)
                .with_padding(1)
                .with_bias(false)
                .with_batch_norm(true)
                .with_activation(Some(Activation::Relu))
                .with_init(self.init)
                .init(device)
        };
        let stage = |cin: usize, cout: usize, residual: bool| Stage {
            conv: conv(cin, cout),
            pool: MaxPool2dConfig::new([2, 2]).init(),
            residual: if residual {
                vec![conv(cout, cout), conv(cout, cout)]
            } else {
                Vec::new()
            },
        };
        let b = self.base_channels;
        ResNet9 {
            prep: conv(self.in_channels, b),
            layer1: stage(b, 2 * b, true),
            layer2: stage(2 * b, 4 * b, false),
            layer3: stage(4 * b, 8 * b, true),
            pool: MaxPool2dConfig::new([4, 4]).init(),
            fc: self.init.linear(
                Activation::Relu,
                LinearConfig::new(8 * b, self.num_classes).with_bias(false),
                device,
            ),
            logit_scale: self.logit_scale,
        }
    }
}

impl Stage {
    fn forward_tapped(&self, x: Tensor<4>, taps: &mut Taps) -> Tensor<4> {
        let x = self.pool.forward(self.conv.forward(x));
        let x = taps.tap("pool", x);
        if self.residual.is_empty() {
            return x;
        }
        let branch = self.residual.iter().fold(x.clone(), |h, c| c.forward(h));
        taps.tap("add", x + branch)
    }
}

impl ResNet9 {
    /// `[N, C, 32, 32]` images to `[N, classes]` logits.
    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        self.forward_tapped(images, &mut Taps::none())
    }

    /// [`forward`](Self::forward), handing the prep layer's and every stage's output to `taps`.
    pub fn forward_tapped(&self, images: Tensor<4>, taps: &mut Taps) -> Tensor<2> {
        let x = taps.tap("prep", self.prep.forward(images));
        let x = taps.scoped("layer1", |t| self.layer1.forward_tapped(x, t));
        let x = taps.scoped("layer2", |t| self.layer2.forward_tapped(x, t));
        let x = taps.scoped("layer3", |t| self.layer3.forward_tapped(x, t));
        let x = self.pool.forward(x).flatten::<2>(1, 3);
        taps.tap("fc", self.fc.forward(x) * self.logit_scale)
    }
}

impl Describe for Stage {
    fn describe(&self, t: &mut Tracer) -> Result<(), SummaryError> {
        t.scoped("conv", |t| self.conv.describe(t))?;
        t.max_pool2d("pool", &self.pool)?;
        if self.residual.is_empty() {
            return Ok(());
        }
        let input = t.signal();
        t.scoped("residual", |t| {
            crate::blocks::describe_all(&self.residual, t)
        })?;
        t.add("add", input)
    }
}

impl Describe for ResNet9 {
    fn describe(&self, t: &mut Tracer) -> Result<(), SummaryError> {
        t.scoped("prep", |t| self.prep.describe(t))?;
        t.scoped("layer1", |t| self.layer1.describe(t))?;
        t.scoped("layer2", |t| self.layer2.describe(t))?;
        t.scoped("layer3", |t| self.layer3.describe(t))?;
        t.max_pool2d("pool", &self.pool)?;
        t.flatten("flatten");
        t.linear("fc", &self.fc)
    }
}

impl Family for ResNet9Config {
    family_basics!(ResNet9, "resnet9");

    fn variants() -> Vec<Variant<Self>> {
        vec![Variant::new(
            "resnet9",
            "ResNet-9 of the DAWNBench/Myrtle CIFAR-10 recipe, 10 classes (3x32x32)",
            Self::new(),
        )]
    }

    fn canonical_input(&self) -> [usize; 3] {
        [self.in_channels, 32, 32]
    }

    fn validate(&self) -> Result<(), ModelError> {
        if self.base_channels == 0 {
            return Err(ModelError::InvalidConfig(
                "base_channels must be at least 1".into(),
            ));
        }
        Ok(())
    }

    fn head(&self) -> Vec<String> {
        vec!["fc".into()]
    }

    fn stages(&self) -> Vec<Vec<String>> {
        named_stages(&["prep", "layer1", "layer2", "layer3"])
    }
}

crate::network::zoo_network!(ResNet9);
