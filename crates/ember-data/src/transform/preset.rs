//! Dataset statistics and the named training pipelines (`--augment none|cifar|imagenet`).

use super::{PadMode, Transform};
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
