//! The building blocks networks are composed from: convolution + batch norm + activation
//! ([`ConvBnAct`]), the same with a max pool before the norm ([`ConvPoolBnAct`]), batch norm
//! with PyTorch's knobs ([`batch_norm`]), and the residual blocks of ResNet ([`BasicBlock`]) and ResNet-50 and
//! ResNeXt ([`Bottleneck`]).

use crate::summary::{Describe, SummaryError, Tracer};
use crate::{Activation, InitScheme};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
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
    /// Batch norm momentum, PyTorch's convention (see [`batch_norm`]).
    #[config(default = 0.1)]
    pub bn_momentum: f64,
    /// Whether batch norm's scale trains (see [`batch_norm`]).
    #[config(default = true)]
    pub bn_trainable_scale: bool,
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
    /// The block of modern CNNs (ResNet, ResNeXt, RegNet, ResNet-9): a bias-free convolution
    /// (batch norm's shift makes a bias redundant), batch norm, ReLU, padded by `k / 2` so
    /// that stride 1 keeps the size. `new` is the plain convolution (bias, no batch norm) of
    /// the older networks.
    pub fn conv_bn_relu(channels: [usize; 2], kernel_size: usize) -> Self {
        Self::new(channels, kernel_size)
            .with_padding(kernel_size / 2)
            .with_bias(false)
            .with_batch_norm(true)
    }

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
            batch_norm(
                self.channels[1],
                self.bn_epsilon,
                self.bn_momentum,
                self.bn_trainable_scale,
                device,
            )
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

/// Batch norm over `channels`: `y = gamma (x - mean) / sqrt(var + epsilon) + beta`, the
/// running statistics updated as `running = (1 - momentum) running + momentum batch`
/// (PyTorch's convention, Burn's too; PyTorch's default momentum is 0.1). With
/// `trainable_scale = false`, `gamma` stays at 1 and gets no gradient, so only the shift
/// trains: airbench's batch norm, whose next layer can absorb any scale.
pub fn batch_norm(
    channels: usize,
    epsilon: f64,
    momentum: f64,
    trainable_scale: bool,
    device: &Device,
) -> BatchNorm {
    let mut bn = BatchNormConfig::new(channels)
        .with_epsilon(epsilon)
        .with_momentum(momentum)
        .init(device);
    if !trainable_scale {
        bn.gamma = bn.gamma.set_require_grad(false);
    }
    bn
}

/// Configuration of a [`ConvPoolBnAct`]: a square `k x k` convolution padded to keep the
/// size, without bias.
#[derive(Config, Debug)]
pub struct ConvPoolBnActConfig {
    /// `[in_channels, out_channels]`.
    pub channels: [usize; 2],
    /// Kernel size `k` (odd: padded by `k / 2`).
    #[config(default = 3)]
    pub kernel_size: usize,
    /// Max pooling window and stride.
    #[config(default = 2)]
    pub pool: usize,
    /// Batch norm epsilon.
    #[config(default = 1e-5)]
    pub bn_epsilon: f64,
    /// Batch norm momentum, PyTorch's convention (see [`batch_norm`]).
    #[config(default = 0.1)]
    pub bn_momentum: f64,
    /// Whether batch norm's scale trains (see [`batch_norm`]).
    #[config(default = true)]
    pub bn_trainable_scale: bool,
    /// Activation after normalisation.
    #[config(default = "Activation::Relu")]
    pub activation: Activation,
    /// Weight initialisation.
    #[config(default = "InitScheme::Auto")]
    pub init: InitScheme,
}

/// `conv -> max pool -> batch norm -> activation`: airbench's order (Jordan 2024), which
/// pools before normalising so that batch norm and the activation run on a quarter of the
/// positions. The convolution has no bias (batch norm's shift replaces it).
#[derive(Module, Debug)]
pub struct ConvPoolBnAct {
    /// The convolution, at full resolution.
    pub conv: Conv2d,
    /// `pool x pool` max pooling, stride `pool`.
    pub pool: MaxPool2d,
    /// Batch normalisation of the pooled map.
    pub bn: BatchNorm,
    /// Activation.
    #[module(skip)]
    pub activation: Activation,
}

