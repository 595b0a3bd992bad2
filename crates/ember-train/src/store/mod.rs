//! What a run leaves on disk: its directory ([`run`]: config, description, checkpoints,
//! metrics, atomic writes) and weights files in every format Ember reads and writes
//! ([`weights`]).

pub mod run;
pub mod weights;
