//! airbench94, the fastest known CIFAR-10 network and recipe: 94% test accuracy in 9.9 epochs
//! (Keller Jordan, "94% on CIFAR-10 in 3.29 seconds on a single GPU", arXiv 2404.00498; code
//! KellerJordan/cifar10-airbench). A VGG-like network without residuals:
//!
//! ```text
//! whiten  conv 2x2 -> 24, no padding, bias, weights from the data   31x31
//!         GELU
//! block1  conv 3x3 -> 64, max pool 2, BN, GELU                      15x15
//!         conv 3x3 -> 64, BN, GELU
//! block2  conv 3x3 -> 256, max pool 2, BN, GELU                       7x7
//!         conv 3x3 -> 256, BN, GELU
//! block3  conv 3x3 -> 256, max pool 2, BN, GELU                       3x3
//!         conv 3x3 -> 256, BN, GELU
//! head    max pool 3 (global), linear 256 -> classes (no bias), x 1/9
//! ```
//!
//! 1,972,792 parameters for 10 classes (batch norm's frozen scales included, as PyTorch
//! counts them), 118.1 M multiply-accumulates an image. Its batch norms have epsilon 1e-12,
//! momentum 0.4 (PyTorch's convention; the source writes 0.6 for `1 - momentum`) and a scale
//! frozen at 1. Every 3x3 convolution starts from PyTorch's default initialisation with its
//! first `C_in` filters set to the identity ([`identity_init`]). The whitening layer's weight
//! never trains: [`Airbench::init_whitening`] sets it from training images
//! ([`whitening_filters`]) before the first step.

use crate::blocks::{ConvBnAct, ConvBnActConfig, ConvPoolBnAct, ConvPoolBnActConfig};
use crate::family::{Family, Variant, family_basics, named_stages};
use crate::init::{identity_init, whitening_filters};
use crate::registry::ModelError;
use crate::summary::{Describe, SummaryError, Tracer};
use crate::taps::Taps;
use crate::{Activation, InitScheme};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;

/// airbench94's configuration.
#[derive(Config, Debug)]
pub struct AirbenchConfig {
    /// Image channels.
    #[config(default = 3)]
    pub in_channels: usize,
    /// Output classes.
    #[config(default = 10)]
    pub num_classes: usize,
    /// `[H, W]` of the input: the final max pool covers the whole last map.
    #[config(default = "[32, 32]")]
    pub input_size: [usize; 2],
    /// Output channels of the three blocks.
    #[config(default = "[64, 256, 256]")]
    pub widths: [usize; 3],
    /// Kernel `k` of the whitening layer; it has `2 C k k` filters.
    #[config(default = 2)]
    pub whiten_kernel: usize,
    /// Scale of the logits (1/9 in the source).
    #[config(default = "1.0 / 9.0")]
    pub logit_scale: f64,
    /// Batch norm epsilon.
    #[config(default = 1e-12)]
    pub bn_epsilon: f64,
    /// Batch norm momentum, PyTorch's convention.
    #[config(default = 0.4)]
    pub bn_momentum: f64,
    /// Added to every eigenvalue of the patch covariance by the whitening init (5e-4).
    #[config(default = 5e-4)]
    pub whiten_eps: f64,
}

/// Two convolutions, the first pooled before its batch norm: airbench's `ConvGroup`.
#[derive(Module, Debug)]
pub struct ConvGroup {
    /// 3x3 convolution, 2x2 max pool, BN, GELU.
    pub conv1: ConvPoolBnAct,
    /// 3x3 convolution, BN, GELU.
    pub conv2: ConvBnAct,
}

/// airbench94.
#[derive(Module, Debug)]
pub struct Airbench {
    /// The whitening convolution (weights from the data, never trained).
    pub whiten: Conv2d,
    /// First group.
    pub block1: ConvGroup,
    /// Second group.
    pub block2: ConvGroup,
    /// Third group.
    pub block3: ConvGroup,
    /// Max pool over the whole last map.
    pub pool: MaxPool2d,
    /// `widths[2] -> classes`, no bias.
    pub fc: Linear,
    /// Scale of the logits.
    pub logit_scale: f64,
    /// Eigenvalue floor of [`Airbench::init_whitening`] from data.
    pub whiten_eps: f64,
}

impl AirbenchConfig {
    /// Side of the map after the whitening layer and the three pools.
    fn final_size(&self) -> [usize; 2] {
        self.input_size
            .map(|s| (s + 1).saturating_sub(self.whiten_kernel) / 8)
    }

