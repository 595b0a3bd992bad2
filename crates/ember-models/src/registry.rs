//! The one registry of model names, shared by the CLI, the trainer, the tests and the docs.
//!
//! Names follow torchvision where it has the model (`alexnet`, `vgg16_bn`, `googlenet`,
//! `resnet50`, `densenet121`, `resnext50_32x4d`); CIFAR-stem variants end in `_cifar`.

use crate::summary::{Describe, Summary, SummaryError, Tracer, summarize};
use crate::taps::Taps;
use crate::zoo::Stem;
use crate::zoo::alexnet::{AlexNet, AlexNetConfig};
use crate::zoo::densenet::{DenseNet, DenseNetConfig};
use crate::zoo::googlenet::{GoogLeNet, GoogLeNetConfig};
use crate::zoo::lenet::{LeNet, LeNetConfig};
use crate::zoo::mlp::{Mlp, MlpConfig};
use crate::zoo::nin::{Nin, NinConfig};
use crate::zoo::resnet::{ResNet, ResNetConfig};
use crate::zoo::resnet9::{ResNet9, ResNet9Config};
use crate::zoo::vgg::{VGG11, VGG13, VGG16, VGG19, Vgg, VggConfig};
use burn::prelude::*;
use serde::{Deserialize, Serialize};

/// Errors of the registry.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ModelError {
    /// The name is not in the registry.
    #[error("unknown model `{name}`{hint}; `ember summary --list` lists them all")]
    UnknownModel {
        /// The name asked for.
        name: String,
        /// ", did you mean `x`?" or empty.
        hint: String,
    },
    /// The configuration cannot be built.
    #[error("invalid model configuration: {0}")]
    InvalidConfig(String),
}

/// Any zoo model's configuration; serialised with an `arch` tag, e.g.
/// `{"arch": "resnet", "layers": [2, 2, 2, 2], "stem": "cifar", ...}`.
///
/// When read, every knob left out takes its default, so a file can say just
/// `arch = "resnet"` and `stem = "cifar"`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(
    tag = "arch",
    rename_all = "snake_case",
    try_from = "serde_json::Value"
)]
#[allow(missing_docs)]
pub enum ModelConfig {
    Mlp(MlpConfig),
    Lenet(LeNetConfig),
    Alexnet(AlexNetConfig),
    Vgg(VggConfig),
    Nin(NinConfig),
    Googlenet(GoogLeNetConfig),
    Resnet(ResNetConfig),
    Resnet9(ResNet9Config),
    Densenet(DenseNetConfig),
}

/// The tagged form, without defaults (what `derive(Deserialize)` reads).
#[derive(Deserialize)]
#[serde(tag = "arch", rename_all = "snake_case")]
enum TaggedConfig {
    Mlp(MlpConfig),
    Lenet(LeNetConfig),
    Alexnet(AlexNetConfig),
    Vgg(VggConfig),
    Nin(NinConfig),
    Googlenet(GoogLeNetConfig),
    Resnet(ResNetConfig),
    Resnet9(ResNet9Config),
    Densenet(DenseNetConfig),
}

impl TryFrom<serde_json::Value> for ModelConfig {
    type Error = String;

    /// Burn's `Config` defaults are not serde defaults: fill in what the document leaves out
    /// from the architecture's default configuration, then read it.
    fn try_from(value: serde_json::Value) -> Result<Self, Self::Error> {
        let serde_json::Value::Object(given) = value else {
            return Err("a model configuration must be a table with an `arch` key".into());
        };
        let arch = given
            .get("arch")
            .and_then(|a| a.as_str())
            .ok_or("a model configuration needs `arch` (mlp, lenet, alexnet, vgg, nin, googlenet, resnet, resnet9, densenet)")?;
        let defaults = match arch {
            "mlp" => ModelConfig::Mlp(MlpConfig::new()),
            "lenet" => ModelConfig::Lenet(LeNetConfig::new()),
            "alexnet" => ModelConfig::Alexnet(AlexNetConfig::new()),
            "vgg" => ModelConfig::Vgg(VggConfig::new()),
            "nin" => ModelConfig::Nin(NinConfig::new()),
            "googlenet" => ModelConfig::Googlenet(GoogLeNetConfig::new()),
            "resnet" => ModelConfig::Resnet(ResNetConfig::new()),
            "resnet9" => ModelConfig::Resnet9(ResNet9Config::new()),
            "densenet" => ModelConfig::Densenet(DenseNetConfig::new()),
            other => {
                return Err(format!(
                    "unknown arch `{other}` (expected mlp, lenet, alexnet, vgg, nin, googlenet, resnet, resnet9 or densenet)"
                ));
            }
        };
        let mut merged = match serde_json::to_value(&defaults) {
            Ok(serde_json::Value::Object(map)) => map,
            _ => return Err("default configuration did not serialise to a table".into()),
        };
        merged.extend(given);
        let tagged: TaggedConfig = serde_json::from_value(serde_json::Value::Object(merged))
            .map_err(|e| format!("model configuration: {e}"))?;
        Ok(match tagged {
            TaggedConfig::Mlp(c) => ModelConfig::Mlp(c),
            TaggedConfig::Lenet(c) => ModelConfig::Lenet(c),
            TaggedConfig::Alexnet(c) => ModelConfig::Alexnet(c),
            TaggedConfig::Vgg(c) => ModelConfig::Vgg(c),
            TaggedConfig::Nin(c) => ModelConfig::Nin(c),
            TaggedConfig::Googlenet(c) => ModelConfig::Googlenet(c),
            TaggedConfig::Resnet(c) => ModelConfig::Resnet(c),
            TaggedConfig::Resnet9(c) => ModelConfig::Resnet9(c),
            TaggedConfig::Densenet(c) => ModelConfig::Densenet(c),
        })
    }
}

