//! AnyNet and RegNetX (Radosavovic et al. 2020), as d2l builds them in "Designing Convolution
//! Network Architectures": a stem, stages of ResNeXt blocks (1x1, grouped 3x3, 1x1, plus the
//! shortcut) whose first block halves the resolution, and a global-average-pooling head. A
//! design space is a choice of depths, widths, group width and bottleneck ratio per stage;
//! RegNetX-32 is d2l's small member of it.

use crate::blocks::{Bottleneck, ConvBnAct, ConvBnActConfig, describe_all};
use crate::family::{Family, Variant, family_basics, numbered_stages};
use crate::registry::ModelError;
use crate::summary::{Describe, SummaryError, Tracer};
use crate::taps::Taps;
use crate::{Activation, InitScheme};
use burn::nn::pool::{AdaptiveAvgPool2d, AdaptiveAvgPool2dConfig};
use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;

/// [`ConvBnActConfig::conv_bn_relu`] with a stride and groups, with or without its ReLU.
fn conv_bn(
    channels: [usize; 2],
    k: usize,
    stride: usize,
    groups: usize,
    relu: bool,
    init: InitScheme,
) -> ConvBnActConfig {
    ConvBnActConfig::conv_bn_relu(channels, k)
        .with_stride(stride)
        .with_groups(groups)
        .with_activation(relu.then_some(Activation::Relu))
        .with_init(init)
}

/// d2l's `ResNeXtBlock` (RegNet's X block): `1x1 -> grouped 3x3 (stride) -> 1x1`, plus the
/// shortcut, from `in_channels` to `out_channels`; the 3x3 has `out_channels *
/// bottleneck_ratio` channels in groups of `group_width`. It is a [`Bottleneck`] whose widths
/// follow RegNet's rule instead of ResNet's (`planes * 4` out), so it builds one.
#[derive(Config, Debug)]
pub struct XBlockConfig {
    /// Input channels.
    pub in_channels: usize,
    /// Output channels.
    pub out_channels: usize,
    /// Stride of the grouped 3x3 convolution (and of the projection).
    #[config(default = 1)]
    pub stride: usize,
    /// Channels per group of the 3x3 convolution.
    #[config(default = 16)]
    pub group_width: usize,
    /// Bottleneck width over block width.
    #[config(default = 1.0)]
    pub bottleneck_ratio: f64,
    /// Weight initialisation.
    #[config(default = "InitScheme::Auto")]
    pub init: InitScheme,
}

impl XBlockConfig {
    /// Initialises the block on `device`.
    pub fn init(&self, device: &Device) -> Bottleneck {
        let (cin, cout, stride, init) =
            (self.in_channels, self.out_channels, self.stride, self.init);
        let b = bottleneck(cout, self.bottleneck_ratio);
        Bottleneck {
            conv1: conv_bn([cin, b], 1, 1, 1, true, init).init(device),
            conv2: conv_bn([b, b], 3, stride, b / self.group_width, true, init).init(device),
            conv3: conv_bn([b, cout], 1, 1, 1, false, init).init(device),
            downsample: (stride != 1 || cin != cout)
                .then(|| conv_bn([cin, cout], 1, stride, 1, false, init).init(device)),
        }
    }
}

/// The bottleneck width of a block with `channels` channels.
fn bottleneck(channels: usize, ratio: f64) -> usize {
    (channels as f64 * ratio).round() as usize
}

/// An AnyNet: the defaults are d2l's RegNetX-32.
#[derive(Config, Debug)]
pub struct AnyNetConfig {
    /// Image channels.
    #[config(default = 1)]
    pub in_channels: usize,
    /// Output classes.
    #[config(default = 10)]
    pub num_classes: usize,
    /// Channels of the stem (a 3x3/2 convolution).
    #[config(default = 32)]
    pub stem_channels: usize,
    /// `[depth, channels]` of each stage.
    #[config(default = "vec![[4, 32], [6, 80]]")]
    pub stages: Vec<[usize; 2]>,
    /// Channels per group of every 3x3 convolution.
    #[config(default = 16)]
    pub group_width: usize,
    /// Bottleneck width over block width.
    #[config(default = 1.0)]
    pub bottleneck_ratio: f64,
    /// Weight initialisation.
    #[config(default = "InitScheme::Auto")]
    pub init: InitScheme,
}

