//! Argument groups that several subcommands share, declared once (`#[command(flatten)]`), so
//! that a flag means the same thing and has the same default and help everywhere.

use clap::Args;
use ember_train::Backend;
use ember_train::backend::BackendError;
use std::path::{Path, PathBuf};

/// `--run RUN`: a trained run to read.
#[derive(Args, Debug, Clone)]
pub struct RunArg {
    /// The run directory made by `ember train`.
    #[arg(long = "run", value_name = "RUN")]
    pub path: PathBuf,
}

impl std::ops::Deref for RunArg {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.path
    }
}

/// `--backend`: where to compute.
#[derive(Args, Debug, Clone, Copy)]
pub struct BackendArg {
    /// auto (the first compiled GPU backend that finds a hardware GPU, else flex), flex,
    /// ndarray, wgpu or cuda.
    #[arg(long = "backend", value_name = "BACKEND", default_value = "auto")]
    pub kind: Backend,
}

impl BackendArg {
    /// The chosen backend's device.
    pub fn device(&self) -> Result<burn::tensor::Device, BackendError> {
        self.kind.device()
    }
}