impl ConvPoolBnActConfig {
    /// Initialises the block on `device`.
    pub fn init(&self, device: &Device) -> ConvPoolBnAct {
        let (k, p) = (self.kernel_size, self.kernel_size / 2);
        let conv = self.init.conv2d(
            self.activation,
            Conv2dConfig::new(self.channels, [k, k])
                .with_padding(PaddingConfig2d::Explicit(p, p, p, p))
                .with_bias(false),
            device,
        );
        ConvPoolBnAct {
            conv,
            pool: MaxPool2dConfig::new([self.pool, self.pool]).init(),
            bn: batch_norm(
                self.channels[1],
                self.bn_epsilon,
                self.bn_momentum,
                self.bn_trainable_scale,
                device,
            ),
            activation: self.activation,
        }
    }
}

impl ConvPoolBnAct {
    /// `[N, C_in, H, W] -> [N, C_out, H / pool, W / pool]` (floored).
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let x = self.pool.forward(self.conv.forward(x));
        self.activation.forward(self.bn.forward(x))
    }
}

impl Describe for ConvPoolBnAct {
    fn describe(&self, t: &mut Tracer) -> Result<(), SummaryError> {
        t.conv2d("conv", &self.conv)?;
        t.max_pool2d("pool", &self.pool)?;
        t.batch_norm("bn", &self.bn)
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

/// A residual block's forward: `relu(path(x) + shortcut(x))`, the shortcut a projection or,
/// when `downsample` is `None`, the identity (He et al. 2015, eq. 1 and 2).
pub fn residual(x: Tensor<4>, path: &[&ConvBnAct], downsample: &Option<ConvBnAct>) -> Tensor<4> {
    let identity = match downsample {
        Some(d) => d.forward(x.clone()),
        None => x.clone(),
    };
    let out = path.iter().fold(x, |x, conv| conv.forward(x));
    Activation::Relu.forward(out + identity)
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

/// [`ConvBnActConfig::conv_bn_relu`] with a stride, with or without its ReLU.
fn conv_bn(channels: [usize; 2], k: usize, stride: usize, relu: bool) -> ConvBnActConfig {
    ConvBnActConfig::conv_bn_relu(channels, k)
        .with_stride(stride)
        .with_activation(relu.then_some(Activation::Relu))
}

/// The 1x1 projection shortcut, needed when a block changes the shape; identity otherwise.
fn shortcut(
    cin: usize,
    cout: usize,
    stride: usize,
    init: InitScheme,
    device: &Device,
) -> Option<ConvBnAct> {
    (stride != 1 || cin != cout).then(|| {
        conv_bn([cin, cout], 1, stride, false)
            .with_init(init)
            .init(device)
    })
}

/// Two 3x3 convolutions plus the shortcut: `relu(F(x) + x)`. Expansion 1.
#[derive(Module, Debug)]
pub struct BasicBlock {
    /// 3x3, carries the stride.
    pub conv1: ConvBnAct,
    /// 3x3, no ReLU before the addition.
    pub conv2: ConvBnAct,
    /// 1x1 projection when the shape changes.
    pub downsample: Option<ConvBnAct>,
}

/// Configuration of a [`BasicBlock`]: `BasicBlockConfig::new(64, 128).with_stride(2)`.
#[derive(Config, Debug)]
pub struct BasicBlockConfig {
    /// Input channels.
    pub in_channels: usize,
    /// Output channels of both convolutions.
    pub planes: usize,
    /// Stride of the first convolution (and of the projection).
    #[config(default = 1)]
    pub stride: usize,
    /// Weight initialisation.
    #[config(default = "InitScheme::Auto")]
    pub init: InitScheme,
}

impl BasicBlockConfig {
    /// Initialises the block on `device`.
    pub fn init(&self, device: &Device) -> BasicBlock {
        let (cin, planes, stride, init) = (self.in_channels, self.planes, self.stride, self.init);
        BasicBlock {
            conv1: conv_bn([cin, planes], 3, stride, true)
                .with_init(init)
                .init(device),
            conv2: conv_bn([planes, planes], 3, 1, false)
                .with_init(init)
                .init(device),
            downsample: shortcut(cin, planes, stride, init, device),
        }
    }
}

impl BasicBlock {
    /// `[N, C, H, W] -> [N, planes, H/s, W/s]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        residual(x, &[&self.conv1, &self.conv2], &self.downsample)
    }
}

impl Describe for BasicBlock {
    fn describe(&self, t: &mut Tracer) -> Result<(), SummaryError> {
        describe_residual(
            t,
            &[("conv1", &self.conv1), ("conv2", &self.conv2)],
            &self.downsample,
        )
    }
}

/// Configuration of a [`Bottleneck`] from `in_channels` to `4 * planes` channels; its 3x3 has
/// `width = planes * width_per_group / 64 * groups` channels (ResNeXt-50 32x4d: groups 32,
/// width per group 4).
#[derive(Config, Debug)]
pub struct BottleneckConfig {
    /// Input channels.
    pub in_channels: usize,
    /// Planes: the block outputs `4 * planes` channels.
    pub planes: usize,
    /// Stride of the 3x3 convolution (and of the projection).
    #[config(default = 1)]
    pub stride: usize,
    /// ResNeXt cardinality: groups of the 3x3 convolution.
    #[config(default = 1)]
    pub groups: usize,
    /// ResNeXt width per group (64 for plain ResNet).
    #[config(default = 64)]
    pub width_per_group: usize,
    /// Weight initialisation.
    #[config(default = "InitScheme::Auto")]
    pub init: InitScheme,
}

impl BottleneckConfig {
    /// Initialises the block on `device`.
    pub fn init(&self, device: &Device) -> Bottleneck {
        let (cin, planes, stride, init) = (self.in_channels, self.planes, self.stride, self.init);
        let groups = self.groups;
        let width = planes * self.width_per_group / 64 * groups;
        let out = planes * Bottleneck::EXPANSION;
        Bottleneck {
            conv1: conv_bn([cin, width], 1, 1, true)
                .with_init(init)
                .init(device),
            conv2: conv_bn([width, width], 3, stride, true)
                .with_groups(groups)
                .with_init(init)
                .init(device),
            conv3: conv_bn([width, out], 1, 1, false)
                .with_init(init)
                .init(device),
            downsample: shortcut(cin, out, stride, init, device),
        }
    }
}

/// 1x1 reduce, 3x3 (grouped in ResNeXt), 1x1 expand, plus the shortcut: ResNet-50's block
/// ([`BottleneckConfig`], out `planes * 4`) and RegNet's X block
/// ([`XBlockConfig`](crate::zoo::anynet::XBlockConfig)).
#[derive(Module, Debug)]
pub struct Bottleneck {
    /// 1x1 to `width`.
    pub conv1: ConvBnAct,
    /// 3x3, carries the stride and the groups.
    pub conv2: ConvBnAct,
    /// 1x1 to the block's output channels, no ReLU before the addition.
    pub conv3: ConvBnAct,
    /// 1x1 projection when the shape changes.
    pub downsample: Option<ConvBnAct>,
}

impl Bottleneck {
    /// Output channels are `planes * EXPANSION`.
    pub const EXPANSION: usize = 4;

    /// `[N, C, H, W] -> [N, out, H/s, W/s]` (`out = 4 planes` for ResNet's).
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        residual(
            x,
            &[&self.conv1, &self.conv2, &self.conv3],
            &self.downsample,
        )
    }
}

impl Describe for Bottleneck {
    fn describe(&self, t: &mut Tracer) -> Result<(), SummaryError> {
        describe_residual(
            t,
            &[
                ("conv1", &self.conv1),
                ("conv2", &self.conv2),
                ("conv3", &self.conv3),
            ],
            &self.downsample,
        )
    }
}
