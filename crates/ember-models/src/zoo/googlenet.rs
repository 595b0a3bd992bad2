//! GoogLeNet / Inception v1 (Szegedy et al. 2014) in torchvision's layout: every convolution is
//! followed by batch norm (eps 1e-3) and ReLU, and optional auxiliary classifiers.

use crate::blocks::{ConvBnAct, ConvBnActConfig, describe_all, forward_all};
use crate::family::check_dropout;
use crate::family::{Family, Variant, family_basics};
use crate::registry::ModelError;
use crate::summary::{Describe, SummaryError, Tracer};
use crate::taps::Taps;
use crate::transfer::KeyTable;
use crate::{Activation, InitScheme};
use burn::nn::pool::{AdaptiveAvgPool2d, AdaptiveAvgPool2dConfig, MaxPool2d, MaxPool2dConfig};
use burn::nn::{Dropout, DropoutConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::prelude::*;

/// torchvision's `BasicConv2d`: conv (no bias) + BN (eps 1e-3) + ReLU.
fn basic_conv(
    cin: usize,
    cout: usize,
    k: usize,
    stride: usize,
    pad: usize,
    init: InitScheme,
    device: &Device,
) -> ConvBnAct {
    ConvBnActConfig::new([cin, cout], k)
        .with_stride(stride)
        .with_padding(pad)
        .with_bias(false)
        .with_batch_norm(true)
        .with_bn_epsilon(1e-3)
        .with_init(init)
        .init(device)
}

/// The four paths of an Inception block; their outputs are concatenated along channels.
#[derive(Config, Debug)]
pub struct InceptionConfig {
    /// Input channels.
    pub in_channels: usize,
    /// Path 1: 1x1 convolution.
    pub ch1x1: usize,
    /// Path 2: 1x1 reduction ...
    pub ch3x3_reduce: usize,
    /// ... then 3x3 convolution.
    pub ch3x3: usize,
    /// Path 3: 1x1 reduction ...
    pub ch5x5_reduce: usize,
    /// ... then the "5x5" convolution.
    pub ch5x5: usize,
    /// Path 4: 3x3 max pool then 1x1 projection.
    pub pool_proj: usize,
    /// Kernel of path 3. The paper says 5; torchvision (and its ImageNet weights and the
    /// canonical 6,624,904 parameters) use 3, so 3 is the default.
    #[config(default = 3)]
    pub branch3_kernel: usize,
    /// Weight initialisation.
    #[config(default = "InitScheme::Auto")]
    pub init: InitScheme,
}

/// An Inception block.
#[derive(Module, Debug)]
pub struct Inception {
    /// 1x1.
    pub branch1: ConvBnAct,
    /// 1x1 -> 3x3.
    pub branch2: Vec<ConvBnAct>,
    /// 1x1 -> 5x5 (3x3 in torchvision).
    pub branch3: Vec<ConvBnAct>,
    /// 3x3/1 max pool (padding 1).
    pub branch4_pool: MaxPool2d,
    /// 1x1 projection after the pool.
    pub branch4: ConvBnAct,
}

impl InceptionConfig {
    /// Output channels: the sum of the four paths.
    pub fn out_channels(&self) -> usize {
        self.ch1x1 + self.ch3x3 + self.ch5x5 + self.pool_proj
    }

    /// Initialises the block on `device`.
    pub fn init(&self, device: &Device) -> Inception {
        let c = |i, o, k, p| basic_conv(i, o, k, 1, p, self.init, device);
        let k3 = self.branch3_kernel;
        Inception {
            branch1: c(self.in_channels, self.ch1x1, 1, 0),
            branch2: vec![
                c(self.in_channels, self.ch3x3_reduce, 1, 0),
                c(self.ch3x3_reduce, self.ch3x3, 3, 1),
            ],
            branch3: vec![
                c(self.in_channels, self.ch5x5_reduce, 1, 0),
                c(self.ch5x5_reduce, self.ch5x5, k3, k3 / 2),
            ],
            branch4_pool: MaxPool2dConfig::new([3, 3])
                .with_strides([1, 1])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .with_ceil_mode(true)
                .init(),
            branch4: c(self.in_channels, self.pool_proj, 1, 0),
        }
    }
}

impl Inception {
    /// `[N, C, H, W] -> [N, out_channels, H, W]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let b1 = self.branch1.forward(x.clone());
        let b2 = forward_all(&self.branch2, x.clone());
        let b3 = forward_all(&self.branch3, x.clone());
        let b4 = self.branch4.forward(self.branch4_pool.forward(x));
        Tensor::cat(vec![b1, b2, b3, b4], 1)
    }
}

