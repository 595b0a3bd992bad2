//! # ember-train
//!
//! Burn's Learner wired for image classification: any [`Network`] (every
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
//!
//! The process's allocator is the binary's choice: the `ember` command and the examples set
//! [`allocator::Allocator`] (mimalloc, which keeps freed memory for reuse, the way a training
//! loop needs; feature `mimalloc`) as their `#[global_allocator]`; a program of yours may too:
//!
//! ```ignore
//! #[global_allocator]
//! static ALLOCATOR: ember_train::allocator::Allocator = ember_train::allocator::Allocator;
//! ```

// The bottom floor: what everything else names.
pub mod backend;
pub mod config;
pub mod distributed;
pub mod error;
pub mod events;
pub(crate) mod panics;

// The wings, each on the floors below it; their modules keep their short paths
// (`ember_train::weights`, `ember_train::trainer`).
pub mod inspect;
pub mod store;
pub mod training;

pub use inspect::{ensemble, eval, plot, predict, viz};
pub use store::{run, weights};
pub use training::{adadelta, classifier, diagnostics, finetune, logger, optim, schedule, trainer};

// On top: search runs trainings.
pub mod search;

#[cfg(feature = "mimalloc")]
pub mod allocator;
#[cfg(feature = "cli")]
pub mod cli;

pub use backend::{Backend, BackendError};
pub use classifier::{Classifier, Network};
pub use config::TrainConfig;
pub use error::TrainError;
pub use trainer::{TrainOutcome, Training};
