//! What Ember knows about a model family, in one trait that the family's own file implements.
//!
//! A family is one configuration type (`ResNetConfig`) with the network it builds (`ResNet`).
//! Everything the rest of Ember asks of a model lives with it, as timm keeps `default_cfgs`,
//! `forward_head` and `group_matcher` beside each model and torchvision's `Weights` carry
//! their own transforms:
//!
//! | question                               | asked by                          | method |
//! |----------------------------------------|-----------------------------------|--------|
//! | which names does it register?          | `ember summary --list`, `--model` | [`Family::variants`] |
//! | which `arch` tag do config files use?  | `config.toml`, `model_options`    | [`Family::ARCH`] |
//! | can these knobs be built?              | every `init`                      | [`Family::validate`] |
//! | which images was it designed for?      | `ember summary`, fit errors       | [`Family::canonical_input`] |
//! | how does it fit other images/classes?  | training on any dataset           | [`Family::with_input`], [`Family::with_num_classes`] |
//! | which layers are the classifier head?  | fine-tuning, weight loading       | [`Family::head`] |
//! | which stages freeze, bottom up?        | `--freeze stages:K`               | [`Family::stages`] |
//! | how does torchvision name its weights? | `--layout torchvision`            | [`Family::torchvision_keys`] |
//! | what are its feature maps?             | `ember viz`, taps                 | [`Network::forward_tapped`] |
//!
//! The registry ([`crate::registry`]) is the list of families; adding one is a new file in
//! `zoo/` plus its line in that list (see `docs/architecture.md`).

use crate::error::ModelError;
use crate::network::Network;
use crate::summary::Describe;
use crate::transfer::KeyTable;
use burn::prelude::*;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// A network of the zoo: a [`Network`] (logits, feature maps on request) with a layer-by-layer
/// description for summaries. Every `Network + Describe` is one.
pub trait ZooNetwork: Network + Describe {}

impl<T: Network + Describe> ZooNetwork for T {}

/// One registered model of a family: `resnet18_cifar` is a [`ResNetConfig`](crate::zoo::resnet::ResNetConfig)
/// with basic blocks `[2, 2, 2, 2]` and the CIFAR stem.
#[derive(Debug, Clone)]
pub struct Variant<C> {
    /// The name, torchvision's spelling where it has the model.
    pub name: &'static str,
    /// One line for `ember summary --list`.
    pub about: &'static str,
    /// The canonical configuration.
    pub config: C,
}

impl<C> Variant<C> {
    /// A registered model.
    pub fn new(name: &'static str, about: &'static str, config: C) -> Self {
        Self {
            name,
            about,
            config,
        }
    }
}

/// Everything about one model family (see the [module documentation](self)).
pub trait Family: Clone + std::fmt::Debug + Serialize + DeserializeOwned {
    /// The network the configuration builds.
    type Network: ZooNetwork;

    /// The `arch` tag of configuration files: `arch = "resnet"`.
    const ARCH: &'static str;

    /// The configuration with every knob at its default (`XConfig::new()`); a configuration
    /// file's missing knobs are taken from it.
    fn defaults() -> Self;

    /// The registered models of the family, in the order of the book.
    fn variants() -> Vec<Variant<Self>>;

    /// Input channels.
    fn in_channels(&self) -> usize;

    /// Output classes.
    fn num_classes(&self) -> usize;

    /// Sets the output classes.
    fn with_num_classes(self, classes: usize) -> Self;

    /// Fits the model to `[C, H, W]` images: the input channels, and the input size where the
    /// dense layers depend on it.
    fn with_input(self, input: [usize; 3]) -> Self;

    /// The `[C, H, W]` images the model was designed for.
    fn canonical_input(&self) -> [usize; 3] {
        [self.in_channels(), 224, 224]
    }

    /// Checks the family's own knobs, those that would otherwise panic inside Burn's layer
    /// constructors (channels and classes are checked for every family).
    fn validate(&self) -> Result<(), ModelError> {
        Ok(())
    }

    /// Initialises the network on `device` (parameters are materialised lazily, on first use).
    fn init(&self, device: &Device) -> Self::Network;

    /// The prefixes of the classifier head: the layers whose shape depends on the classes.
    fn head(&self) -> Vec<String>;

    /// The feature stages from input to output, each a set of prefixes; `--freeze stages:K`
    /// freezes the first K. What is left after the stages (dense layers, the head) is never
    /// a stage.
    fn stages(&self) -> Vec<Vec<String>>;

    /// How torchvision names this model's weights, when its layout matches torchvision's.
    fn torchvision_keys(&self) -> Option<KeyTable> {
        None
    }
}