/// Any zoo model, as one Burn module.
#[derive(Module, Debug)]
#[allow(missing_docs)]
// Built once per model and moved rarely; boxing would only add indirection to every forward.
#[allow(clippy::large_enum_variant)]
pub enum Model {
    Mlp(Mlp),
    LeNet(LeNet),
    AlexNet(AlexNet),
    Vgg(Vgg),
    Nin(Nin),
    GoogLeNet(GoogLeNet),
    ResNet(ResNet),
    ResNet9(ResNet9),
    DenseNet(DenseNet),
}

impl Model {
    /// `[N, C, H, W]` images to `[N, classes]` logits.
    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        self.forward_tapped(images, &mut Taps::none())
    }

    /// [`forward`](Self::forward), handing intermediate outputs to `taps` (see [`crate::taps`]).
    pub fn forward_tapped(&self, images: Tensor<4>, taps: &mut Taps) -> Tensor<2> {
        match self {
            Model::Mlp(m) => m.forward_tapped(images, taps),
            Model::LeNet(m) => m.forward_tapped(images, taps),
            Model::AlexNet(m) => m.forward_tapped(images, taps),
            Model::Vgg(m) => m.forward_tapped(images, taps),
            Model::Nin(m) => m.forward_tapped(images, taps),
            Model::GoogLeNet(m) => m.forward_tapped(images, taps),
            Model::ResNet(m) => m.forward_tapped(images, taps),
            Model::ResNet9(m) => m.forward_tapped(images, taps),
            Model::DenseNet(m) => m.forward_tapped(images, taps),
        }
    }
}

impl Describe for Model {
    fn describe(&self, t: &mut Tracer) -> Result<(), SummaryError> {
        match self {
            Model::Mlp(m) => m.describe(t),
            Model::LeNet(m) => m.describe(t),
            Model::AlexNet(m) => m.describe(t),
            Model::Vgg(m) => m.describe(t),
            Model::Nin(m) => m.describe(t),
            Model::GoogLeNet(m) => m.describe(t),
            Model::ResNet(m) => m.describe(t),
            Model::ResNet9(m) => m.describe(t),
            Model::DenseNet(m) => m.describe(t),
        }
    }
}

/// A registry entry.
#[derive(Debug, Clone)]
pub struct ModelEntry {
    /// The name, e.g. `resnet18_cifar`.
    pub name: &'static str,
    /// One line for `--list`.
    pub about: &'static str,
    /// The canonical configuration.
    pub config: ModelConfig,
}

fn vgg(blocks: [[usize; 2]; 5], bn: bool) -> ModelConfig {
    ModelConfig::Vgg(
        VggConfig::new()
            .with_blocks(blocks.to_vec())
            .with_batch_norm(bn),
    )
}

fn resnet(config: ResNetConfig, stem: Stem) -> ModelConfig {
    let config = match stem {
        Stem::Imagenet => config,
        Stem::Cifar => config.with_stem(Stem::Cifar).with_num_classes(10),
    };
    ModelConfig::Resnet(config)
}

