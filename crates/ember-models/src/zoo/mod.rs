//! The models, one module per family: each file holds a family's blocks, its configuration,
//! its network and its [`Family`](crate::family::Family) implementation (registered names,
//! head, stages, torchvision keys).
//!
//! The list below is the registry: a family is one line, in the order of the book. (Each
//! module is also declared with `pub mod` on its own: rustfmt and rust-analyzer do not see
//! modules that a macro declares.)

pub mod airbench;
pub mod alexnet;
pub mod anynet;
pub mod densenet;
pub mod googlenet;
pub mod lenet;
pub mod mlp;
pub mod nin;
pub mod resnet;
pub mod resnet9;
pub mod vgg;

crate::family::families! {
    mlp: Mlp(MlpConfig) => Mlp(Mlp),
    lenet: Lenet(LeNetConfig) => LeNet(LeNet),
    alexnet: Alexnet(AlexNetConfig) => AlexNet(AlexNet),
    vgg: Vgg(VggConfig) => Vgg(Vgg),
    nin: Nin(NinConfig) => Nin(Nin),
    googlenet: Googlenet(GoogLeNetConfig) => GoogLeNet(GoogLeNet),
    resnet: Resnet(ResNetConfig) => ResNet(ResNet),
    resnet9: Resnet9(ResNet9Config) => ResNet9(ResNet9),
    airbench: Airbench(AirbenchConfig) => Airbench(Airbench),
    densenet: Densenet(DenseNetConfig) => DenseNet(DenseNet),
    anynet: Anynet(AnyNetConfig) => AnyNet(AnyNet),
}

use serde::{Deserialize, Serialize};

impl Model {
    /// The data-dependent initialisation of the family, from training images `[N, C, H, W]`
    /// normalised as the network sees them; `None` when the family has none. airbench sets
    /// its whitening layer from them ([`airbench::Airbench::init_whitening`]).
    pub fn init_from_data(self, images: burn::tensor::Tensor<4>) -> Option<Self> {
        match self {
            Model::Airbench(net) => {
                let eps = net.whiten_eps;
                Some(Model::Airbench(net.init_whitening(images, eps)))
            }
            _ => None,
        }
    }
}

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
