//! The config's optimizer as a Burn [`ModuleOptimizer`], with PyTorch's defaults.
//!
//! Burn's defaults differ from PyTorch's in places that change results: SGD momentum has
//! dampening 0.1 (PyTorch: 0), RMSProp has momentum 0.9 (PyTorch: 0), epsilons are 1e-5
//! (PyTorch: 1e-8 for Adam and RMSProp, 1e-10 for AdaGrad). We set PyTorch's, so that
//! d2l's and torchvision's recipes carry over.

use crate::adadelta::AdaDeltaConfig;
use crate::config::{OptimizerKind, TrainConfig};
use burn::grad_clipping::GradientClippingConfig;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{
    AdaGradConfig, AdamConfig, AdamWConfig, ModuleOptimizer, RmsPropConfig, SgdConfig,
};

/// Builds the optimizer `config` asks for.
pub fn build(config: &TrainConfig) -> ModuleOptimizer {
    let wd =
        (config.weight_decay > 0.0).then(|| WeightDecayConfig::new(config.weight_decay as f32));
    let clip = config
        .grad_clip
        .map(|c| GradientClippingConfig::Norm(c as f32));
    let momentum = config.momentum();
    match config.optimizer {
        OptimizerKind::Sgd | OptimizerKind::Momentum | OptimizerKind::Nesterov => {
            let nesterov = config.nesterov || config.optimizer == OptimizerKind::Nesterov;
            let m = (momentum > 0.0).then(|| {
                MomentumConfig::new()
                    .with_momentum(momentum)
                    .with_dampening(0.0)
                    .with_nesterov(nesterov)
            });
            SgdConfig::new()
                .with_momentum(m)
                .with_weight_decay(wd)
                .with_gradient_clipping(clip)
                .init()
        }
        OptimizerKind::Adagrad => AdaGradConfig::new()
            .with_epsilon(1e-10)
            .with_weight_decay(wd)
            .with_grad_clipping(clip)
            .init(),
        OptimizerKind::Rmsprop => RmsPropConfig::new()
            .with_alpha(0.99)
            .with_momentum(momentum as f32)
            .with_epsilon(1e-8)
            .with_weight_decay(wd)
            .with_grad_clipping(clip)
            .init(),
        OptimizerKind::Adadelta => AdaDeltaConfig {
            weight_decay: config.weight_decay,
            grad_clip: config.grad_clip,
            ..AdaDeltaConfig::default()
        }
        .init(),
        OptimizerKind::Adam => AdamConfig::new()
            .with_epsilon(1e-8)
            .with_weight_decay(wd)
            .with_grad_clipping(clip)
            .init(),
        OptimizerKind::Adamw => AdamWConfig::new()
            .with_epsilon(1e-8)
            .with_weight_decay(config.weight_decay as f32)
            .with_grad_clipping(clip)
            .init(),
    }
}
