//! The models, one module per family.

pub mod alexnet;
pub mod densenet;
pub mod googlenet;
pub mod lenet;
pub mod mlp;
pub mod nin;
pub mod resnet;
pub mod resnet9;
pub mod vgg;

use serde::{Deserialize, Serialize};

/// Which stem a ResNet or DenseNet starts with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Stem {
    /// 7x7/2 convolution then 3x3/2 max pooling: 224 -> 56, for ImageNet-sized images.
    #[default]
    Imagenet,
    /// A single 3x3/1 convolution and no pooling: keeps 32x32 CIFAR images at full resolution.
    Cifar,
}