/// Every model of the zoo, in the order of the book.
pub fn entries() -> Vec<ModelEntry> {
    use Stem::{Cifar, Imagenet};
    let e = |name, about, config| ModelEntry {
        name,
        about,
        config,
    };
    let r18 = || ResNetConfig::basic([2, 2, 2, 2]);
    let r34 = || ResNetConfig::basic([3, 4, 6, 3]);
    let r50 = || ResNetConfig::bottleneck([3, 4, 6, 3]);
    let r101 = || ResNetConfig::bottleneck([3, 4, 23, 3]);
    let r152 = || ResNetConfig::bottleneck([3, 8, 36, 3]);
    vec![
        e(
            "softmax_regression",
            "one linear layer on the pixels (1x28x28)",
            ModelConfig::Mlp(MlpConfig::softmax_regression()),
        ),
        e(
            "mlp",
            "one hidden layer of 256 ReLU units (1x28x28)",
            ModelConfig::Mlp(MlpConfig::new()),
        ),
        e(
            "lenet5",
            "LeNet-5 classic: sigmoid, average pooling (1x28x28)",
            ModelConfig::Lenet(LeNetConfig::new()),
        ),
        e(
            "lenet5_modern",
            "LeNet-5 with ReLU and max pooling (1x28x28)",
            ModelConfig::Lenet(LeNetConfig::modern()),
        ),
        e(
            "lenet5_bn",
            "BN-LeNet: modern LeNet-5 with batch norm (1x28x28)",
            ModelConfig::Lenet(LeNetConfig::bn()),
        ),
        e(
            "alexnet",
            "AlexNet, torchvision layout (3x224x224)",
            ModelConfig::Alexnet(AlexNetConfig::new()),
        ),
        e("vgg11", "VGG-11 (configuration A)", vgg(VGG11, false)),
        e("vgg13", "VGG-13 (configuration B)", vgg(VGG13, false)),
        e("vgg16", "VGG-16 (configuration D)", vgg(VGG16, false)),
        e("vgg19", "VGG-19 (configuration E)", vgg(VGG19, false)),
        e("vgg11_bn", "VGG-11 with batch norm", vgg(VGG11, true)),
        e("vgg13_bn", "VGG-13 with batch norm", vgg(VGG13, true)),
        e("vgg16_bn", "VGG-16 with batch norm", vgg(VGG16, true)),
        e("vgg19_bn", "VGG-19 with batch norm", vgg(VGG19, true)),
        e(
            "nin",
            "Network in Network, global average pooling head",
            ModelConfig::Nin(NinConfig::new()),
        ),
        e(
            "googlenet",
            "GoogLeNet / Inception v1, torchvision layout",
            ModelConfig::Googlenet(GoogLeNetConfig::new()),
        ),
        e(
            "resnet18",
            "ResNet-18, basic blocks",
            resnet(r18(), Imagenet),
        ),
        e(
            "resnet34",
            "ResNet-34, basic blocks",
            resnet(r34(), Imagenet),
        ),
        e(
            "resnet50",
            "ResNet-50, bottlenecks",
            resnet(r50(), Imagenet),
        ),
        e(
            "resnet101",
            "ResNet-101, bottlenecks",
            resnet(r101(), Imagenet),
        ),
        e(
            "resnet152",
            "ResNet-152, bottlenecks",
            resnet(r152(), Imagenet),
        ),
        e(
            "resnet18_cifar",
            "ResNet-18, 3x3 stem, 10 classes (3x32x32)",
            resnet(r18(), Cifar),
        ),
        e(
            "resnet34_cifar",
            "ResNet-34, 3x3 stem, 10 classes (3x32x32)",
            resnet(r34(), Cifar),
        ),
        e(
            "resnet50_cifar",
            "ResNet-50, 3x3 stem, 10 classes (3x32x32)",
            resnet(r50(), Cifar),
        ),
        e(
            "resnet101_cifar",
            "ResNet-101, 3x3 stem, 10 classes (3x32x32)",
            resnet(r101(), Cifar),
        ),
        e(
            "resnet152_cifar",
            "ResNet-152, 3x3 stem, 10 classes (3x32x32)",
            resnet(r152(), Cifar),
        ),
        e(
            "resnet9",
            "ResNet-9 of the DAWNBench/Myrtle CIFAR-10 recipe, 10 classes (3x32x32)",
            ModelConfig::Resnet9(ResNet9Config::new()),
        ),
        e(
            "resnext50_32x4d",
            "ResNeXt-50, 32 groups of width 4",
            resnet(r50().with_groups(32).with_width_per_group(4), Imagenet),
        ),
        e(
            "densenet121",
            "DenseNet-121, growth 32",
            ModelConfig::Densenet(DenseNetConfig::new()),
        ),
        e(
            "densenet121_cifar",
            "DenseNet-121, 3x3 stem, 10 classes (3x32x32)",
            ModelConfig::Densenet(DenseNetConfig::new().with_stem(Cifar).with_num_classes(10)),
        ),
    ]
}

