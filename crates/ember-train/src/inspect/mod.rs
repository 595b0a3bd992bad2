//! Looking at trained runs: evaluation reports, predictions, ensembles, pictures of the
//! network and plots.

pub mod ensemble;
pub mod eval;
pub mod images;
pub mod plot;
pub mod predict;
pub mod viz;
