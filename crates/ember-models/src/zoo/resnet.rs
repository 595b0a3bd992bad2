//! ResNet (He et al. 2015) and ResNeXt (Xie et al. 2016) in torchvision's layout
//! ("ResNet v1.5": the stride of a bottleneck sits on its 3x3 convolution).

use super::Stem;
/// The residual blocks live in [`crate::blocks`], beside the other blocks users compose.
pub use crate::blocks::{BasicBlock, BasicBlockConfig, Bottleneck, BottleneckConfig};
use crate::blocks::{ConvBnAct, ConvBnActConfig, describe_all};
use crate::family::named_stages;
use crate::family::{Family, Variant, family_basics};
use crate::registry::ModelError;
use crate::summary::{Describe, SummaryError, Tracer};
use crate::taps::Taps;
use crate::transfer::KeyTable;
use crate::{Activation, InitScheme};
use burn::nn::pool::{AdaptiveAvgPool2d, AdaptiveAvgPool2dConfig, MaxPool2d, MaxPool2dConfig};
use burn::nn::{Linear, LinearConfig, PaddingConfig2d};
use burn::prelude::*;
use serde::{Deserialize, Serialize};

/// Which residual block a ResNet stacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BlockKind {
    /// [`BasicBlock`] (ResNet-18/34).
    Basic,
    /// [`Bottleneck`] (ResNet-50 and deeper, ResNeXt).
    Bottleneck,
}

/// Either block.
#[derive(Module, Debug)]
#[allow(missing_docs)]
// Built once per model and moved rarely; boxing would only add indirection to every forward.
#[allow(clippy::large_enum_variant)]
pub enum ResidualBlock {
    Basic(BasicBlock),
    Bottleneck(Bottleneck),
}

impl ResidualBlock {
    /// Applies the block.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        match self {
            ResidualBlock::Basic(b) => b.forward(x),
            ResidualBlock::Bottleneck(b) => b.forward(x),
        }
    }
}

impl Describe for ResidualBlock {
    fn describe(&self, t: &mut Tracer) -> Result<(), SummaryError> {
        match self {
            ResidualBlock::Basic(b) => b.describe(t),
            ResidualBlock::Bottleneck(b) => b.describe(t),
        }
    }
}

/// A ResNet or ResNeXt.
#[derive(Config, Debug)]
pub struct ResNetConfig {
    /// Image channels.
    #[config(default = 3)]
    pub in_channels: usize,
    /// Output classes.
    #[config(default = 1000)]
    pub num_classes: usize,
    /// Block type.
    #[config(default = "BlockKind::Basic")]
    pub block: BlockKind,
    /// Blocks per stage, e.g. `[2, 2, 2, 2]` for ResNet-18, `[3, 4, 6, 3]` for ResNet-50.
    #[config(default = "[2, 2, 2, 2]")]
    pub layers: [usize; 4],
    /// ImageNet or CIFAR stem.
    #[config(default = "Stem::Imagenet")]
    pub stem: Stem,
    /// Channels of the stem and the first stage; each later stage doubles them (64 in the
    /// paper; small values make test-sized ResNets).
    #[config(default = 64)]
    pub base_channels: usize,
    /// ResNeXt cardinality (groups of the 3x3 convolution in each bottleneck).
    #[config(default = 1)]
    pub groups: usize,
    /// ResNeXt width per group (64 for plain ResNet; 4 for resnext50_32x4d).
    #[config(default = 64)]
    pub width_per_group: usize,
    /// Weight initialisation: torchvision's (Kaiming normal, fan-out, for convolutions; the
    /// framework default for the classifier).
    #[config(default = "InitScheme::Torchvision")]
    pub init: InitScheme,
    /// Start every residual branch's last batch norm with gamma = 0, so that each block
    /// begins as the identity (Goyal et al. 2017; torchvision's `zero_init_residual`).
    #[config(default = false)]
    pub zero_init_residual: bool,
}

/// ResNet.
#[derive(Module, Debug)]
pub struct ResNet {
    /// 7x7/2 (ImageNet) or 3x3/1 (CIFAR) convolution, BN, ReLU.
    pub stem: ConvBnAct,
    /// 3x3/2 max pool of the ImageNet stem.
    pub maxpool: Option<MaxPool2d>,
    /// Stage 1 (64 planes, stride 1).
    pub layer1: Vec<ResidualBlock>,
    /// Stage 2 (128 planes, stride 2).
    pub layer2: Vec<ResidualBlock>,
    /// Stage 3 (256 planes, stride 2).
    pub layer3: Vec<ResidualBlock>,
    /// Stage 4 (512 planes, stride 2).
    pub layer4: Vec<ResidualBlock>,
    /// Global average pooling.
    pub avgpool: AdaptiveAvgPool2d,
    /// `512 * expansion -> classes`.
    pub fc: Linear,
}

