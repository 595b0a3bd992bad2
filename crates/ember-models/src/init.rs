//! Weight initialisation schemes, chosen per model from its activation.
//!
//! * Xavier/Glorot keeps the variance of activations and gradients constant through a layer
//!   when the activation is roughly linear around 0 (sigmoid, tanh):
//!   `W ~ U(-a, a)`, `a = sqrt(6 / (fan_in + fan_out))`.
//! * Kaiming/He compensates for ReLU zeroing half its inputs: `W ~ N(0, 2 / fan_in)`.
//! * `Torch` is PyTorch's (and Burn's) layer default, `U(-1/sqrt(fan_in), 1/sqrt(fan_in))`.
//! * `Torchvision` is what torchvision's ResNets do: Kaiming normal with fan-out for
//!   convolutions, `W ~ N(0, 2 / (C_out kh kw))` (PyTorch's fan-out ignores groups), and
//!   PyTorch's default for linear layers. With batch norm after every convolution the scale of
//!   a convolution's weights does not change the function, only the effective learning rate
//!   (`lr / |W|^2`); fan-out gives 3x3 layers the same weight norm as torchvision, so its
//!   recipes' learning rates carry over.
//!
//! Kaiming and Xavier set biases to zero, as d2l and torchvision do; `Torch` keeps the
//! default bias initialisation.

use crate::Activation;
use burn::module::Param;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Initializer, Linear, LinearConfig};
use burn::prelude::*;
use serde::{Deserialize, Serialize};

/// Which initialisation a model uses for its convolution and linear weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum InitScheme {
    /// Kaiming for ReLU-like activations, Xavier for sigmoid and tanh.
    #[default]
    Auto,
    /// He et al. 2015, normal, fan-in, gain sqrt(2).
    Kaiming,
    /// Glorot & Bengio 2010, uniform, gain 1.
    Xavier,
    /// The framework default (uniform, bound 1/sqrt(fan_in)).
    Torch,
    /// torchvision's ResNet init: Kaiming normal, fan-out, for convolutions; the framework
    /// default for linear layers.
    Torchvision,
}

impl InitScheme {
    /// The concrete scheme for a network using `activation`.
    pub fn resolve(self, activation: Activation) -> InitScheme {
        match self {
            InitScheme::Auto if activation.is_rectifier() => InitScheme::Kaiming,
            InitScheme::Auto => InitScheme::Xavier,
            other => other,
        }
    }

    /// The Burn initializer of the weights; `None` keeps the layer's default.
    pub fn initializer(self, activation: Activation) -> Option<Initializer> {
        match self.resolve(activation) {
            InitScheme::Kaiming => Some(Initializer::KaimingNormal {
                gain: 2f64.sqrt(),
                fan_out_only: false,
            }),
            InitScheme::Xavier => Some(Initializer::XavierUniform { gain: 1.0 }),
            InitScheme::Torch | InitScheme::Torchvision | InitScheme::Auto => None,
        }
    }

    /// Initialises a convolution with this scheme (biases zeroed unless `Torch`).
    pub fn conv2d(self, activation: Activation, config: Conv2dConfig, device: &Device) -> Conv2d {
        if self == InitScheme::Torchvision {
            // std = sqrt(2 / fan_out), fan_out = C_out * kh * kw as PyTorch counts it.
            let fan_out = config.channels[1] * config.kernel_size[0] * config.kernel_size[1];
            let std = (2.0 / fan_out.max(1) as f64).sqrt();
            let mut conv = config
                .with_initializer(Initializer::Normal { mean: 0.0, std })
                .init(device);
            conv.bias = conv.bias.map(zeroed);
            return conv;
        }
        match self.initializer(activation) {
            Some(init) => {
                let mut conv = config.with_initializer(init).init(device);
                conv.bias = conv.bias.map(zeroed);
                conv
            }
            None => config.init(device),
        }
    }

    /// Initialises a linear layer with this scheme (biases zeroed unless `Torch`).
    pub fn linear(self, activation: Activation, config: LinearConfig, device: &Device) -> Linear {
        match self.initializer(activation) {
            Some(init) => {
                let mut linear = config.with_initializer(init).init(device);
                linear.bias = linear.bias.map(zeroed);
                linear
            }
            None => config.init(device),
        }
    }
}