/// All registered names.
pub fn names() -> Vec<&'static str> {
    entries().into_iter().map(|e| e.name).collect()
}

/// Levenshtein distance, for "did you mean".
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != *cb))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

impl ModelConfig {
    /// The canonical configuration of a registered model.
    pub fn from_name(name: &str) -> Result<Self, ModelError> {
        let all = entries();
        if let Some(entry) = all.iter().find(|e| e.name == name) {
            return Ok(entry.config.clone());
        }
        let lower = name.to_ascii_lowercase().replace('-', "_");
        let best = all
            .iter()
            .map(|e| (edit_distance(&lower, e.name), e.name))
            .min();
        let hint = match best {
            Some((d, n)) if d <= 3 => format!(", did you mean `{n}`?"),
            _ => String::new(),
        };
        Err(ModelError::UnknownModel {
            name: name.to_string(),
            hint,
        })
    }

    /// Input channels.
    pub fn in_channels(&self) -> usize {
        match self {
            ModelConfig::Mlp(c) => c.in_channels,
            ModelConfig::Lenet(c) => c.in_channels,
            ModelConfig::Alexnet(c) => c.in_channels,
            ModelConfig::Vgg(c) => c.in_channels,
            ModelConfig::Nin(c) => c.in_channels,
            ModelConfig::Googlenet(c) => c.in_channels,
            ModelConfig::Resnet(c) => c.in_channels,
            ModelConfig::Resnet9(c) => c.in_channels,
            ModelConfig::Densenet(c) => c.in_channels,
        }
    }

    /// Output classes.
    pub fn num_classes(&self) -> usize {
        match self {
            ModelConfig::Mlp(c) => c.num_classes,
            ModelConfig::Lenet(c) => c.num_classes,
            ModelConfig::Alexnet(c) => c.num_classes,
            ModelConfig::Vgg(c) => c.num_classes,
            ModelConfig::Nin(c) => c.num_classes,
            ModelConfig::Googlenet(c) => c.num_classes,
            ModelConfig::Resnet(c) => c.num_classes,
            ModelConfig::Resnet9(c) => c.num_classes,
            ModelConfig::Densenet(c) => c.num_classes,
        }
    }

    /// Sets the number of output classes.
    pub fn with_num_classes(self, n: usize) -> Self {
        match self {
            ModelConfig::Mlp(c) => ModelConfig::Mlp(c.with_num_classes(n)),
            ModelConfig::Lenet(c) => ModelConfig::Lenet(c.with_num_classes(n)),
            ModelConfig::Alexnet(c) => ModelConfig::Alexnet(c.with_num_classes(n)),
            ModelConfig::Vgg(c) => ModelConfig::Vgg(c.with_num_classes(n)),
            ModelConfig::Nin(c) => ModelConfig::Nin(c.with_num_classes(n)),
            ModelConfig::Googlenet(c) => ModelConfig::Googlenet(c.with_num_classes(n)),
            ModelConfig::Resnet(c) => ModelConfig::Resnet(c.with_num_classes(n)),
            ModelConfig::Resnet9(c) => ModelConfig::Resnet9(c.with_num_classes(n)),
            ModelConfig::Densenet(c) => ModelConfig::Densenet(c.with_num_classes(n)),
        }
    }

    /// Fits the model to images of shape `[C, H, W]`: sets the input channels, and the
    /// input size of models whose dense layers depend on it (MLP, LeNet).
    pub fn with_input(self, [c, h, w]: [usize; 3]) -> Self {
        match self {
            ModelConfig::Mlp(m) => ModelConfig::Mlp(m.with_in_channels(c).with_input_size([h, w])),
            ModelConfig::Lenet(m) => {
                ModelConfig::Lenet(m.with_in_channels(c).with_input_size([h, w]))
            }
            ModelConfig::Alexnet(m) => ModelConfig::Alexnet(m.with_in_channels(c)),
            ModelConfig::Vgg(m) => ModelConfig::Vgg(m.with_in_channels(c)),
            ModelConfig::Nin(m) => ModelConfig::Nin(m.with_in_channels(c)),
            ModelConfig::Googlenet(m) => ModelConfig::Googlenet(m.with_in_channels(c)),
            ModelConfig::Resnet(m) => ModelConfig::Resnet(m.with_in_channels(c)),
            ModelConfig::Resnet9(m) => ModelConfig::Resnet9(m.with_in_channels(c)),
            ModelConfig::Densenet(m) => ModelConfig::Densenet(m.with_in_channels(c)),
        }
    }

