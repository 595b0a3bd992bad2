//! Dataset statistics, the named training pipelines (`--augment none|cifar|imagenet`) and
//! [`Augment`], a run's choice between a preset and a list of its own.

use super::{PadMode, Transform, TransformError};
use serde::{Deserialize, Serialize};

/// Dataset statistics used by the presets' `Normalize`.
#[derive(Debug, Clone, PartialEq)]
pub struct Stats {
    /// Per-channel mean.
    pub mean: Vec<f32>,
    /// Per-channel standard deviation.
    pub std: Vec<f32>,
}

impl Stats {
    /// MNIST's training-set statistics.
    pub fn mnist() -> Self {
        Self {
            mean: vec![0.1307],
            std: vec![0.3081],
        }
    }
    /// Fashion-MNIST's.
    pub fn fashion_mnist() -> Self {
        Self {
            mean: vec![0.2860],
            std: vec![0.3530],
        }
    }
    /// CIFAR-10's.
    pub fn cifar10() -> Self {
        Self {
            mean: vec![0.4914, 0.4822, 0.4465],
            std: vec![0.2470, 0.2435, 0.2616],
        }
    }
    /// CIFAR-100's.
    pub fn cifar100() -> Self {
        Self {
            mean: vec![0.5071, 0.4865, 0.4409],
            std: vec![0.2673, 0.2564, 0.2762],
        }
    }
    /// ImageNet's (torchvision's pretrained weights expect these).
    pub fn imagenet() -> Self {
        Self {
            mean: vec![0.485, 0.456, 0.406],
            std: vec![0.229, 0.224, 0.225],
        }
    }

    /// The same statistics for images of `channels` channels: a folder of greyscale images
    /// normalised with RGB statistics gets their average (ImageNet's grey: 0.449 / 0.226); a
    /// one-channel statistic is repeated for colour images.
    pub fn for_channels(self, channels: usize) -> Self {
        let n = self.mean.len();
        if n == channels || n == 0 {
            return self;
        }
        if channels == 1 {
            let avg = |v: &[f32]| v.iter().sum::<f32>() / v.len() as f32;
            return Self {
                mean: vec![avg(&self.mean)],
                std: vec![avg(&self.std)],
            };
        }
        if n == 1 {
            return Self {
                mean: vec![self.mean[0]; channels],
                std: vec![self.std[0]; channels],
            };
        }
        self
    }
}

/// A named recipe: the training transforms and the evaluation transforms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Preset {
    /// Only `Normalize` (and the resize to the model's input where needed).
    None,
    /// Pad-4 random crop, horizontal flip, normalize (the classic CIFAR recipe).
    Cifar,
    /// Random resized crop, horizontal flip, colour jitter 0.4, normalize; evaluation resizes
    /// the shorter side to 256/224 of the output and takes the centre crop.
    Imagenet,
}

crate::named_enum!(Preset => "augmentation preset");

impl Preset {
    /// Training transforms producing `size` images normalised with `stats`.
    pub fn train(self, size: [usize; 2], stats: &Stats) -> Vec<Transform> {
        let normalize = Transform::Normalize {
            mean: stats.mean.clone(),
            std: stats.std.clone(),
        };
        match self {
            Preset::None => vec![Transform::Resize { size }, normalize],
            Preset::Cifar => vec![
                Transform::Resize { size },
                Transform::RandomCrop {
                    size,
                    padding: 4,
                    pad_mode: PadMode::Zero,
                },
                Transform::RandomHorizontalFlip { p: 0.5 },
                normalize,
            ],
            Preset::Imagenet => vec![
                Transform::random_resized_crop(size),
                Transform::RandomHorizontalFlip { p: 0.5 },
                Transform::ColorJitter {
                    brightness: 0.4,
                    contrast: 0.4,
                    saturation: 0.4,
                    hue: 0.0,
                },
                normalize,
            ],
        }
    }

    /// Evaluation transforms (deterministic).
    pub fn eval(self, size: [usize; 2], stats: &Stats) -> Vec<Transform> {
        let normalize = Transform::Normalize {
            mean: stats.mean.clone(),
            std: stats.std.clone(),
        };
        match self {
            Preset::Imagenet => {
                // torchvision's Resize(256) + CenterCrop(224), scaled to `size`: the shorter
                // side to 256/224 of the crop, the aspect ratio kept (no stretching).
                let shorter = (size[0].max(size[1]) as f64 * 256.0 / 224.0).round() as usize;
                vec![
                    Transform::ResizeShorter { size: shorter },
                    Transform::CenterCrop { size },
                    normalize,
                ]
            }
            _ => vec![Transform::Resize { size }, normalize],
        }
    }
}