/// AnyNet / RegNetX.
#[derive(Module, Debug)]
pub struct AnyNet {
    /// 3x3/2 convolution, BN, ReLU.
    pub stem: ConvBnAct,
    /// The stages; each one's first block halves the resolution.
    pub stages: Vec<Vec<Bottleneck>>,
    /// Global average pooling.
    pub avgpool: AdaptiveAvgPool2d,
    /// Last stage's channels to classes.
    pub fc: Linear,
}

impl AnyNetConfig {
    /// Initialises the model on `device`.
    pub fn init(&self, device: &Device) -> AnyNet {
        let mut cin = self.stem_channels;
        let stages = self
            .stages
            .iter()
            .map(|&[depth, cout]| {
                (0..depth)
                    .map(|i| {
                        let stride = if i == 0 { 2 } else { 1 };
                        let block = XBlockConfig::new(cin, cout)
                            .with_stride(stride)
                            .with_group_width(self.group_width)
                            .with_bottleneck_ratio(self.bottleneck_ratio)
                            .with_init(self.init)
                            .init(device);
                        cin = cout;
                        block
                    })
                    .collect()
            })
            .collect();
        AnyNet {
            stem: conv_bn(
                [self.in_channels, self.stem_channels],
                3,
                2,
                1,
                true,
                self.init,
            )
            .init(device),
            stages,
            avgpool: AdaptiveAvgPool2dConfig::new([1, 1]).init(),
            fc: self.init.linear(
                Activation::Relu,
                LinearConfig::new(cin, self.num_classes),
                device,
            ),
        }
    }
}

impl AnyNet {
    /// `[N, C, H, W]` images to `[N, classes]` logits.
    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        self.forward_tapped(images, &mut Taps::none())
    }

    /// [`forward`](Self::forward), handing the stem's and every block's output to `taps`.
    pub fn forward_tapped(&self, images: Tensor<4>, taps: &mut Taps) -> Tensor<2> {
        let mut x = taps.tap("stem", self.stem.forward(images));
        for (s, stage) in self.stages.iter().enumerate() {
            x = taps.scoped("stages", |taps| {
                taps.scoped(s, |taps| {
                    stage
                        .iter()
                        .enumerate()
                        .fold(x, |x, (i, b)| taps.tap(i, b.forward(x)))
                })
            });
        }
        taps.tap(
            "fc",
            self.fc.forward(self.avgpool.forward(x).flatten::<2>(1, 3)),
        )
    }
}

impl Describe for AnyNet {
    fn describe(&self, t: &mut Tracer) -> Result<(), SummaryError> {
        t.scoped("stem", |t| self.stem.describe(t))?;
        for (s, stage) in self.stages.iter().enumerate() {
            t.scoped("stages", |t| t.scoped(s, |t| describe_all(stage, t)))?;
        }
        t.adaptive_avg_pool2d("avgpool", &self.avgpool)?;
        t.flatten("flatten");
        t.linear("fc", &self.fc)
    }
}

impl Family for AnyNetConfig {
    family_basics!(AnyNet, "anynet");

    fn variants() -> Vec<Variant<Self>> {
        vec![Variant::new(
            "regnetx32",
            "d2l's RegNetX-32: stages 4x32 and 6x80, group width 16 (1x64x64)",
            Self::new(),
        )]
    }

    fn canonical_input(&self) -> [usize; 3] {
        [self.in_channels, 64, 64]
    }

    fn validate(&self) -> Result<(), ModelError> {
        let bad = |msg: String| Err(ModelError::InvalidConfig(msg));
        if self.stem_channels == 0 || self.stages.is_empty() || self.group_width == 0 {
            return bad(
                "an AnyNet needs stem channels, at least one stage and a group width".into(),
            );
        }
        for &[depth, channels] in &self.stages {
            let b = bottleneck(channels, self.bottleneck_ratio);
            if depth == 0 || b == 0 || !b.is_multiple_of(self.group_width) {
                return bad(format!(
                    "stage [{depth}, {channels}]: needs depth >= 1 and a bottleneck width ({b}) that is a multiple of group_width ({})",
                    self.group_width
                ));
            }
        }
        Ok(())
    }

    fn head(&self) -> Vec<String> {
        vec!["fc".into()]
    }

    fn stages(&self) -> Vec<Vec<String>> {
        let mut stages = vec![vec!["stem".to_string()]];
        stages.extend(numbered_stages("stages", self.stages.len()));
        stages
    }
}

crate::network::zoo_network!(AnyNet);