impl Describe for Inception {
    fn describe(&self, t: &mut Tracer) -> Result<(), SummaryError> {
        let input = t.signal();
        t.scoped("branch1", |t| self.branch1.describe(t))?;
        let s1 = t.signal();
        t.set_signal(input);
        t.scoped("branch2", |t| describe_all(&self.branch2, t))?;
        let s2 = t.signal();
        t.set_signal(input);
        t.scoped("branch3", |t| describe_all(&self.branch3, t))?;
        let s3 = t.signal();
        t.set_signal(input);
        t.max_pool2d("branch4_pool", &self.branch4_pool)?;
        t.scoped("branch4", |t| self.branch4.describe(t))?;
        let s4 = t.signal();
        t.concat("concat", &[s1, s2, s3, s4])
    }
}

/// An auxiliary classifier on an intermediate feature map (used during training only).
#[derive(Module, Debug)]
pub struct InceptionAux {
    /// To 4x4.
    pub pool: AdaptiveAvgPool2d,
    /// 1x1 conv to 128 channels.
    pub conv: ConvBnAct,
    /// `2048 -> 1024`.
    pub fc1: Linear,
    /// `1024 -> classes`.
    pub fc2: Linear,
    /// Dropout 0.7 before `fc2`.
    pub dropout: Dropout,
}

impl InceptionAux {
    fn new(cin: usize, classes: usize, init: InitScheme, device: &Device) -> Self {
        Self {
            pool: AdaptiveAvgPool2dConfig::new([4, 4]).init(),
            conv: basic_conv(cin, 128, 1, 1, 0, init, device),
            fc1: init.linear(Activation::Relu, LinearConfig::new(2048, 1024), device),
            fc2: init.linear(Activation::Relu, LinearConfig::new(1024, classes), device),
            dropout: DropoutConfig::new(0.7).init(),
        }
    }

    /// Class logits from an intermediate `[N, C, H, W]` map.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let x = self.conv.forward(self.pool.forward(x)).flatten::<2>(1, 3);
        let x = Activation::Relu.forward(self.fc1.forward(x));
        self.fc2.forward(self.dropout.forward(x))
    }
}

/// GoogLeNet's knobs.
#[derive(Config, Debug)]
pub struct GoogLeNetConfig {
    /// Image channels.
    #[config(default = 3)]
    pub in_channels: usize,
    /// Output classes.
    #[config(default = 1000)]
    pub num_classes: usize,
    /// Build the two auxiliary classifiers (after 4a and 4d).
    #[config(default = false)]
    pub aux_logits: bool,
    /// Dropout before the classifier.
    #[config(default = 0.2)]
    pub dropout: f64,
    /// Kernel of each Inception block's third path (see [`InceptionConfig::branch3_kernel`]).
    #[config(default = 3)]
    pub branch3_kernel: usize,
    /// Weight initialisation.
    #[config(default = "InitScheme::Auto")]
    pub init: InitScheme,
}

/// GoogLeNet.
#[derive(Module, Debug)]
pub struct GoogLeNet {
    /// 7x7/2, 64 channels.
    pub conv1: ConvBnAct,
    /// 1x1, 64 channels.
    pub conv2: ConvBnAct,
    /// 3x3, 192 channels.
    pub conv3: ConvBnAct,
    /// 3x3/2 max pool (ceil mode) between stages.
    pub pool: MaxPool2d,
    /// 2x2/2 max pool (ceil mode) before stage 5.
    pub pool4: MaxPool2d,
    /// 3a, 3b, 4a ... 4e, 5a, 5b.
    pub inception: Vec<Inception>,
    /// Auxiliary classifiers after 4a and 4d, if built.
    pub aux: Vec<InceptionAux>,
    /// Global average pooling.
    pub avgpool: AdaptiveAvgPool2d,
    /// Dropout before `fc`.
    pub dropout: Dropout,
    /// `1024 -> classes`.
    pub fc: Linear,
}

