//! # ember-train
//!
//! Burn's Learner wired for image classification: any [`Network`](classifier::Network) (every
//! zoo model, or one you compose) trained on any Ember dataset, on whichever backend is
//! compiled in, with the optimizers and schedules of the d2l book, early stopping, atomic
//! checkpoints and resume, a NaN guard, and a run directory with metrics, plots and an
//! evaluation report.
//!
//! ```no_run
//! use ember_train::config::TrainConfig;
//! // Every section has its defaults (`[data]`, `[optim]`, `[schedule]`, `[loop]`, `[runtime]`).
//! let mut config = TrainConfig { model: "lenet5_modern".into(), ..TrainConfig::default() };
//! config.data.data_dir = Some("data/mnist-subset".into());
//! config.train_loop.epochs = 2;
//! let outcome = ember_train::Training::new(&config).launch()?;
//! println!("{:?}", outcome.report.map(|r| r.accuracy));
//! # Ok::<(), ember_train::error::TrainError>(())
//! ```

/// The process's allocator wherever ember-train is linked (feature `mimalloc`, on by default):
/// mimalloc, which keeps freed memory for reuse, the way a training loop needs
/// ([`allocator`]). Turn the feature off to choose your own allocator.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: allocator::Allocator = allocator::Allocator;

pub mod adadelta;
#[cfg(feature = "mimalloc")]
pub mod allocator;
pub mod backend;
pub mod classifier;
#[cfg(feature = "cli")]
pub mod cli;
pub mod config;
pub mod diagnostics;
pub mod ensemble;
pub mod error;
pub mod eval;
pub mod finetune;
pub mod guard;
pub mod logger;
pub mod optim;
pub mod plot;
pub mod predict;
pub mod renderer;
pub mod run;
pub mod schedule;
pub mod search;
pub mod trainer;
pub mod viz;
pub mod weights;

pub use backend::{Backend, BackendError};
pub use classifier::{Classifier, Network};
pub use config::TrainConfig;
pub use error::TrainError;
pub use trainer::{TrainOutcome, Training};