/// The training augmentation of a run (`data.augment`): a named preset (`"cifar"`), or the
/// pipeline itself as a list of transforms, as torchvision's `Compose` takes them:
///
/// ```toml
/// [data]
/// augment = [
///     { type = "random_crop", size = [32, 32], padding = 4, pad_mode = "reflect" },
///     { type = "random_horizontal_flip", p = 0.5 },
///     { type = "trivial_augment_wide" },
///     { type = "normalize" },             # no mean/std: the dataset's statistics
///     { type = "cutout", size = 16 },
/// ]
/// ```
///
/// Every [`Transform`] is reachable this way, so a new transform is one variant and its
/// kernel. A list must hold a `normalize` (where it belongs: before erasing, so that the
/// erased value is the mean); its output must be the network's input size.
#[derive(Debug, Clone, PartialEq)]
pub enum Augment {
    /// A named pipeline.
    Preset(Preset),
    /// The transforms, in order.
    Pipeline(Vec<Transform>),
}

impl Default for Augment {
    fn default() -> Self {
        Augment::Preset(Preset::None)
    }
}

impl From<Preset> for Augment {
    fn from(p: Preset) -> Self {
        Augment::Preset(p)
    }
}

impl From<Vec<Transform>> for Augment {
    fn from(t: Vec<Transform>) -> Self {
        Augment::Pipeline(t)
    }
}

impl std::fmt::Display for Augment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Augment::Preset(p) => f.write_str(&crate::names::name_of(p)),
            Augment::Pipeline(t) => write!(f, "a pipeline of {} transforms", t.len()),
        }
    }
}

impl Serialize for Augment {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Augment::Preset(p) => p.serialize(s),
            Augment::Pipeline(t) => t.serialize(s),
        }
    }
}

/// By hand rather than `#[serde(untagged)]`: an untagged enum's error is "did not match any
/// variant", where a misspelt preset should list the presets and a bad list item should say
/// what is wrong with it.
impl<'de> Deserialize<'de> for Augment {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Augment;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a preset name (none, cifar, imagenet) or a list of transforms")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Augment, E> {
                crate::names::from_name::<Preset>(v, "augmentation preset")
                    .map(Augment::Preset)
                    .map_err(E::custom)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, seq: A) -> Result<Augment, A::Error> {
                Vec::<Transform>::deserialize(serde::de::value::SeqAccessDeserializer::new(seq))
                    .map(Augment::Pipeline)
            }
        }
        d.deserialize_any(Visitor)
    }
}

impl Augment {
    /// The training transforms for `size` images of a dataset with `stats`: the preset's, or
    /// the list with each `normalize` that gives no mean/std given the dataset's.
    pub fn train(&self, size: [usize; 2], stats: &Stats) -> Result<Vec<Transform>, TransformError> {
        match self {
            Augment::Preset(p) => Ok(p.train(size, stats)),
            Augment::Pipeline(list) => {
                let list: Vec<Transform> = list.iter().map(|t| with_stats(t, stats)).collect();
                if !list
                    .iter()
                    .any(|t| t.any(&|t| matches!(t, Transform::Normalize { .. })))
                {
                    return Err(TransformError::Invalid(
                        "the augmentation pipeline has no `normalize`: add { type = \
                         \"normalize\" } (the dataset's statistics) before any erasing"
                            .into(),
                    ));
                }
                Ok(list)
            }
        }
    }

    /// The evaluation transforms that go with it: the `imagenet` preset's resize and centre
    /// crop when the training pipeline crops at random scales (`random_resized_crop`), else
    /// a resize to `size` and the normalisation.
    pub fn eval(&self, size: [usize; 2], stats: &Stats) -> Vec<Transform> {
        let scales = match self {
            Augment::Preset(p) => *p == Preset::Imagenet,
            Augment::Pipeline(list) => list
                .iter()
                .any(|t| t.any(&|t| matches!(t, Transform::RandomResizedCrop { .. }))),
        };
        if scales {
            Preset::Imagenet.eval(size, stats)
        } else {
            Preset::None.eval(size, stats)
        }
    }
}

/// `t` with every `normalize` that names no statistics given `stats`.
fn with_stats(t: &Transform, stats: &Stats) -> Transform {
    match t {
        Transform::Normalize { mean, std } if mean.is_empty() && std.is_empty() => {
            Transform::Normalize {
                mean: stats.mean.clone(),
                std: stats.std.clone(),
            }
        }
        Transform::Compose { transforms } => Transform::Compose {
            transforms: transforms.iter().map(|t| with_stats(t, stats)).collect(),
        },
        Transform::RandomApply { transforms, p } => Transform::RandomApply {
            transforms: transforms.iter().map(|t| with_stats(t, stats)).collect(),
            p: *p,
        },
        other => other.clone(),
    }
}