impl ResNetConfig {
    /// ResNet with basic blocks.
    pub fn basic(layers: [usize; 4]) -> Self {
        Self::new().with_layers(layers)
    }

    /// ResNet with bottleneck blocks.
    pub fn bottleneck(layers: [usize; 4]) -> Self {
        Self::new()
            .with_layers(layers)
            .with_block(BlockKind::Bottleneck)
    }

    /// Initialises the model on `device`.
    pub fn init(&self, device: &Device) -> ResNet {
        let b = self.base_channels;
        let (stem, maxpool) = match self.stem {
            Stem::Imagenet => (
                ConvBnActConfig::conv_bn_relu([self.in_channels, b], 7)
                    .with_stride(2)
                    .with_init(self.init)
                    .init(device),
                Some(
                    MaxPool2dConfig::new([3, 3])
                        .with_strides([2, 2])
                        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                        .init(),
                ),
            ),
            Stem::Cifar => (
                ConvBnActConfig::conv_bn_relu([self.in_channels, b], 3)
                    .with_init(self.init)
                    .init(device),
                None,
            ),
        };
        let expansion = match self.block {
            BlockKind::Basic => 1,
            BlockKind::Bottleneck => Bottleneck::EXPANSION,
        };
        let mut cin = b;
        let mut stage = |planes: usize, blocks: usize, stride: usize| {
            (0..blocks)
                .map(|i| {
                    let s = if i == 0 { stride } else { 1 };
                    let block = match self.block {
                        BlockKind::Basic => ResidualBlock::Basic(
                            BasicBlockConfig::new(cin, planes)
                                .with_stride(s)
                                .with_init(self.init)
                                .init(device),
                        ),
                        BlockKind::Bottleneck => ResidualBlock::Bottleneck(
                            BottleneckConfig::new(cin, planes)
                                .with_stride(s)
                                .with_groups(self.groups)
                                .with_width_per_group(self.width_per_group)
                                .with_init(self.init)
                                .init(device),
                        ),
                    };
                    cin = planes * expansion;
                    block
                })
                .collect::<Vec<_>>()
        };
        let mut layer1 = stage(b, self.layers[0], 1);
        let mut layer2 = stage(2 * b, self.layers[1], 2);
        let mut layer3 = stage(4 * b, self.layers[2], 2);
        let mut layer4 = stage(8 * b, self.layers[3], 2);
        if self.zero_init_residual {
            for block in layer1
                .iter_mut()
                .chain(&mut layer2)
                .chain(&mut layer3)
                .chain(&mut layer4)
            {
                let last = match block {
                    ResidualBlock::Basic(b) => &mut b.conv2,
                    ResidualBlock::Bottleneck(b) => &mut b.conv3,
                };
                if let Some(bn) = last.bn.as_mut() {
                    bn.gamma = bn.gamma.clone().init_mapper(|g| g.zeros_like());
                }
            }
        }
        ResNet {
            stem,
            maxpool,
            layer1,
            layer2,
            layer3,
            layer4,
            avgpool: AdaptiveAvgPool2dConfig::new([1, 1]).init(),
            fc: self.init.linear(
                Activation::Relu,
                LinearConfig::new(8 * b * expansion, self.num_classes),
                device,
            ),
        }
    }
}

impl ResNet {
    /// `[N, C, H, W]` images to `[N, classes]` logits.
    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        self.forward_tapped(images, &mut Taps::none())
    }

    /// [`forward`](Self::forward), handing the stem's and every residual block's output to `taps`.
    pub fn forward_tapped(&self, images: Tensor<4>, taps: &mut Taps) -> Tensor<2> {
        let mut x = taps.tap("stem", self.stem.forward(images));
        if let Some(pool) = &self.maxpool {
            x = taps.tap("maxpool", pool.forward(x));
        }
        for (name, stage) in [
            ("layer1", &self.layer1),
            ("layer2", &self.layer2),
            ("layer3", &self.layer3),
            ("layer4", &self.layer4),
        ] {
            x = taps.scoped(name, |taps| {
                stage
                    .iter()
                    .enumerate()
                    .fold(x, |x, (i, b)| taps.tap(i, b.forward(x)))
            });
        }
        taps.tap(
            "fc",
            self.fc.forward(self.avgpool.forward(x).flatten::<2>(1, 3)),
        )
    }
}

