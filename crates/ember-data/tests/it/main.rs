//! ember-data's integration tests, one binary (each file under tests/ would link Burn again).

mod datasets;
mod fuzz;
mod sources;
mod transforms;
