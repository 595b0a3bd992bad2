//! The one trait of "a network" in Ember: images in, class logits out. Every zoo model
//! implements it, a network you compose implements it (see `examples/custom_model.rs`), and
//! ember-train trains, evaluates and inspects anything that does.

use crate::taps::Taps;
use burn::module::{Module, ModuleDisplay};
use burn::tensor::Tensor;

/// A network from images `[N, C, H, W]` to logits `[N, classes]`.
pub trait Network: Module + ModuleDisplay + core::fmt::Display + 'static {
    /// Class logits.
    fn forward(&self, images: Tensor<4>) -> Tensor<2>;

    /// Class logits, handing intermediate outputs to `taps` (activation statistics, feature
    /// maps). Networks without tap points record nothing.
    fn forward_tapped(&self, images: Tensor<4>, taps: &mut Taps) -> Tensor<2> {
        let _ = taps;
        self.forward(images)
    }

    /// The network initialised from training images `[N, C, H, W]` (normalised as it sees
    /// them) before the first step, or `None` when it has no data-dependent initialisation
    /// (the default). ember-train's `loop.data_init_images` says how many images it gets.
    fn init_from_data(self, images: Tensor<4>) -> Option<Self> {
        let _ = images;
        None
    }
}

impl Network for crate::Model {
    fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        crate::Model::forward(self, images)
    }

    fn forward_tapped(&self, images: Tensor<4>, taps: &mut Taps) -> Tensor<2> {
        crate::Model::forward_tapped(self, images, taps)
    }

    fn init_from_data(self, images: Tensor<4>) -> Option<Self> {
        crate::Model::init_from_data(self, images)
    }
}

/// `impl Network for X` for a zoo network whose inherent `forward_tapped` does the work:
/// `zoo_network!(ResNet);` in the family's file.
macro_rules! zoo_network {
    ($t:ty) => {
        impl $crate::network::Network for $t {
            fn forward(&self, images: burn::tensor::Tensor<4>) -> burn::tensor::Tensor<2> {
                <$t>::forward_tapped(self, images, &mut $crate::taps::Taps::none())
            }

            fn forward_tapped(
                &self,
                images: burn::tensor::Tensor<4>,
                taps: &mut $crate::taps::Taps,
            ) -> burn::tensor::Tensor<2> {
                <$t>::forward_tapped(self, images, taps)
            }
        }
    };
}
pub(crate) use zoo_network;
