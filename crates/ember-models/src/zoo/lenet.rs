//! LeNet-5 (LeCun et al. 1998) as in d2l: the classic sigmoid/average-pooling network,
//! and its modern form with ReLU, max pooling and optionally batch norm ("BN-LeNet").

use crate::blocks::{ConvBnAct, ConvBnActConfig};
use crate::family::{Family, Variant, family_basics};
use crate::summary::{Describe, SummaryError, Tracer};
use crate::taps::Taps;
use crate::{Activation, InitScheme};
use burn::nn::pool::{AvgPool2d, AvgPool2dConfig, MaxPool2d, MaxPool2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig};
use burn::prelude::*;
use serde::{Deserialize, Serialize};

/// The sub-sampling layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pooling {
    /// Maximum of each window: the gradient flows to the arg-max only.
    Max,
    /// Mean of each window: the gradient is spread evenly.
    Avg,
}

/// LeNet-5: `conv 6@5x5 p2 -> pool 2 -> conv 16@5x5 -> pool 2 -> 120 -> 84 -> classes`.
/// The defaults are the classic network; see [`LeNetConfig::modern`] and [`LeNetConfig::bn`].
#[derive(Config, Debug)]
pub struct LeNetConfig {
    /// Image channels.
    #[config(default = 1)]
    pub in_channels: usize,
    /// Output classes.
    #[config(default = 10)]
    pub num_classes: usize,
    /// `[H, W]` of the images; sets the width of the first dense layer (16 x 5 x 5 for 28x28).
    #[config(default = "[28, 28]")]
    pub input_size: [usize; 2],
    /// Activation after every layer but the last.
    #[config(default = "Activation::Sigmoid")]
    pub activation: Activation,
    /// Sub-sampling layer.
    #[config(default = "Pooling::Avg")]
    pub pooling: Pooling,
    /// Batch norm after every convolution and hidden dense layer.
    #[config(default = false)]
    pub batch_norm: bool,
    /// Weight initialisation.
    #[config(default = "InitScheme::Auto")]
    pub init: InitScheme,
}

/// Either pooling layer of LeNet.
#[derive(Module, Debug)]
#[allow(missing_docs)]
pub enum Pool2d {
    Max(MaxPool2d),
    Avg(AvgPool2d),
}

impl Pool2d {
    fn new(pooling: Pooling) -> Self {
        match pooling {
            Pooling::Max => Pool2d::Max(MaxPool2dConfig::new([2, 2]).init()),
            Pooling::Avg => Pool2d::Avg(AvgPool2dConfig::new([2, 2]).init()),
        }
    }

    /// Pools `[N, C, H, W]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        match self {
            Pool2d::Max(p) => p.forward(x),
            Pool2d::Avg(p) => p.forward(x),
        }
    }

    fn describe(&self, name: &str, t: &mut Tracer) -> Result<(), SummaryError> {
        match self {
            Pool2d::Max(p) => t.max_pool2d(name, p),
            Pool2d::Avg(p) => t.avg_pool2d(name, p),
        }
    }
}

/// LeNet-5.
#[derive(Module, Debug)]
pub struct LeNet {
    /// `C -> 6`, 5x5, padding 2.
    pub conv1: ConvBnAct,
    /// First sub-sampling.
    pub pool1: Pool2d,
    /// `6 -> 16`, 5x5.
    pub conv2: ConvBnAct,
    /// Second sub-sampling.
    pub pool2: Pool2d,
    /// `16*5*5 -> 120`.
    pub fc1: Linear,
    /// Batch norm of `fc1` (BN-LeNet).
    pub bn1: Option<BatchNorm>,
    /// `120 -> 84`.
    pub fc2: Linear,
    /// Batch norm of `fc2` (BN-LeNet).
    pub bn2: Option<BatchNorm>,
    /// `84 -> classes`.
    pub fc3: Linear,
    /// Activation between layers.
    #[module(skip)]
    pub activation: Activation,
}

impl LeNetConfig {
    /// The d2l "modern" LeNet: ReLU and max pooling.
    pub fn modern() -> Self {
        Self::new()
            .with_activation(Activation::Relu)
            .with_pooling(Pooling::Max)
    }

    /// Modern LeNet with batch norm after each convolution and hidden dense layer.
    pub fn bn() -> Self {
        Self::modern().with_batch_norm(true)
    }

