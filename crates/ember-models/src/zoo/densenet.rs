//! DenseNet (Huang et al. 2016) in torchvision's layout: each layer of a dense block sees the
//! concatenation of all earlier feature maps; transitions halve channels and resolution.

use super::Stem;
use crate::family::check_dropout;
use crate::family::{Family, Variant, family_basics};
use crate::registry::ModelError;
use crate::summary::{Describe, SummaryError, Tracer};
use crate::taps::Taps;
use crate::transfer::KeyTable;
use crate::{Activation, InitScheme};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{
    AdaptiveAvgPool2d, AdaptiveAvgPool2dConfig, AvgPool2d, AvgPool2dConfig, MaxPool2d,
    MaxPool2dConfig,
};
use burn::nn::{
    BatchNorm, BatchNormConfig, Dropout, DropoutConfig, Linear, LinearConfig, PaddingConfig2d,
};
use burn::prelude::*;

fn conv(cin: usize, cout: usize, k: usize, stride: usize, init: InitScheme, d: &Device) -> Conv2d {
    let p = k / 2;
    init.conv2d(
        Activation::Relu,
        Conv2dConfig::new([cin, cout], [k, k])
            .with_stride([stride, stride])
            .with_padding(PaddingConfig2d::Explicit(p, p, p, p))
            .with_bias(false),
        d,
    )
}

fn relu(x: Tensor<4>) -> Tensor<4> {
    Activation::Relu.forward(x)
}

/// One layer of a dense block, pre-activation order:
/// `BN -> ReLU -> conv 1x1 (bn_size * growth) -> BN -> ReLU -> conv 3x3 (growth)`.
#[derive(Module, Debug)]
pub struct DenseLayer {
    /// BN of the input.
    pub norm1: BatchNorm,
    /// 1x1 bottleneck.
    pub conv1: Conv2d,
    /// BN of the bottleneck.
    pub norm2: BatchNorm,
    /// 3x3 producing `growth_rate` new channels.
    pub conv2: Conv2d,
    /// Dropout of the new features.
    pub dropout: Dropout,
}

impl DenseLayer {
    /// A layer reading `cin` channels and producing `growth` new ones.
    pub fn new(
        cin: usize,
        growth: usize,
        bn_size: usize,
        drop_rate: f64,
        init: InitScheme,
        device: &Device,
    ) -> Self {
        Self {
            norm1: BatchNormConfig::new(cin).init(device),
            conv1: conv(cin, bn_size * growth, 1, 1, init, device),
            norm2: BatchNormConfig::new(bn_size * growth).init(device),
            conv2: conv(bn_size * growth, growth, 3, 1, init, device),
            dropout: DropoutConfig::new(drop_rate).init(),
        }
    }

    /// The `growth` new channels (not yet concatenated).
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let x = self.conv1.forward(relu(self.norm1.forward(x)));
        let x = self.conv2.forward(relu(self.norm2.forward(x)));
        self.dropout.forward(x)
    }
}

/// `num_layers` dense layers; the output has `cin + num_layers * growth` channels.
#[derive(Module, Debug)]
pub struct DenseBlock {
    /// The layers.
    pub layers: Vec<DenseLayer>,
}

/// Configuration of a [`DenseBlock`]: `DenseBlockConfig::new(6, 64)` is DenseNet-121's first
/// block (growth 32, bottleneck 4 x growth).
#[derive(Config, Debug)]
pub struct DenseBlockConfig {
    /// Dense layers.
    pub num_layers: usize,
    /// Input channels.
    pub in_channels: usize,
    /// New channels per layer (`k` in the paper).
    #[config(default = 32)]
    pub growth_rate: usize,
    /// The 1x1 bottleneck has `bn_size * growth_rate` channels.
    #[config(default = 4)]
    pub bn_size: usize,
    /// Dropout of each layer's new features.
    #[config(default = 0.0)]
    pub drop_rate: f64,
    /// Weight initialisation.
    #[config(default = "InitScheme::Auto")]
    pub init: InitScheme,
}

impl DenseBlockConfig {
    /// Initialises the block on `device`.
    pub fn init(&self, device: &Device) -> DenseBlock {
        let g = self.growth_rate;
        DenseBlock {
            layers: (0..self.num_layers)
                .map(|i| {
                    DenseLayer::new(
                        self.in_channels + i * g,
                        g,
                        self.bn_size,
                        self.drop_rate,
                        self.init,
                        device,
                    )
                })
                .collect(),
        }
    }
}

impl DenseBlock {
    /// `[N, C, H, W] -> [N, C + L * growth, H, W]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        // Concatenating once per layer copies O(L^2) channels; the memory-efficient variant
        // (checkpointing) is not needed at these sizes.
        self.layers.iter().fold(x, |x, layer| {
            let new = layer.forward(x.clone());
            Tensor::cat(vec![x, new], 1)
        })
    }
}

