//! ember-train's integration tests, one binary (each file under tests/ would link Burn again).

mod corpus;
mod custom;
mod finetune;
mod multi_device;
mod optimizers;
mod search;
mod training;
mod viz;
mod weights;
mod wgpu;
