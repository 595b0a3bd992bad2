//! AlexNet (Krizhevsky et al. 2012) in torchvision's single-GPU layout (64-192-384-256-256
//! channels), with the paper's local response normalisation as an option.

use crate::family::{Family, Variant, family_basics};
use crate::family::{check_dropout, named_stages};
use crate::registry::ModelError;
use crate::summary::{Describe, SummaryError, Tracer};
use crate::taps::Taps;
use crate::transfer::KeyTable;
use crate::{Activation, InitScheme};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{AdaptiveAvgPool2d, AdaptiveAvgPool2dConfig, MaxPool2d, MaxPool2dConfig};
use burn::nn::{
    Dropout, DropoutConfig, Linear, LinearConfig, LocalResponseNorm, LocalResponseNormConfig,
    PaddingConfig2d,
};
use burn::prelude::*;

/// AlexNet's knobs.
#[derive(Config, Debug)]
pub struct AlexNetConfig {
    /// Image channels.
    #[config(default = 3)]
    pub in_channels: usize,
    /// Output classes.
    #[config(default = 1000)]
    pub num_classes: usize,
    /// Dropout before each of the first two dense layers.
    #[config(default = 0.5)]
    pub dropout: f64,
    /// Local response normalisation after the first two convolutions (size 5, alpha 1e-4,
    /// beta 0.75, k 2, as in the paper). torchvision leaves it out; so does the default.
    #[config(default = false)]
    pub lrn: bool,
    /// Weight initialisation.
    #[config(default = "InitScheme::Auto")]
    pub init: InitScheme,
}

/// AlexNet: five convolutions, three max pools, three dense layers; ReLU and dropout.
#[derive(Module, Debug)]
pub struct AlexNet {
    /// `C -> 64`, 11x11/4, padding 2.
    pub conv1: Conv2d,
    /// Optional LRN after `conv1`.
    pub lrn1: Option<LocalResponseNorm>,
    /// `64 -> 192`, 5x5, padding 2.
    pub conv2: Conv2d,
    /// Optional LRN after `conv2`.
    pub lrn2: Option<LocalResponseNorm>,
    /// `192 -> 384`, 3x3.
    pub conv3: Conv2d,
    /// `384 -> 256`, 3x3.
    pub conv4: Conv2d,
    /// `256 -> 256`, 3x3.
    pub conv5: Conv2d,
    /// Overlapping 3x3/2 max pooling, used three times.
    pub pool: MaxPool2d,
    /// To 6x6 whatever the input size.
    pub avgpool: AdaptiveAvgPool2d,
    /// Dropout before `fc1` and `fc2`.
    pub dropout: Dropout,
    /// `256*6*6 -> 4096`.
    pub fc1: Linear,
    /// `4096 -> 4096`.
    pub fc2: Linear,
    /// `4096 -> classes`.
    pub fc3: Linear,
}

impl AlexNetConfig {
    /// Initialises the model on `device`.
    pub fn init(&self, device: &Device) -> AlexNet {
        let relu = Activation::Relu;
        let conv = |cin, cout, k, s, p| {
            self.init.conv2d(
                relu,
                Conv2dConfig::new([cin, cout], [k, k])
                    .with_stride([s, s])
                    .with_padding(PaddingConfig2d::Explicit(p, p, p, p)),
                device,
            )
        };
        let lrn = || {
            self.lrn.then(|| {
                LocalResponseNormConfig::new(5)
                    .with_alpha(1e-4)
                    .with_beta(0.75)
                    .with_k(2.0)
                    .init()
            })
        };
        let linear = |i, o| self.init.linear(relu, LinearConfig::new(i, o), device);
        AlexNet {
            conv1: conv(self.in_channels, 64, 11, 4, 2),
            lrn1: lrn(),
            conv2: conv(64, 192, 5, 1, 2),
            lrn2: lrn(),
            conv3: conv(192, 384, 3, 1, 1),
            conv4: conv(384, 256, 3, 1, 1),
            conv5: conv(256, 256, 3, 1, 1),
            pool: MaxPool2dConfig::new([3, 3]).with_strides([2, 2]).init(),
            avgpool: AdaptiveAvgPool2dConfig::new([6, 6]).init(),
            dropout: DropoutConfig::new(self.dropout).init(),
            fc1: linear(256 * 6 * 6, 4096),
            fc2: linear(4096, 4096),
            fc3: linear(4096, self.num_classes),
        }
    }
}

