//! Weight initialisation schemes, chosen per model from its activation.
//!
//! * Xavier/Glorot keeps the variance of activations and gradients constant through a layer
//!   when the activation is roughly linear around 0 (sigmoid, tanh):
//!   `W ~ U(-a, a)`, `a = sqrt(6 / (fan_in + fan_out))`.
//! * Kaiming/He compensates for ReLU zeroing half its inputs: `W ~ N(0, 2 / fan_in)`.
//! * `Torch` is PyTorch's (and Burn's) layer default, `U(-1/sqrt(fan_in), 1/sqrt(fan_in))`.
//! * `Torchvision` is what torchvision's ResNets do: Kaiming normal with fan-out for
//!   convolutions, `W ~ N(0, 2 / (C_out kh kw))` (PyTorch's fan-out ignores groups), and
//!   PyTorch's default for linear layers. With batch norm after every convolution the scale of
//!   a convolution's weights does not change the function, only the effective learning rate
//!   (`lr / |W|^2`); fan-out gives 3x3 layers the same weight norm as torchvision, so its
//!   recipes' learning rates carry over.
//!
//! Kaiming and Xavier set biases to zero, as d2l and torchvision do; `Torch` keeps the
//! default bias initialisation.

use crate::Activation;
use burn::module::Param;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Initializer, Linear, LinearConfig};
use burn::prelude::*;
use serde::{Deserialize, Serialize};

/// Which initialisation a model uses for its convolution and linear weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum InitScheme {
    /// Kaiming for ReLU-like activations, Xavier for sigmoid and tanh.
    #[default]
    Auto,
    /// He et al. 2015, normal, fan-in, gain sqrt(2).
    Kaiming,
    /// Glorot & Bengio 2010, uniform, gain 1.
    Xavier,
    /// The framework default (uniform, bound 1/sqrt(fan_in)).
    Torch,
    /// torchvision's ResNet init: Kaiming normal, fan-out, for convolutions; the framework
    /// default for linear layers.
    Torchvision,
}

impl InitScheme {
    /// The concrete scheme for a network using `activation`.
    pub fn resolve(self, activation: Activation) -> InitScheme {
        match self {
            InitScheme::Auto if activation.is_rectifier() => InitScheme::Kaiming,
            InitScheme::Auto => InitScheme::Xavier,
            other => other,
        }
    }

    /// The Burn initializer of the weights; `None` keeps the layer's default.
    pub fn initializer(self, activation: Activation) -> Option<Initializer> {
        match self.resolve(activation) {
            InitScheme::Kaiming => Some(Initializer::KaimingNormal {
                gain: 2f64.sqrt(),
                fan_out_only: false,
            }),
            InitScheme::Xavier => Some(Initializer::XavierUniform { gain: 1.0 }),
            InitScheme::Torch | InitScheme::Torchvision | InitScheme::Auto => None,
        }
    }

    /// Initialises a convolution with this scheme (biases zeroed unless `Torch`).
    pub fn conv2d(self, activation: Activation, config: Conv2dConfig, device: &Device) -> Conv2d {
        if self == InitScheme::Torchvision {
            // std = sqrt(2 / fan_out), fan_out = C_out * kh * kw as PyTorch counts it.
            let fan_out = config.channels[1] * config.kernel_size[0] * config.kernel_size[1];
            let std = (2.0 / fan_out.max(1) as f64).sqrt();
            let mut conv = config
                .with_initializer(Initializer::Normal { mean: 0.0, std })
                .init(device);
            conv.bias = conv.bias.map(zeroed);
            return conv;
        }
        match self.initializer(activation) {
            Some(init) => {
                let mut conv = config.with_initializer(init).init(device);
                conv.bias = conv.bias.map(zeroed);
                conv
            }
            None => config.init(device),
        }
    }

    /// Initialises a linear layer with this scheme (biases zeroed unless `Torch`).
    pub fn linear(self, activation: Activation, config: LinearConfig, device: &Device) -> Linear {
        match self.initializer(activation) {
            Some(init) => {
                let mut linear = config.with_initializer(init).init(device);
                linear.bias = linear.bias.map(zeroed);
                linear
            }
            None => config.init(device),
        }
    }
}

/// Burn gives a bias the weight's initializer; we want zeros. The mapper runs when the lazy
/// parameter is first materialised, so no tensor is allocated here.
fn zeroed(bias: Param<Tensor<1>>) -> Param<Tensor<1>> {
    bias.init_mapper(|t| t.zeros_like())
}
