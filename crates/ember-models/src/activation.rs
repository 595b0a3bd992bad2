//! The activation functions of the zoo, as a small serde enum so that a model's config can name one.

use burn::prelude::*;
use burn::tensor::activation;
use serde::{Deserialize, Serialize};

/// The non-linearity between layers.
///
/// Sigmoid and tanh saturate (their gradient vanishes for large |x|); ReLU does not on its
/// positive side, which is why every model after LeNet uses it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    /// max(0, x)
    #[default]
    Relu,
    /// 1 / (1 + e^-x)
    Sigmoid,
    /// (e^x - e^-x) / (e^x + e^-x)
    Tanh,
    /// max(0, x) + slope * min(0, x), slope 0.01 as in PyTorch.
    LeakyRelu,
    /// `x * Phi(x)`, `Phi` the standard normal CDF, computed with erf (PyTorch's exact
    /// `nn.GELU()`, not the tanh approximation): Hendrycks & Gimpel 2016. airbench's choice.
    Gelu,
}

impl Activation {
    /// Applies the activation element-wise.
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        match self {
            Activation::Relu => activation::relu(x),
            Activation::Sigmoid => activation::sigmoid(x),
            Activation::Tanh => activation::tanh(x),
            Activation::LeakyRelu => activation::leaky_relu(x, 0.01),
            Activation::Gelu => activation::gelu(x),
        }
    }

    /// Whether the activation is ReLU-like (Kaiming initialisation suits it) rather than
    /// a symmetric saturating one (Xavier suits those).
    pub fn is_rectifier(&self) -> bool {
        matches!(
            self,
            Activation::Relu | Activation::LeakyRelu | Activation::Gelu
        )
    }
}
