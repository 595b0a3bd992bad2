//! # ember-models
//!
//! The classic convolutional networks, written once on Burn 0.22 and run on whichever
//! [`Device`](burn::tensor::Device) they are initialised on:
//! softmax regression and MLP baselines, LeNet-5, AlexNet, VGG, NiN, GoogLeNet, ResNet,
//! ResNeXt and DenseNet.
//!
//! Every model has a serde `Config` with `in_channels`, `num_classes` and the knobs its paper
//! varies, an `init(&device)` and a `forward(images) -> logits`. The building blocks
//! ([`VggBlock`](zoo::vgg::VggBlock), [`Inception`](zoo::googlenet::Inception),
//! [`BasicBlock`](zoo::resnet::BasicBlock), [`DenseBlock`](zoo::densenet::DenseBlock), ...)
//! are public so that new networks can be composed from them.
//!
//! [`registry`] names every model (torchvision's spelling where it has one), and
//! [`summary`] describes any of them layer by layer: output shape, parameters,
//! multiply-accumulates and receptive field.

pub mod activation;
pub mod blocks;
pub mod error;
pub mod family;
pub mod init;
pub mod network;
pub mod registry;
pub mod summary;
pub mod taps;
pub mod transfer;
pub mod zoo;

pub use activation::Activation;
pub use init::InitScheme;
pub use network::Network;
pub use registry::{Model, ModelConfig, ModelError};
pub use summary::{Describe, LayerRow, ParamPath, Summary, SummaryError, count_params};
pub use taps::Taps;