/// The check every family with dropout makes: `p` in `[0, 1)`.
pub fn check_dropout(p: f64) -> Result<(), ModelError> {
    if (0.0..1.0).contains(&p) {
        Ok(())
    } else {
        Err(ModelError::InvalidConfig(format!(
            "dropout must be in [0, 1), got {p}"
        )))
    }
}

/// `prefix.0`, `prefix.1`, ... as single-prefix stages (`blocks.0`, `blocks.1`).
pub fn numbered_stages(prefix: &str, n: usize) -> Vec<Vec<String>> {
    (0..n).map(|i| vec![format!("{prefix}.{i}")]).collect()
}

/// Named single-prefix stages (`stem`, `layer1`, ...).
pub fn named_stages(names: &[&str]) -> Vec<Vec<String>> {
    names.iter().map(|n| vec![n.to_string()]).collect()
}

/// The items of a [`Family`] impl that follow from a Burn `Config` with `in_channels` and
/// `num_classes` fields and an inherent `init`: `family_basics!(Network, "arch")` inside the
/// impl. With `input_size` as a third argument the input size is fitted too (networks whose
/// dense layers depend on it) and is the canonical input.
macro_rules! family_basics {
    ($net:ident, $arch:literal) => {
        $crate::family::family_basics!(@common $net, $arch);

        fn with_input(self, [c, _, _]: [usize; 3]) -> Self {
            self.with_in_channels(c)
        }
    };
    ($net:ident, $arch:literal, input_size) => {
        $crate::family::family_basics!(@common $net, $arch);

        fn with_input(self, [c, h, w]: [usize; 3]) -> Self {
            self.with_in_channels(c).with_input_size([h, w])
        }

        fn canonical_input(&self) -> [usize; 3] {
            [self.in_channels, self.input_size[0], self.input_size[1]]
        }
    };
    (@common $net:ident, $arch:literal) => {
        type Network = $net;
        const ARCH: &'static str = $arch;

        fn defaults() -> Self {
            Self::new()
        }

        fn in_channels(&self) -> usize {
            self.in_channels
        }

        fn num_classes(&self) -> usize {
            self.num_classes
        }

        fn with_num_classes(self, classes: usize) -> Self {
            // The inherent setter of Burn's `Config` derive.
            Self::with_num_classes(self, classes)
        }

        fn init(&self, device: &Device) -> $net {
            // The inherent constructor.
            Self::init(self, device)
        }
    };
}
pub(crate) use family_basics;