/// Burn gives a bias the weight's initializer; we want zeros. The mapper runs when the lazy
/// parameter is first materialised, so no tensor is allocated here.
fn zeroed(bias: Param<Tensor<1>>) -> Param<Tensor<1>> {
    bias.init_mapper(|t| t.zeros_like())
}

/// Sets the first `C_in` filters of a convolution to the identity, as PyTorch's `dirac_` on
/// `weight[:C_in]` does: filter `i` is 1 at the kernel's centre on input channel `i` and 0
/// everywhere else, so at initialisation the layer passes its input through on those output
/// channels while the others keep their random initialisation. airbench initialises every
/// 3x3 layer this way (Jordan 2024, "94% on CIFAR-10 in 3.29 seconds on a single GPU").
///
/// Ungrouped convolutions with an odd kernel; others are returned unchanged.
pub fn identity_init(mut conv: Conv2d) -> Conv2d {
    let [_, _, kh, kw] = conv.weight.lazy_shape().dims();
    if conv.groups != 1 || kh % 2 == 0 || kw % 2 == 0 {
        return conv;
    }
    conv.weight = conv.weight.init_mapper(|w: Tensor<4>| {
        let [c_out, c_in, kh, kw] = w.dims();
        let n = c_in.min(c_out);
        let mut dirac = vec![0f32; n * c_in * kh * kw];
        for i in 0..n {
            dirac[((i * c_in + i) * kh + kh / 2) * kw + kw / 2] = 1.0;
        }
        let dirac = Tensor::<4>::from_data(TensorData::new(dirac, [n, c_in, kh, kw]), &w.device());
        w.slice_assign([0..n, 0..c_in, 0..kh, 0..kw], dirac)
    });
    conv
}

/// Whitening filters from images (airbench's first layer, after Coates & Ng's ZCA-like
/// patch whitening): the `d x d` second-moment matrix `Sigma = X^T X / n` of every
/// `k x k` patch `x` (a row of `X`, `d = C k k` values, channel-major as a convolution's
/// weight is laid out), its eigen-decomposition `Sigma = V diag(lambda) V^T`, and the `2d`
/// filters `[V / sqrt(lambda + eps); -V / sqrt(lambda + eps)]`, eigenvectors as rows in
/// descending order of `lambda`. A convolution with the first `d` filters maps patches to
/// coordinates of (nearly) unit variance along each principal direction; the negated copies
/// let a following GELU keep both signs.
///
/// `images` are `[N, C, H, W]`, already normalised as the network will see them. Returns
/// `[2d, C, k, k]`. The eigen-decomposition is Burn's SVD (for a symmetric positive
/// semi-definite matrix its singular vectors are the eigenvectors, its singular values the
/// eigenvalues), computed on the host.
pub fn whitening_filters(images: Tensor<4>, kernel: usize, eps: f64) -> Tensor<4> {
    use burn::tensor::module::unfold4d;
    use burn::tensor::ops::UnfoldOptions;
    // No gradient flows through the statistics, and Burn's SVD runs on plain backends
    // only: compute without autodiff, hand the result back on the images' kind of device.
    let autodiff = images.is_autodiff();
    let images = images.without_autodiff();
    let [n, c, _, _] = images.dims();
    let d = c * kernel * kernel;
    // [N, d, L] -> [N L, d]: one patch a row.
    let patches = unfold4d(
        images,
        [kernel, kernel],
        UnfoldOptions::new([1, 1], [0, 0], [1, 1]),
    );
    let l = patches.dims()[2];
    let x = patches.swap_dims(1, 2).reshape([n * l, d]);
    let sigma = x.clone().transpose().matmul(x) / (n * l).max(1) as f64;
    let (u, lambda, _) = burn::linalg::svd::<2, 1>(sigma, 200);
    let scale = (lambda + eps).sqrt().recip();
    let filters = u.transpose() * scale.unsqueeze_dim::<2>(1);
    let filters =
        Tensor::cat(vec![filters.clone(), filters.neg()], 0).reshape([2 * d, c, kernel, kernel]);
    if autodiff {
        filters.autodiff()
    } else {
        filters
    }
}