/// Inception block table: `(in, 1x1, 3x3 reduce, 3x3, 5x5 reduce, 5x5, pool proj)`.
const INCEPTION: [[usize; 7]; 9] = [
    [192, 64, 96, 128, 16, 32, 32],     // 3a
    [256, 128, 128, 192, 32, 96, 64],   // 3b
    [480, 192, 96, 208, 16, 48, 64],    // 4a
    [512, 160, 112, 224, 24, 64, 64],   // 4b
    [512, 128, 128, 256, 24, 64, 64],   // 4c
    [512, 112, 144, 288, 32, 64, 64],   // 4d
    [528, 256, 160, 320, 32, 128, 128], // 4e
    [832, 256, 160, 320, 32, 128, 128], // 5a
    [832, 384, 192, 384, 48, 128, 128], // 5b
];
/// A max pool comes after these Inception indices (3b, 4e).
const POOL_AFTER: [usize; 2] = [1, 6];
/// Auxiliary heads read the outputs of 4a and 4d.
const AUX_AFTER: [usize; 2] = [2, 5];

impl GoogLeNetConfig {
    /// Initialises the model on `device`.
    pub fn init(&self, device: &Device) -> GoogLeNet {
        let inception = INCEPTION
            .iter()
            .map(|&[i, a, b, c, d, e, f]| {
                InceptionConfig::new(i, a, b, c, d, e, f)
                    .with_branch3_kernel(self.branch3_kernel)
                    .with_init(self.init)
                    .init(device)
            })
            .collect();
        let aux = if self.aux_logits {
            AUX_AFTER
                .iter()
                .map(|&i| {
                    let cin = INCEPTION[i][1] + INCEPTION[i][3] + INCEPTION[i][5] + INCEPTION[i][6];
                    InceptionAux::new(cin, self.num_classes, self.init, device)
                })
                .collect()
        } else {
            Vec::new()
        };
        let pool = |k: usize| {
            MaxPool2dConfig::new([k, k])
                .with_strides([2, 2])
                .with_ceil_mode(true)
                .init()
        };
        GoogLeNet {
            conv1: basic_conv(self.in_channels, 64, 7, 2, 3, self.init, device),
            conv2: basic_conv(64, 64, 1, 1, 0, self.init, device),
            conv3: basic_conv(64, 192, 3, 1, 1, self.init, device),
            pool: pool(3),
            pool4: pool(2),
            inception,
            aux,
            avgpool: AdaptiveAvgPool2dConfig::new([1, 1]).init(),
            dropout: DropoutConfig::new(self.dropout).init(),
            fc: self.init.linear(
                Activation::Relu,
                LinearConfig::new(1024, self.num_classes),
                device,
            ),
        }
    }
}

