//! # Ember
//!
//! Convolutional networks made practical on [Burn](https://burn.dev): a model zoo with
//! per-layer summaries ([`models`]), datasets and augmentation ([`data`]), and training
//! ([`train`]). The same code runs on every backend compiled in (features `flex`, the
//! default, `ndarray`, `wgpu`, `cuda`).

pub use burn;
pub use ember_data as data;
pub use ember_models as models;
pub use ember_train as train;
