//! One file per `ember` subcommand: its arguments and what it does.

pub mod augment;
pub mod ensemble;
pub mod eval;
pub mod export;
pub mod finetune;
pub mod predict;
pub mod search;
pub mod summary;
pub mod train;
pub mod viz;