fn relu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    Activation::Relu.forward(x)
}

impl AlexNet {
    /// `[N, C, H, W]` images (224x224 canonical, at least 63x63) to `[N, classes]` logits.
    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        self.forward_tapped(images, &mut Taps::none())
    }

    /// [`forward`](Self::forward), handing each layer's output to `taps`.
    pub fn forward_tapped(&self, images: Tensor<4>, taps: &mut Taps) -> Tensor<2> {
        let lrn = |l: &Option<LocalResponseNorm>, x: Tensor<4>| match l {
            Some(l) => l.forward(x),
            None => x,
        };
        let x = taps.tap("conv1", relu(self.conv1.forward(images)));
        let x = taps.tap("pool1", self.pool.forward(lrn(&self.lrn1, x)));
        let x = taps.tap("conv2", relu(self.conv2.forward(x)));
        let x = taps.tap("pool2", self.pool.forward(lrn(&self.lrn2, x)));
        let x = taps.tap("conv3", relu(self.conv3.forward(x)));
        let x = taps.tap("conv4", relu(self.conv4.forward(x)));
        let x = taps.tap("conv5", relu(self.conv5.forward(x)));
        let x = taps.tap("pool3", self.pool.forward(x));
        let x = self.avgpool.forward(x).flatten::<2>(1, 3);
        let x = taps.tap("fc1", relu(self.fc1.forward(self.dropout.forward(x))));
        let x = taps.tap("fc2", relu(self.fc2.forward(self.dropout.forward(x))));
        taps.tap("fc3", self.fc3.forward(x))
    }
}

impl Describe for AlexNet {
    fn describe(&self, t: &mut Tracer) -> Result<(), SummaryError> {
        t.conv2d("conv1", &self.conv1)?;
        if self.lrn1.is_some() {
            t.same_shape("lrn1", "local response norm");
        }
        t.max_pool2d("pool1", &self.pool)?;
        t.conv2d("conv2", &self.conv2)?;
        if self.lrn2.is_some() {
            t.same_shape("lrn2", "local response norm");
        }
        t.max_pool2d("pool2", &self.pool)?;
        t.conv2d("conv3", &self.conv3)?;
        t.conv2d("conv4", &self.conv4)?;
        t.conv2d("conv5", &self.conv5)?;
        t.max_pool2d("pool3", &self.pool)?;
        t.adaptive_avg_pool2d("avgpool", &self.avgpool)?;
        t.flatten("flatten");
        t.linear("fc1", &self.fc1)?;
        t.linear("fc2", &self.fc2)?;
        t.linear("fc3", &self.fc3)
    }
}

impl Family for AlexNetConfig {
    family_basics!(AlexNet, "alexnet");

    fn variants() -> Vec<Variant<Self>> {
        vec![Variant::new(
            "alexnet",
            "AlexNet, torchvision layout (3x224x224)",
            Self::new(),
        )]
    }

    fn validate(&self) -> Result<(), ModelError> {
        check_dropout(self.dropout)
    }

    fn head(&self) -> Vec<String> {
        vec!["fc3".into()]
    }

    fn stages(&self) -> Vec<Vec<String>> {
        named_stages(&["conv1", "conv2", "conv3", "conv4", "conv5"])
    }

    /// torchvision's `features`: conv(0) relu pool conv(3) relu pool conv(6) relu conv(8) relu
    /// conv(10); `classifier`: dropout fc(1) relu dropout fc(4) relu fc(6). Its AlexNet has no
    /// local response normalisation, so only `lrn = false` matches.
    fn torchvision_keys(&self) -> Option<KeyTable> {
        if self.lrn {
            return None;
        }
        let mut t = KeyTable::torchvision();
        for (i, name) in [
            (0, "conv1"),
            (3, "conv2"),
            (6, "conv3"),
            (8, "conv4"),
            (10, "conv5"),
        ] {
            t = t.rule(format!(r"^features\.{i}\."), format!("{name}."));
        }
        for (i, name) in [(1, "fc1"), (4, "fc2"), (6, "fc3")] {
            t = t.rule(format!(r"^classifier\.{i}\."), format!("{name}."));
        }
        Some(t)
    }
}

crate::network::zoo_network!(AlexNet);
