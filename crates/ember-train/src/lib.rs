//! # ember-train
//!
//! Training support for Ember. So far: choosing the compute backend at run time
//! ([`backend`]); the Learner wiring, optimisers and schedules are tracked in the
//! training issue.

pub mod backend;

pub use backend::{Backend, BackendError};
