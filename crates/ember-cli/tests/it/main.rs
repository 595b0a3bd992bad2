//! ember-cli's integration tests, one binary (each file under tests/ would link Burn again).

mod augment;
mod finetune;
#[cfg(feature = "mpi")]
mod mpi;
mod search;
mod summary;
mod train;