impl Describe for ResNet {
    fn describe(&self, t: &mut Tracer) -> Result<(), SummaryError> {
        t.scoped("stem", |t| self.stem.describe(t))?;
        if let Some(pool) = &self.maxpool {
            t.max_pool2d("maxpool", pool)?;
        }
        for (name, stage) in [
            ("layer1", &self.layer1),
            ("layer2", &self.layer2),
            ("layer3", &self.layer3),
            ("layer4", &self.layer4),
        ] {
            t.scoped(name, |t| describe_all(stage, t))?;
        }
        t.adaptive_avg_pool2d("avgpool", &self.avgpool)?;
        t.flatten("flatten");
        t.linear("fc", &self.fc)
    }
}

impl ResNetConfig {
    /// The CIFAR-10 form: the 3x3 stem and 10 classes.
    pub fn cifar(self) -> Self {
        self.with_stem(Stem::Cifar).with_num_classes(10)
    }
}

impl Family for ResNetConfig {
    family_basics!(ResNet, "resnet");

    fn variants() -> Vec<Variant<Self>> {
        let r18 = || Self::basic([2, 2, 2, 2]);
        let r34 = || Self::basic([3, 4, 6, 3]);
        let r50 = || Self::bottleneck([3, 4, 6, 3]);
        let r101 = || Self::bottleneck([3, 4, 23, 3]);
        let r152 = || Self::bottleneck([3, 8, 36, 3]);
        vec![
            Variant::new("resnet18", "ResNet-18, basic blocks", r18()),
            Variant::new("resnet34", "ResNet-34, basic blocks", r34()),
            Variant::new("resnet50", "ResNet-50, bottlenecks", r50()),
            Variant::new("resnet101", "ResNet-101, bottlenecks", r101()),
            Variant::new("resnet152", "ResNet-152, bottlenecks", r152()),
            Variant::new(
                "resnet18_cifar",
                "ResNet-18, 3x3 stem, 10 classes (3x32x32)",
                r18().cifar(),
            ),
            Variant::new(
                "resnet34_cifar",
                "ResNet-34, 3x3 stem, 10 classes (3x32x32)",
                r34().cifar(),
            ),
            Variant::new(
                "resnet50_cifar",
                "ResNet-50, 3x3 stem, 10 classes (3x32x32)",
                r50().cifar(),
            ),
            Variant::new(
                "resnet101_cifar",
                "ResNet-101, 3x3 stem, 10 classes (3x32x32)",
                r101().cifar(),
            ),
            Variant::new(
                "resnet152_cifar",
                "ResNet-152, 3x3 stem, 10 classes (3x32x32)",
                r152().cifar(),
            ),
            Variant::new(
                "resnext50_32x4d",
                "ResNeXt-50, 32 groups of width 4",
                r50().with_groups(32).with_width_per_group(4),
            ),
        ]
    }

    fn canonical_input(&self) -> [usize; 3] {
        match self.stem {
            Stem::Cifar => [self.in_channels, 32, 32],
            Stem::Imagenet => [self.in_channels, 224, 224],
        }
    }

    fn validate(&self) -> Result<(), ModelError> {
        let bad = |msg: String| Err(ModelError::InvalidConfig(msg));
        // The narrowest bottleneck (64 planes) has 64 * width_per_group / 64 * groups
        // channels in its 3x3 convolution, a multiple of groups once it is not empty.
        if self.base_channels == 0 {
            return bad("base_channels must be at least 1".into());
        }
        if self.groups == 0 || self.width_per_group == 0 {
            return bad(format!(
                "groups ({}) and width_per_group ({}) must be at least 1",
                self.groups, self.width_per_group
            ));
        }
        if self.block == BlockKind::Basic && (self.groups != 1 || self.width_per_group != 64) {
            return bad("basic blocks support only groups = 1 and width_per_group = 64 (use bottleneck blocks for ResNeXt)".into());
        }
        Ok(())
    }

    fn head(&self) -> Vec<String> {
        vec!["fc".into()]
    }

    fn stages(&self) -> Vec<Vec<String>> {
        named_stages(&["stem", "layer1", "layer2", "layer3", "layer4"])
    }

    /// torchvision: a conv1/bn1 stem; blocks with convK/bnK and downsample = Sequential(conv, bn).
    fn torchvision_keys(&self) -> Option<KeyTable> {
        Some(
            KeyTable::torchvision()
                .rule(r"^conv1\.", "stem.conv.")
                .rule(r"^bn1\.", "stem.bn.")
                .rule(r"^(layer[1-4]\.\d+)\.conv([1-3])\.", "${1}.conv${2}.conv.")
                .rule(r"^(layer[1-4]\.\d+)\.bn([1-3])\.", "${1}.conv${2}.bn.")
                .rule(
                    r"^(layer[1-4]\.\d+)\.downsample\.0\.",
                    "${1}.downsample.conv.",
                )
                .rule(
                    r"^(layer[1-4]\.\d+)\.downsample\.1\.",
                    "${1}.downsample.bn.",
                ),
        )
    }
}

crate::network::zoo_network!(ResNet);