    /// Width of the flattened features for `input_size` (saturating: a too-small input is
    /// reported by the summary, naming the layer, rather than by a panic here).
    fn flat_features(&self) -> usize {
        let side = |n: usize| ((n / 2).saturating_sub(4) / 2).max(1);
        16 * side(self.input_size[0]) * side(self.input_size[1])
    }

    /// Initialises the model on `device`.
    pub fn init(&self, device: &Device) -> LeNet {
        let act = self.activation;
        let conv = |cin, cout, pad| {
            ConvBnActConfig::new([cin, cout], 5)
                .with_padding(pad)
                .with_batch_norm(self.batch_norm)
                .with_activation(Some(act))
                .with_init(self.init)
                .init(device)
        };
        let bn = |n| {
            self.batch_norm
                .then(|| BatchNormConfig::new(n).init(device))
        };
        LeNet {
            conv1: conv(self.in_channels, 6, 2),
            pool1: Pool2d::new(self.pooling),
            conv2: conv(6, 16, 0),
            pool2: Pool2d::new(self.pooling),
            fc1: self
                .init
                .linear(act, LinearConfig::new(self.flat_features(), 120), device),
            bn1: bn(120),
            fc2: self.init.linear(act, LinearConfig::new(120, 84), device),
            bn2: bn(84),
            fc3: self
                .init
                .linear(act, LinearConfig::new(84, self.num_classes), device),
            activation: act,
        }
    }
}

impl LeNet {
    /// `[N, C, H, W]` images to `[N, classes]` logits.
    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        self.forward_tapped(images, &mut Taps::none())
    }

    /// [`forward`](Self::forward), handing each layer's output to `taps`.
    pub fn forward_tapped(&self, images: Tensor<4>, taps: &mut Taps) -> Tensor<2> {
        let x = taps.tap("conv1", self.conv1.forward(images));
        let x = taps.tap("pool1", self.pool1.forward(x));
        let x = taps.tap("conv2", self.conv2.forward(x));
        let x = taps.tap("pool2", self.pool2.forward(x));
        let x = x.flatten::<2>(1, 3);
        let dense = |fc: &Linear, bn: &Option<BatchNorm>, x| {
            let x = fc.forward(x);
            let x = match bn {
                Some(bn) => bn.forward(x),
                None => x,
            };
            self.activation.forward(x)
        };
        let x = taps.tap("fc1", dense(&self.fc1, &self.bn1, x));
        let x = taps.tap("fc2", dense(&self.fc2, &self.bn2, x));
        taps.tap("fc3", self.fc3.forward(x))
    }
}

impl Describe for LeNet {
    fn describe(&self, t: &mut Tracer) -> Result<(), SummaryError> {
        t.scoped("conv1", |t| self.conv1.describe(t))?;
        self.pool1.describe("pool1", t)?;
        t.scoped("conv2", |t| self.conv2.describe(t))?;
        self.pool2.describe("pool2", t)?;
        t.flatten("flatten");
        t.linear("fc1", &self.fc1)?;
        if let Some(bn) = &self.bn1 {
            t.batch_norm("bn1", bn)?;
        }
        t.linear("fc2", &self.fc2)?;
        if let Some(bn) = &self.bn2 {
            t.batch_norm("bn2", bn)?;
        }
        t.linear("fc3", &self.fc3)
    }
}

impl Family for LeNetConfig {
    family_basics!(LeNet, "lenet", input_size);

    fn variants() -> Vec<Variant<Self>> {
        vec![
            Variant::new(
                "lenet5",
                "LeNet-5 classic: sigmoid, average pooling (1x28x28)",
                Self::new(),
            ),
            Variant::new(
                "lenet5_modern",
                "LeNet-5 with ReLU and max pooling (1x28x28)",
                Self::modern(),
            ),
            Variant::new(
                "lenet5_bn",
                "BN-LeNet: modern LeNet-5 with batch norm (1x28x28)",
                Self::bn(),
            ),
        ]
    }

    fn head(&self) -> Vec<String> {
        vec!["fc3".into()]
    }

    fn stages(&self) -> Vec<Vec<String>> {
        vec![
            vec!["conv1".into()],
            vec!["conv2".into()],
            vec!["fc1".into(), "bn1".into()],
            vec!["fc2".into(), "bn2".into()],
        ]
    }
}

crate::network::zoo_network!(LeNet);