    /// Initialises the model on `device`.
    pub fn init(&self, device: &Device) -> Airbench {
        let (eps, momentum) = (self.bn_epsilon, self.bn_momentum);
        let group = |cin: usize, cout: usize| {
            let mut conv1 = ConvPoolBnActConfig::new([cin, cout])
                .with_bn_epsilon(eps)
                .with_bn_momentum(momentum)
                .with_bn_trainable_scale(false)
                .with_activation(Activation::Gelu)
                .with_init(InitScheme::Torch)
                .init(device);
            conv1.conv = identity_init(conv1.conv);
            let mut conv2 = ConvBnActConfig::new([cout, cout], 3)
                .with_padding(1)
                .with_bias(false)
                .with_batch_norm(true)
                .with_bn_epsilon(eps)
                .with_bn_momentum(momentum)
                .with_bn_trainable_scale(false)
                .with_activation(Some(Activation::Gelu))
                .with_init(InitScheme::Torch)
                .init(device);
            conv2.conv = identity_init(conv2.conv);
            ConvGroup { conv1, conv2 }
        };
        let k = self.whiten_kernel;
        let whiten_width = 2 * self.in_channels * k * k;
        let mut whiten = Conv2dConfig::new([self.in_channels, whiten_width], [k, k]).init(device);
        whiten.weight = whiten.weight.set_require_grad(false);
        // The source zeroes every conv bias at init; only the whitening layer has one.
        whiten.bias = whiten.bias.map(|b| b.init_mapper(|t| t.zeros_like()));
        let [w1, w2, w3] = self.widths;
        Airbench {
            whiten,
            block1: group(whiten_width, w1),
            block2: group(w1, w2),
            block3: group(w2, w3),
            pool: MaxPool2dConfig::new(self.final_size()).init(),
            fc: LinearConfig::new(w3, self.num_classes)
                .with_bias(false)
                .init(device),
            logit_scale: self.logit_scale,
            whiten_eps: self.whiten_eps,
        }
    }
}

impl ConvGroup {
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.conv2.forward(self.conv1.forward(x))
    }
}

impl Airbench {
    /// `[N, C, H, W]` images to `[N, classes]` logits.
    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        self.forward_tapped(images, &mut Taps::none())
    }

    /// [`forward`](Self::forward), handing the whitening layer's and every group's output to
    /// `taps`.
    pub fn forward_tapped(&self, images: Tensor<4>, taps: &mut Taps) -> Tensor<2> {
        let x = Activation::Gelu.forward(self.whiten.forward(images));
        let x = taps.tap("whiten", x);
        let x = taps.tap("block1", self.block1.forward(x));
        let x = taps.tap("block2", self.block2.forward(x));
        let x = taps.tap("block3", self.block3.forward(x));
        let x = self.pool.forward(x).flatten::<2>(1, 3);
        taps.tap("fc", self.fc.forward(x) * self.logit_scale)
    }

    /// Sets the whitening layer's weights from training images (`[N, C, H, W]`, normalised
    /// as the network sees them; airbench takes 5,000) with `eps` added to every eigenvalue
    /// (5e-4 in the source). The weight stays frozen; the bias is left as it is.
    pub fn init_whitening(mut self, images: Tensor<4>, eps: f64) -> Self {
        let [_, _, k, _] = self.whiten.weight.lazy_shape().dims();
        let filters = whitening_filters(images, k, eps);
        self.whiten.weight = self
            .whiten
            .weight
            .map(|w| filters.to_device(&w.device()))
            .set_require_grad(false);
        self
    }
}

impl Describe for ConvGroup {
    fn describe(&self, t: &mut Tracer) -> Result<(), SummaryError> {
        t.scoped("conv1", |t| self.conv1.describe(t))?;
        t.scoped("conv2", |t| self.conv2.describe(t))
    }
}

impl Describe for Airbench {
    fn describe(&self, t: &mut Tracer) -> Result<(), SummaryError> {
        t.conv2d("whiten", &self.whiten)?;
        t.scoped("block1", |t| self.block1.describe(t))?;
        t.scoped("block2", |t| self.block2.describe(t))?;
        t.scoped("block3", |t| self.block3.describe(t))?;
        t.max_pool2d("pool", &self.pool)?;
        t.flatten("flatten");
        t.linear("fc", &self.fc)
    }
}

impl Family for AirbenchConfig {
    family_basics!(Airbench, "airbench", input_size);

    fn variants() -> Vec<Variant<Self>> {
        vec![Variant::new(
            "airbench94",
            "airbench94 (Jordan 2024): whitening layer, three conv-pool-BN-GELU groups, 10 classes (3x32x32)",
            Self::new(),
        )]
    }

    fn validate(&self) -> Result<(), ModelError> {
        if self.widths.contains(&0) || self.whiten_kernel == 0 {
            return Err(ModelError::InvalidConfig(
                "airbench widths and whiten_kernel must be at least 1".into(),
            ));
        }
        if self.final_size().contains(&0) {
            return Err(ModelError::InvalidConfig(format!(
                "airbench needs images of at least {0}x{0} (three 2x2 pools after the \
                 {1}x{1} whitening layer), got {2}x{3}",
                7 + self.whiten_kernel,
                self.whiten_kernel,
                self.input_size[0],
                self.input_size[1]
            )));
        }
        Ok(())
    }

    fn head(&self) -> Vec<String> {
        vec!["fc".into()]
    }

    fn stages(&self) -> Vec<Vec<String>> {
        named_stages(&["whiten", "block1", "block2", "block3"])
    }
}

crate::network::zoo_network!(Airbench);