impl Describe for DenseBlock {
    fn describe(&self, t: &mut Tracer) -> Result<(), SummaryError> {
        for (i, layer) in self.layers.iter().enumerate() {
            t.scoped("layers", |t| {
                t.scoped(i, |t| {
                    let input = t.signal();
                    t.batch_norm("norm1", &layer.norm1)?;
                    t.conv2d("conv1", &layer.conv1)?;
                    t.batch_norm("norm2", &layer.norm2)?;
                    t.conv2d("conv2", &layer.conv2)?;
                    let new = t.signal();
                    t.concat("concat", &[input, new])
                })
            })?;
        }
        Ok(())
    }
}

/// Between dense blocks: `BN -> ReLU -> conv 1x1 (compress channels) -> avg pool 2x2/2`.
#[derive(Module, Debug)]
pub struct Transition {
    /// BN of the input.
    pub norm: BatchNorm,
    /// 1x1 compression.
    pub conv: Conv2d,
    /// 2x2/2 average pooling.
    pub pool: AvgPool2d,
}

impl Transition {
    /// A transition from `cin` to `cout` channels.
    pub fn new(cin: usize, cout: usize, init: InitScheme, device: &Device) -> Self {
        Self {
            norm: BatchNormConfig::new(cin).init(device),
            conv: conv(cin, cout, 1, 1, init, device),
            pool: AvgPool2dConfig::new([2, 2]).with_strides([2, 2]).init(),
        }
    }

    /// `[N, C, H, W] -> [N, cout, H/2, W/2]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.pool
            .forward(self.conv.forward(relu(self.norm.forward(x))))
    }
}

impl Describe for Transition {
    fn describe(&self, t: &mut Tracer) -> Result<(), SummaryError> {
        t.batch_norm("norm", &self.norm)?;
        t.conv2d("conv", &self.conv)?;
        t.avg_pool2d("pool", &self.pool)
    }
}

/// DenseNet's knobs (defaults: DenseNet-121).
#[derive(Config, Debug)]
pub struct DenseNetConfig {
    /// Image channels.
    #[config(default = 3)]
    pub in_channels: usize,
    /// Output classes.
    #[config(default = 1000)]
    pub num_classes: usize,
    /// New channels per dense layer (k in the paper).
    #[config(default = 32)]
    pub growth_rate: usize,
    /// Layers per dense block (121: 6, 12, 24, 16).
    #[config(default = "vec![6, 12, 24, 16]")]
    pub block_config: Vec<usize>,
    /// Channels after the stem.
    #[config(default = 64)]
    pub num_init_features: usize,
    /// Bottleneck width multiplier (the 1x1 conv has `bn_size * growth_rate` channels).
    #[config(default = 4)]
    pub bn_size: usize,
    /// Dropout after each dense layer.
    #[config(default = 0.0)]
    pub drop_rate: f64,
    /// Fraction of channels a transition keeps (theta in the paper).
    #[config(default = 0.5)]
    pub compression: f64,
    /// ImageNet or CIFAR stem.
    #[config(default = "Stem::Imagenet")]
    pub stem: Stem,
    /// Weight initialisation.
    #[config(default = "InitScheme::Auto")]
    pub init: InitScheme,
}

/// DenseNet.
#[derive(Module, Debug)]
pub struct DenseNet {
    /// 7x7/2 (ImageNet) or 3x3/1 (CIFAR) convolution.
    pub conv0: Conv2d,
    /// BN of the stem.
    pub norm0: BatchNorm,
    /// 3x3/2 max pool of the ImageNet stem.
    pub pool0: Option<MaxPool2d>,
    /// The dense blocks.
    pub blocks: Vec<DenseBlock>,
    /// The transitions (one fewer than blocks).
    pub transitions: Vec<Transition>,
    /// Final BN.
    pub norm5: BatchNorm,
    /// Global average pooling.
    pub avgpool: AdaptiveAvgPool2d,
    /// `features -> classes`.
    pub classifier: Linear,
}

impl DenseNetConfig {
    /// Initialises the model on `device`.
    pub fn init(&self, device: &Device) -> DenseNet {
        let (conv0, pool0) = match self.stem {
            Stem::Imagenet => (
                conv(
                    self.in_channels,
                    self.num_init_features,
                    7,
                    2,
                    self.init,
                    device,
                ),
                Some(
                    MaxPool2dConfig::new([3, 3])
                        .with_strides([2, 2])
                        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                        .init(),
                ),
            ),
            Stem::Cifar => (
                conv(
                    self.in_channels,
                    self.num_init_features,
                    3,
                    1,
                    self.init,
                    device,
                ),
                None,
            ),
        };
        let mut channels = self.num_init_features;
        let mut blocks = Vec::new();
        let mut transitions = Vec::new();
        for (i, &n) in self.block_config.iter().enumerate() {
            blocks.push(
                DenseBlockConfig::new(n, channels)
                    .with_growth_rate(self.growth_rate)
                    .with_bn_size(self.bn_size)
                    .with_drop_rate(self.drop_rate)
                    .with_init(self.init)
                    .init(device),
            );
            channels += n * self.growth_rate;
            if i + 1 < self.block_config.len() {
                let out = ((channels as f64 * self.compression).floor() as usize).max(1);
                transitions.push(Transition::new(channels, out, self.init, device));
                channels = out;
            }
        }
        DenseNet {
            conv0,
            norm0: BatchNormConfig::new(self.num_init_features).init(device),
            pool0,
            blocks,
            transitions,
            norm5: BatchNormConfig::new(channels).init(device),
            avgpool: AdaptiveAvgPool2dConfig::new([1, 1]).init(),
            classifier: self.init.linear(
                Activation::Relu,
                LinearConfig::new(channels, self.num_classes),
                device,
            ),
        }
    }
}