/// Declares the zoo from its list of families: one line per family,
/// `module: ConfigVariant(ConfigType) => ModelVariant(NetworkType)`, which makes the variants of [`ModelConfig`](crate::ModelConfig) (whose snake_case
/// name is the `arch` tag) and of [`Model`](crate::Model), and their dispatch to [`Family`].
/// The variant names are part of every saved run (Burn records name enum variants), so they
/// never change.
macro_rules! families {
    ($($module:ident: $cv:ident($config:ident) => $mv:ident($net:ident)),* $(,)?) => {
        /// Any zoo model's configuration; serialised with an `arch` tag, e.g.
        /// `{"arch": "resnet", "layers": [2, 2, 2, 2], "stem": "cifar", ...}`.
        ///
        /// When read, every knob left out takes its default, so a file can say just
        /// `arch = "resnet"` and `stem = "cifar"`.
        #[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
        #[serde(tag = "arch", rename_all = "snake_case", try_from = "serde_json::Value")]
        #[allow(missing_docs)]
        pub enum ModelConfig {
            $($cv($module::$config),)*
        }

        /// The tagged form, without defaults (what `derive(Deserialize)` reads).
        #[derive(serde::Deserialize)]
        #[serde(tag = "arch", rename_all = "snake_case")]
        pub(crate) enum TaggedConfig {
            $($cv($module::$config),)*
        }

        /// Any zoo model, as one Burn module.
        #[derive(burn::module::Module, Debug)]
        #[allow(missing_docs)]
        // Built once per model and moved rarely; boxing would only add indirection to every forward.
        #[allow(clippy::large_enum_variant)]
        pub enum Model {
            $($mv($module::$net),)*
        }

        impl From<TaggedConfig> for ModelConfig {
            fn from(tagged: TaggedConfig) -> Self {
                match tagged {
                    $(TaggedConfig::$cv(c) => ModelConfig::$cv(c),)*
                }
            }
        }

        impl ModelConfig {
            /// Every family's `arch` tag, in the order of the list.
            pub const ARCHS: &'static [&'static str] =
                &[$(<$module::$config as $crate::family::Family>::ARCH,)*];

            /// The default configuration of the family tagged `arch`.
            pub fn defaults_of(arch: &str) -> Option<Self> {
                $(if arch == <$module::$config as $crate::family::Family>::ARCH {
                    return Some(ModelConfig::$cv($crate::family::Family::defaults()));
                })*
                None
            }

            /// Every registered model, family by family.
            pub fn variants() -> Vec<$crate::family::Variant<ModelConfig>> {
                use $crate::family::{Family, Variant};
                let mut all = Vec::new();
                $(all.extend(<$module::$config as Family>::variants().into_iter().map(|v| {
                    Variant::new(v.name, v.about, ModelConfig::$cv(v.config))
                }));)*
                all
            }

            /// Input channels.
            pub fn in_channels(&self) -> usize {
                match self { $(ModelConfig::$cv(c) => $crate::family::Family::in_channels(c),)* }
            }

            /// Output classes.
            pub fn num_classes(&self) -> usize {
                match self { $(ModelConfig::$cv(c) => $crate::family::Family::num_classes(c),)* }
            }

            /// Sets the number of output classes.
            pub fn with_num_classes(self, n: usize) -> Self {
                match self { $(ModelConfig::$cv(c) => ModelConfig::$cv($crate::family::Family::with_num_classes(c, n)),)* }
            }

            /// Fits the model to images of shape `[C, H, W]`: sets the input channels, and the
            /// input size of models whose dense layers depend on it (MLP, LeNet).
            pub fn with_input(self, input: [usize; 3]) -> Self {
                match self { $(ModelConfig::$cv(c) => ModelConfig::$cv($crate::family::Family::with_input(c, input)),)* }
            }

            /// The input the model was designed for: `[C, H, W]`.
            pub fn canonical_input(&self) -> [usize; 3] {
                match self { $(ModelConfig::$cv(c) => $crate::family::Family::canonical_input(c),)* }
            }

            /// Checks the knobs that would otherwise panic inside Burn's layer constructors.
            pub fn validate(&self) -> Result<(), $crate::ModelError> {
                if self.in_channels() == 0 || self.num_classes() == 0 {
                    return Err($crate::ModelError::InvalidConfig(
                        "in_channels and num_classes must be at least 1".into(),
                    ));
                }
                match self { $(ModelConfig::$cv(c) => $crate::family::Family::validate(c),)* }
            }

            /// Initialises the model on `device` (parameters are materialised lazily, on first use).
            pub fn init(&self, device: &burn::tensor::Device) -> Result<Model, $crate::ModelError> {
                self.validate()?;
                Ok(match self { $(ModelConfig::$cv(c) => Model::$mv($crate::family::Family::init(c, device)),)* })
            }

            /// The prefixes of the classifier head (see [`Family::head`]).
            ///
            /// [`Family::head`]: $crate::family::Family::head
            pub fn head(&self) -> Vec<String> {
                match self { $(ModelConfig::$cv(c) => $crate::family::Family::head(c),)* }
            }

            /// The feature stages from input to output (see [`Family::stages`]).
            ///
            /// [`Family::stages`]: $crate::family::Family::stages
            pub fn stages(&self) -> Vec<Vec<String>> {
                match self { $(ModelConfig::$cv(c) => $crate::family::Family::stages(c),)* }
            }

            /// How torchvision names this model's weights, for the models whose layout matches
            /// torchvision's (ResNet, ResNeXt, VGG, AlexNet without LRN, DenseNet, GoogLeNet).
            pub fn torchvision_keys(&self) -> Option<$crate::transfer::KeyTable> {
                match self { $(ModelConfig::$cv(c) => $crate::family::Family::torchvision_keys(c),)* }
            }
        }

        impl Model {
            /// `[N, C, H, W]` images to `[N, classes]` logits.
            pub fn forward(&self, images: burn::tensor::Tensor<4>) -> burn::tensor::Tensor<2> {
                self.forward_tapped(images, &mut $crate::taps::Taps::none())
            }

            /// [`forward`](Self::forward), handing intermediate outputs to `taps` (see [`crate::taps`]).
            pub fn forward_tapped(
                &self,
                images: burn::tensor::Tensor<4>,
                taps: &mut $crate::taps::Taps,
            ) -> burn::tensor::Tensor<2> {
                match self { $(Model::$mv(m) => $crate::network::Network::forward_tapped(m, images, taps),)* }
            }
        }

        impl $crate::summary::Describe for Model {
            fn describe(
                &self,
                t: &mut $crate::summary::Tracer,
            ) -> Result<(), $crate::summary::SummaryError> {
                match self { $(Model::$mv(m) => m.describe(t),)* }
            }
        }
    };
}
pub(crate) use families;
