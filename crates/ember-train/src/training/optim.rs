//! The config's optimizer as a Burn [`ModuleOptimizer`], with PyTorch's defaults.
//!
//! Burn's defaults differ from PyTorch's in places that change results: SGD momentum has
//! dampening 0.1 (PyTorch: 0), RMSProp has momentum 0.9 (PyTorch: 0), epsilons are 1e-5
//! (PyTorch: 1e-8 for Adam and RMSProp, 1e-10 for AdaGrad). We set PyTorch's, so that
//! d2l's and torchvision's recipes carry over.
//!
//! With `no_decay_norm_bias`, weight decay skips every parameter of rank 1 (biases and
//! batch-norm scales and shifts), as timm's `param_groups_weight_decay` does: a second
//! optimizer group through Burn's [`ModuleOptimizer::with_group`], the same optimizer with
//! a decay of zero. Each `[[optim.groups]]` entry is one more such group with its own decay
//! (PyTorch's parameter groups; the last group a parameter is in wins, as in Burn).

use crate::config::{OptimizerSpec, TrainConfig};
use crate::error::Result;
use crate::training::adadelta::{AdaDelta, AdaDeltaConfig};
use burn::grad_clipping::{GradientClipping, GradientClippingConfig};
use burn::module::ParamGroup;
use burn::module::{Module, ModuleVisitor, Param, ParamId};
use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{
    AdaGradConfig, AdamConfig, AdamWConfig, ModuleOptimizer, Optimizer, RmsPropConfig, SgdConfig,
};
use burn::tensor::Tensor;

/// Builds the optimizer `config` asks for, for any module (no per-parameter groups).
pub fn build(config: &TrainConfig) -> ModuleOptimizer {
    build_groups(config, Vec::new())
}

/// Builds the optimizer `config` asks for `net`: as [`build`], plus the no-decay group of
/// its biases and normalisation parameters when `config.no_decay_norm_bias` is set and there
/// is weight decay to skip, and one group per `config.optim.groups` entry with its own decay
/// (their learning rates are the schedule's business: [`lr_groups`]).
pub fn build_for<M: Module>(config: &TrainConfig, net: &M) -> Result<ModuleOptimizer> {
    let mut groups = Vec::new();
    if config.optim.no_decay_norm_bias && config.optim.weight_decay > 0.0 {
        groups.push((ParamGroup::from_ids(no_decay_ids(net)), 0.0));
    }
    for g in &config.optim.groups {
        let decay = g.weight_decay.unwrap_or(config.optim.weight_decay);
        groups.push((ParamGroup::from_ids(group_ids(net, &g.params)?), decay));
    }
    Ok(build_groups(config, groups))
}

/// The learning-rate groups of `config.optim.groups`: each group's ids and its factor.
pub fn lr_groups<M: Module>(config: &TrainConfig, net: &M) -> Result<Vec<(ParamGroup, f64)>> {
    config
        .optim
        .groups
        .iter()
        .map(|g| {
            Ok((
                ParamGroup::from_ids(group_ids(net, &g.params)?),
                g.lr_factor,
            ))
        })
        .collect()
}

/// The ids of the parameters of `net` whose names match `pattern` (`*` wildcards); an error
/// naming some of the parameters when none does.
pub fn group_ids<M: Module>(net: &M, pattern: &str) -> Result<Vec<ParamId>> {
    let chosen = crate::training::finetune::matching_params(net, pattern)?;
    Ok(chosen.into_iter().map(|p| p.id).collect())
}

/// The parameters weight decay should skip: every float parameter of rank 1 (biases,
/// batch-norm gamma and beta; running statistics are not parameters).
pub fn no_decay_ids<M: Module>(model: &M) -> Vec<ParamId> {
    struct RankOne(Vec<ParamId>);
    impl ModuleVisitor for RankOne {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if D == 1 {
                self.0.push(param.id);
            }
        }
    }
    let mut v = RankOne(Vec::new());
    model.visit(&mut v);
    v.0
}

/// `make(weight_decay)` over every parameter, clipped, and over each group its own decay.
fn grouped<O: Optimizer>(
    make: impl Fn(f64) -> O,
    decay: f64,
    groups: Vec<(ParamGroup, f64)>,
    clip: Option<GradientClipping>,
) -> ModuleOptimizer {
    let mut m = ModuleOptimizer::from(make(decay));
    if let Some(c) = clip.clone() {
        m = m.with_grad_clipping(c);
    }
    for (group, w) in groups {
        m = m.with_group(group, make(w), clip.clone());
    }
    m
}

fn build_groups(config: &TrainConfig, groups: Vec<(ParamGroup, f64)>) -> ModuleOptimizer {
    let wd = |w: f64| (w > 0.0).then(|| WeightDecayConfig::new(w as f32));
    let clip = config
        .optim
        .grad_clip
        .map(|c| GradientClippingConfig::Norm(c as f32).init());
    let decay = config.optim.weight_decay;
    match config.optim.typed() {
        OptimizerSpec::Sgd { momentum, nesterov } => {
            let sgd = |w: f64| {
                let m = (momentum > 0.0).then(|| {
                    MomentumConfig::new()
                        .with_momentum(momentum)
                        .with_dampening(0.0)
                        .with_nesterov(nesterov)
                });
                SgdConfig::new()
                    .with_momentum(m)
                    .with_weight_decay(wd(w))
                    .build()
            };
            grouped(sgd, decay, groups, clip)
        }
        OptimizerSpec::Adagrad => {
            let make = |w: f64| {
                AdaGradConfig::new()
                    .with_epsilon(1e-10)
                    .with_weight_decay(wd(w))
                    .build()
            };
            grouped(make, decay, groups, clip)
        }
        OptimizerSpec::Rmsprop { momentum } => {
            let make = |w: f64| {
                RmsPropConfig::new()
                    .with_alpha(0.99)
                    .with_momentum(momentum as f32)
                    .with_epsilon(1e-8)
                    .with_weight_decay(wd(w))
                    .build()
            };
            grouped(make, decay, groups, clip)
        }
        OptimizerSpec::Adadelta => {
            let make = |w: f64| {
                AdaDelta::new(AdaDeltaConfig {
                    weight_decay: w,
                    ..AdaDeltaConfig::default()
                })
            };
            grouped(make, decay, groups, clip)
        }
        OptimizerSpec::Adam => {
            let make = |w: f64| {
                AdamConfig::new()
                    .with_epsilon(1e-8)
                    .with_weight_decay(wd(w))
                    .build()
            };
            grouped(make, decay, groups, clip)
        }
        OptimizerSpec::Adamw => {
            let make = |w: f64| {
                AdamWConfig::new()
                    .with_epsilon(1e-8)
                    .with_weight_decay(w as f32)
                    .build()
            };
            grouped(make, decay, groups, clip)
        }
    }
}
