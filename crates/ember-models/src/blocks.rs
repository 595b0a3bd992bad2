//! The small building block most CNNs repeat: convolution, optional batch norm, activation.

use crate::summary::{Describe, SummaryError, Tracer};
use crate::{Activation, InitScheme};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, PaddingConfig2d};
use burn::prelude::*;

/// Configuration of a [`ConvBnAct`]: a square `k x k` convolution with symmetric padding.
#[derive(Config, Debug)]
pub struct ConvBnActConfig {
    /// `[in_channels, out_channels]`.
    pub channels: [usize; 2],
    /// Kernel size `k`.
    pub kernel_size: usize,
    /// Stride.
    #[config(default = 1)]
    pub stride: usize,
    /// Zero padding on every side.
    #[config(default = 0)]
    pub padding: usize,
    /// Groups (ResNeXt's cardinality); `in` and `out` must be divisible by it.
    #[config(default = 1)]
    pub groups: usize,
    /// Whether the convolution has a bias (redundant before batch norm, but torchvision's VGG-BN keeps it).
    #[config(default = true)]
    pub bias: bool,
    /// Batch normalisation after the convolution.
    #[config(default = false)]
    pub batch_norm: bool,
    /// Batch norm epsilon (GoogLeNet uses 1e-3).
    #[config(default = 1e-5)]
    pub bn_epsilon: f64,
    /// Activation after normalisation; `None` for none (the last conv of a residual branch).
    #[config(default = "Some(Activation::Relu)")]
    pub activation: Option<Activation>,
    /// Weight initialisation.
    #[config(default = "InitScheme::Auto")]
    pub init: InitScheme,
}

/// `conv -> [batch norm] -> [activation]`.
#[derive(Module, Debug)]
pub struct ConvBnAct {
    /// The convolution.
    pub conv: Conv2d,
    /// Batch normalisation, if configured.
    pub bn: Option<BatchNorm>,
    /// Activation, if any.
    #[module(skip)]
    pub activation: Option<Activation>,
}

impl ConvBnActConfig {
    /// Initialises the block on `device`.
    pub fn init(&self, device: &Device) -> ConvBnAct {
        let activation = self.activation.unwrap_or(Activation::Relu);
        let p = self.padding;
        let conv = self.init.conv2d(
            activation,
            Conv2dConfig::new(self.channels, [self.kernel_size, self.kernel_size])
                .with_stride([self.stride, self.stride])
                .with_padding(PaddingConfig2d::Explicit(p, p, p, p))
                .with_groups(self.groups)
                .with_bias(self.bias),
            device,
        );
        let bn = self.batch_norm.then(|| {
            BatchNormConfig::new(self.channels[1])
                .with_epsilon(self.bn_epsilon)
                .init(device)
        });
        ConvBnAct {
            conv,
            bn,
            activation: self.activation,
        }
    }
}

impl ConvBnAct {
    /// `[N, C_in, H, W] -> [N, C_out, H', W']`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let mut x = self.conv.forward(x);
        if let Some(bn) = &self.bn {
            x = bn.forward(x);
        }
        match self.activation {
            Some(act) => act.forward(x),
            None => x,
        }
    }
}

impl Describe for ConvBnAct {
    fn describe(&self, t: &mut Tracer) -> Result<(), SummaryError> {
        t.conv2d("conv", &self.conv)?;
        if let Some(bn) = &self.bn {
            t.batch_norm("bn", bn)?;
        }
        Ok(())
    }
}

/// A sequence of [`ConvBnAct`] blocks applied in order.
pub fn forward_all(blocks: &[ConvBnAct], x: Tensor<4>) -> Tensor<4> {
    blocks.iter().fold(x, |x, b| b.forward(x))
}

/// Describes a sequence of blocks named `0`, `1`, ... (as `Vec` fields are named in weights).
pub fn describe_all<D: Describe>(blocks: &[D], t: &mut Tracer) -> Result<(), SummaryError> {
    for (i, b) in blocks.iter().enumerate() {
        t.scoped(i, |t| b.describe(t))?;
    }
    Ok(())
}

/// Describes a residual block: the residual path, then the shortcut (a projection, or the
/// identity when `downsample` is `None`), then the addition.
pub fn describe_residual(
    t: &mut Tracer,
    path: &[(&str, &ConvBnAct)],
    downsample: &Option<ConvBnAct>,
) -> Result<(), SummaryError> {
    let input = t.signal();
    for (name, conv) in path {
        t.scoped(name, |t| conv.describe(t))?;
    }
    let out = t.signal();
    let skip = match downsample {
        Some(d) => {
            t.set_signal(input);
            t.scoped("downsample", |t| d.describe(t))?;
            t.signal()
        }
        None => input,
    };
    t.set_signal(out);
    t.add("add", skip)
}
