//! Softmax regression and the multilayer perceptron: the dense baselines CNNs are compared with.

use crate::family::{Family, Variant, family_basics};
use crate::family::{check_dropout, numbered_stages};
use crate::registry::ModelError;
use crate::summary::{Describe, SummaryError, Tracer};
use crate::taps::Taps;
use crate::{Activation, InitScheme};
use burn::nn::{Dropout, DropoutConfig, Linear, LinearConfig};
use burn::prelude::*;

/// An MLP on flattened images. With no hidden layer it is softmax regression
/// (the softmax itself lives in the cross-entropy loss, which is numerically stabler).
#[derive(Config, Debug)]
pub struct MlpConfig {
    /// Image channels.
    #[config(default = 1)]
    pub in_channels: usize,
    /// Output classes.
    #[config(default = 10)]
    pub num_classes: usize,
    /// `[H, W]` of the images (the first layer has `C*H*W` inputs).
    #[config(default = "[28, 28]")]
    pub input_size: [usize; 2],
    /// Widths of the hidden layers; empty for softmax regression.
    #[config(default = "vec![256]")]
    pub hidden: Vec<usize>,
    /// Activation after each hidden layer.
    #[config(default = "Activation::Relu")]
    pub activation: Activation,
    /// Dropout probability after each hidden activation.
    #[config(default = 0.0)]
    pub dropout: f64,
    /// Weight initialisation.
    #[config(default = "InitScheme::Auto")]
    pub init: InitScheme,
}

/// Flatten, then `hidden` dense layers with activation and dropout, then the output layer.
#[derive(Module, Debug)]
pub struct Mlp {
    /// Hidden layers.
    pub hidden: Vec<Linear>,
    /// Output layer producing the logits.
    pub output: Linear,
    /// Dropout after each hidden activation.
    pub dropout: Dropout,
    /// Hidden activation.
    #[module(skip)]
    pub activation: Activation,
}

impl MlpConfig {
    /// Softmax regression: one linear layer from pixels to logits.
    pub fn softmax_regression() -> Self {
        Self::new().with_hidden(vec![])
    }

    /// Initialises the model on `device`.
    pub fn init(&self, device: &Device) -> Mlp {
        let mut width = self.in_channels * self.input_size[0] * self.input_size[1];
        let mut hidden = Vec::with_capacity(self.hidden.len());
        for &h in &self.hidden {
            hidden.push(
                self.init
                    .linear(self.activation, LinearConfig::new(width, h), device),
            );
            width = h;
        }
        Mlp {
            hidden,
            output: self.init.linear(
                self.activation,
                LinearConfig::new(width, self.num_classes),
                device,
            ),
            dropout: DropoutConfig::new(self.dropout).init(),
            activation: self.activation,
        }
    }
}

impl Mlp {
    /// `[N, C, H, W]` images to `[N, classes]` logits.
    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        self.forward_tapped(images, &mut Taps::none())
    }

    /// [`forward`](Self::forward), handing each layer's output (after its activation) to `taps`.
    pub fn forward_tapped(&self, images: Tensor<4>, taps: &mut Taps) -> Tensor<2> {
        let mut x = images.flatten::<2>(1, 3);
        for (i, layer) in self.hidden.iter().enumerate() {
            let h = taps.scoped("hidden", |taps| {
                taps.tap(i, self.activation.forward(layer.forward(x)))
            });
            x = self.dropout.forward(h);
        }
        taps.tap("output", self.output.forward(x))
    }
}

impl Describe for Mlp {
    fn describe(&self, t: &mut Tracer) -> Result<(), SummaryError> {
        t.flatten("flatten");
        for (i, layer) in self.hidden.iter().enumerate() {
            t.linear(&format!("hidden.{i}"), layer)?;
        }
        t.linear("output", &self.output)
    }
}

impl Family for MlpConfig {
    family_basics!(Mlp, "mlp", input_size);

    fn variants() -> Vec<Variant<Self>> {
        vec![
            Variant::new(
                "softmax_regression",
                "one linear layer on the pixels (1x28x28)",
                Self::softmax_regression(),
            ),
            Variant::new(
                "mlp",
                "one hidden layer of 256 ReLU units (1x28x28)",
                Self::new(),
            ),
        ]
    }

    fn validate(&self) -> Result<(), ModelError> {
        check_dropout(self.dropout)
    }

    fn head(&self) -> Vec<String> {
        vec!["output".into()]
    }

    fn stages(&self) -> Vec<Vec<String>> {
        numbered_stages("hidden", self.hidden.len())
    }
}

crate::network::zoo_network!(Mlp);