    /// The input the model was designed for: `[C, H, W]`.
    pub fn canonical_input(&self) -> [usize; 3] {
        let c = self.in_channels();
        match self {
            ModelConfig::Mlp(m) => [c, m.input_size[0], m.input_size[1]],
            ModelConfig::Lenet(m) => [c, m.input_size[0], m.input_size[1]],
            ModelConfig::Resnet(m) if m.stem == Stem::Cifar => [c, 32, 32],
            ModelConfig::Resnet9(_) => [c, 32, 32],
            ModelConfig::Densenet(m) if m.stem == Stem::Cifar => [c, 32, 32],
            _ => [c, 224, 224],
        }
    }

    /// Checks the knobs that would otherwise panic inside Burn's layer constructors.
    pub fn validate(&self) -> Result<(), ModelError> {
        let bad = |msg: String| Err(ModelError::InvalidConfig(msg));
        if self.in_channels() == 0 || self.num_classes() == 0 {
            return bad("in_channels and num_classes must be at least 1".into());
        }
        match self {
            ModelConfig::Resnet(c) => {
                // The narrowest bottleneck (64 planes) has 64 * width_per_group / 64 * groups
                // channels in its 3x3 convolution, a multiple of groups once it is not empty.
                if c.base_channels == 0 {
                    return bad("base_channels must be at least 1".into());
                }
                if c.groups == 0 || c.width_per_group == 0 {
                    return bad(format!(
                        "groups ({}) and width_per_group ({}) must be at least 1",
                        c.groups, c.width_per_group
                    ));
                }
                if c.block == crate::zoo::resnet::BlockKind::Basic
                    && (c.groups != 1 || c.width_per_group != 64)
                {
                    return bad("basic blocks support only groups = 1 and width_per_group = 64 (use bottleneck blocks for ResNeXt)".into());
                }
            }
            ModelConfig::Resnet9(c) if c.base_channels == 0 => {
                return bad("base_channels must be at least 1".into());
            }
            ModelConfig::Vgg(c) if c.blocks.is_empty() => {
                return bad("a VGG needs at least one block".into());
            }
            ModelConfig::Densenet(c) if c.block_config.is_empty() || c.growth_rate == 0 => {
                return bad("a DenseNet needs at least one block and a growth rate > 0".into());
            }
            _ => {}
        }
        let dropout = match self {
            ModelConfig::Mlp(c) => c.dropout,
            ModelConfig::Alexnet(c) => c.dropout,
            ModelConfig::Vgg(c) => c.dropout,
            ModelConfig::Nin(c) => c.dropout,
            ModelConfig::Googlenet(c) => c.dropout,
            ModelConfig::Densenet(c) => c.drop_rate,
            _ => 0.0,
        };
        if !(0.0..1.0).contains(&dropout) {
            return bad(format!("dropout must be in [0, 1), got {dropout}"));
        }
        Ok(())
    }

    /// Initialises the model on `device` (parameters are materialised lazily, on first use).
    pub fn init(&self, device: &Device) -> Result<Model, ModelError> {
        self.validate()?;
        Ok(match self {
            ModelConfig::Mlp(c) => Model::Mlp(c.init(device)),
            ModelConfig::Lenet(c) => Model::LeNet(c.init(device)),
            ModelConfig::Alexnet(c) => Model::AlexNet(c.init(device)),
            ModelConfig::Vgg(c) => Model::Vgg(c.init(device)),
            ModelConfig::Nin(c) => Model::Nin(c.init(device)),
            ModelConfig::Googlenet(c) => Model::GoogLeNet(c.init(device)),
            ModelConfig::Resnet(c) => Model::ResNet(c.init(device)),
            ModelConfig::Resnet9(c) => Model::ResNet9(c.init(device)),
            ModelConfig::Densenet(c) => Model::DenseNet(c.init(device)),
        })
    }

    /// The per-layer summary for one `[C, H, W]` input (the model is fitted to it first).
    pub fn summary(
        &self,
        name: &str,
        input: [usize; 3],
        device: &Device,
    ) -> Result<Summary, SummaryOrModelError> {
        let model = self.clone().with_input(input).init(device)?;
        Ok(summarize(&model, name, input)?)
    }
}

/// Either error of [`ModelConfig::summary`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SummaryOrModelError {
    /// Bad name or configuration.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// The input does not fit.
    #[error(transparent)]
    Shape(#[from] SummaryError),
}