impl DenseNet {
    /// `[N, C, H, W]` images to `[N, classes]` logits.
    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        self.forward_tapped(images, &mut Taps::none())
    }

    /// [`forward`](Self::forward), handing the stem's, each dense block's and each
    /// transition's output to `taps`.
    pub fn forward_tapped(&self, images: Tensor<4>, taps: &mut Taps) -> Tensor<2> {
        let mut x = taps.tap(
            "norm0",
            relu(self.norm0.forward(self.conv0.forward(images))),
        );
        if let Some(pool) = &self.pool0 {
            x = taps.tap("pool0", pool.forward(x));
        }
        for (i, block) in self.blocks.iter().enumerate() {
            x = taps.scoped("blocks", |taps| taps.tap(i, block.forward(x)));
            if let Some(tr) = self.transitions.get(i) {
                x = taps.scoped("transitions", |taps| taps.tap(i, tr.forward(x)));
            }
        }
        let x = taps.tap("norm5", relu(self.norm5.forward(x)));
        taps.tap(
            "classifier",
            self.classifier
                .forward(self.avgpool.forward(x).flatten::<2>(1, 3)),
        )
    }
}

impl Describe for DenseNet {
    fn describe(&self, t: &mut Tracer) -> Result<(), SummaryError> {
        t.conv2d("conv0", &self.conv0)?;
        t.batch_norm("norm0", &self.norm0)?;
        if let Some(pool) = &self.pool0 {
            t.max_pool2d("pool0", pool)?;
        }
        for (i, block) in self.blocks.iter().enumerate() {
            t.scoped("blocks", |t| t.scoped(i, |t| block.describe(t)))?;
            if let Some(tr) = self.transitions.get(i) {
                t.scoped("transitions", |t| t.scoped(i, |t| tr.describe(t)))?;
            }
        }
        t.batch_norm("norm5", &self.norm5)?;
        t.adaptive_avg_pool2d("avgpool", &self.avgpool)?;
        t.flatten("flatten");
        t.linear("classifier", &self.classifier)
    }
}

impl Family for DenseNetConfig {
    family_basics!(DenseNet, "densenet");

    fn variants() -> Vec<Variant<Self>> {
        vec![
            Variant::new("densenet121", "DenseNet-121, growth 32", Self::new()),
            Variant::new(
                "densenet121_cifar",
                "DenseNet-121, 3x3 stem, 10 classes (3x32x32)",
                Self::new().with_stem(Stem::Cifar).with_num_classes(10),
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
        if self.block_config.is_empty() || self.growth_rate == 0 {
            return Err(ModelError::InvalidConfig(
                "a DenseNet needs at least one block and a growth rate > 0".into(),
            ));
        }
        check_dropout(self.drop_rate)
    }

    fn head(&self) -> Vec<String> {
        vec!["classifier".into()]
    }

    fn stages(&self) -> Vec<Vec<String>> {
        let n = self.block_config.len();
        let mut stages = vec![vec!["conv0".to_string(), "norm0".to_string()]];
        for i in 0..n {
            let mut stage = vec![format!("blocks.{i}")];
            if i + 1 < n {
                stage.push(format!("transitions.{i}"));
            } else {
                stage.push("norm5".into());
            }
            stages.push(stage);
        }
        stages
    }

    fn torchvision_keys(&self) -> Option<KeyTable> {
        // Old torchvision files spell `norm.1`; torchvision's own loader renames them too.
        let mut t = KeyTable::torchvision()
            .rule(r"(denselayer\d+)\.(norm|conv)\.([12])\.", "${1}.${2}${3}.")
            .rule(r"^features\.(conv0|norm0|norm5)\.", "${1}.");
        for (b, &n) in self.block_config.iter().enumerate() {
            for l in 0..n {
                t = t.rule(
                    format!(r"^features\.denseblock{}\.denselayer{}\.", b + 1, l + 1),
                    format!("blocks.{b}.layers.{l}."),
                );
            }
            t = t.rule(
                format!(r"^features\.transition{}\.", b + 1),
                format!("transitions.{b}."),
            );
        }
        Some(t)
    }
}

crate::network::zoo_network!(DenseNet);