impl GoogLeNet {
    /// `[N, C, H, W]` images (224x224 canonical) to `[N, classes]` logits.
    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        self.forward_with_aux(images).0
    }

    /// [`forward`](Self::forward), handing each stem layer's and Inception block's output to `taps`.
    pub fn forward_tapped(&self, images: Tensor<4>, taps: &mut Taps) -> Tensor<2> {
        self.forward_inner(images, taps).0
    }

    /// Main logits and the auxiliary heads' logits (empty unless built with `aux_logits`).
    /// The paper adds the auxiliary losses with weight 0.3 during training.
    pub fn forward_with_aux(&self, images: Tensor<4>) -> (Tensor<2>, Vec<Tensor<2>>) {
        self.forward_inner(images, &mut Taps::none())
    }

    fn forward_inner(&self, images: Tensor<4>, taps: &mut Taps) -> (Tensor<2>, Vec<Tensor<2>>) {
        let x = taps.tap("conv1", self.conv1.forward(images));
        let x = taps.tap("maxpool1", self.pool.forward(x));
        let x = taps.tap("conv2", self.conv2.forward(x));
        let x = taps.tap("conv3", self.conv3.forward(x));
        let mut x = taps.tap("maxpool2", self.pool.forward(x));
        let mut aux = Vec::new();
        for (i, block) in self.inception.iter().enumerate() {
            x = taps.scoped("inception", |taps| taps.tap(i, block.forward(x)));
            if let Some(k) = AUX_AFTER.iter().position(|&a| a == i)
                && let Some(head) = self.aux.get(k)
            {
                aux.push(head.forward(x.clone()));
            }
            if POOL_AFTER[0] == i {
                x = taps.tap("maxpool3", self.pool.forward(x));
            } else if POOL_AFTER[1] == i {
                x = taps.tap("maxpool4", self.pool4.forward(x));
            }
        }
        let x = self.avgpool.forward(x).flatten::<2>(1, 3);
        (
            taps.tap("fc", self.fc.forward(self.dropout.forward(x))),
            aux,
        )
    }
}

impl Describe for GoogLeNet {
    fn describe(&self, t: &mut Tracer) -> Result<(), SummaryError> {
        t.scoped("conv1", |t| self.conv1.describe(t))?;
        t.max_pool2d("maxpool1", &self.pool)?;
        t.scoped("conv2", |t| self.conv2.describe(t))?;
        t.scoped("conv3", |t| self.conv3.describe(t))?;
        t.max_pool2d("maxpool2", &self.pool)?;
        for (i, block) in self.inception.iter().enumerate() {
            t.scoped("inception", |t| t.scoped(i, |t| block.describe(t)))?;
            if POOL_AFTER[0] == i {
                t.max_pool2d("maxpool3", &self.pool)?;
            } else if POOL_AFTER[1] == i {
                t.max_pool2d("maxpool4", &self.pool4)?;
            }
        }
        t.adaptive_avg_pool2d("avgpool", &self.avgpool)?;
        t.flatten("flatten");
        t.linear("fc", &self.fc)
    }
}

impl Family for GoogLeNetConfig {
    family_basics!(GoogLeNet, "googlenet");

    fn variants() -> Vec<Variant<Self>> {
        vec![Variant::new(
            "googlenet",
            "GoogLeNet / Inception v1, torchvision layout",
            Self::new(),
        )]
    }

    fn validate(&self) -> Result<(), ModelError> {
        check_dropout(self.dropout)
    }

    fn head(&self) -> Vec<String> {
        if self.aux_logits {
            vec!["fc".into(), "aux.0.fc2".into(), "aux.1.fc2".into()]
        } else {
            vec!["fc".into()]
        }
    }

    /// d2l's b1..b5: the stem convolutions, then Inception 3, 4 and 5.
    fn stages(&self) -> Vec<Vec<String>> {
        vec![
            vec!["conv1".into()],
            vec!["conv2".into(), "conv3".into()],
            (0..2).map(|i| format!("inception.{i}")).collect(),
            (2..7).map(|i| format!("inception.{i}")).collect(),
            (7..9).map(|i| format!("inception.{i}")).collect(),
        ]
    }

    fn torchvision_keys(&self) -> Option<KeyTable> {
        let mut t = KeyTable::torchvision().rule(r"\.branch4\.1\.", ".branch4.");
        for (i, name) in ["3a", "3b", "4a", "4b", "4c", "4d", "4e", "5a", "5b"]
            .iter()
            .enumerate()
        {
            t = t.rule(format!(r"^inception{name}\."), format!("inception.{i}."));
        }
        Some(if self.aux_logits {
            t.rule(r"^aux1\.", "aux.0.").rule(r"^aux2\.", "aux.1.")
        } else {
            // torchvision's ImageNet file keeps the auxiliary heads even though
            // `googlenet(weights=...)` drops them after loading.
            t.ignore(r"^aux[12]\.")
        })
    }
}

crate::network::zoo_network!(GoogLeNet);
