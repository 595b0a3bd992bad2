//! Training on Burn's Learner: the classifier around a network, optimizers and schedules,
//! fine-tuning, the NaN guard, the metrics logger and renderer, diagnostics, and the
//! [`trainer`] that runs it all from a config.

pub mod adadelta;
pub mod classifier;
pub mod diagnostics;
pub mod finetune;
pub(crate) mod guard;
pub mod logger;
pub mod optim;
pub(crate) mod renderer;
pub mod schedule;
pub mod trainer;
