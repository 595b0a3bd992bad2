//! Argument groups that several subcommands share, declared once (`#[command(flatten)]`), so
//! that a flag means the same thing and has the same default and help everywhere.

use anyhow::{Result, bail};
use clap::Args;
use ember_data::{ClassificationDataset, DatasetSpec};
use ember_train::backend::BackendError;
use ember_train::eval::EvalSplit;
use ember_train::inspect::images::{SplitError, run_images};
use ember_train::{Backend, TrainError};
use std::path::{Path, PathBuf};
use std::sync::Arc;

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

/// `--dataset`, `--data-dir`, `--split`: which images a trained run is scored on.
#[derive(Args, Debug, Clone)]
pub struct ImagesArg {
    /// Dataset (default: the run's): mnist, fashion-mnist, cifar10, cifar100, cifar100-coarse
    /// or folder:PATH.
    #[arg(long)]
    pub dataset: Option<DatasetSpec>,
    /// Folder holding the dataset (default: where the run read it, for the run's own).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// test, train, or val (the run's own held-out validation images). Default: test, or val
    /// for a run on one folder (which has no test split); `viz patches` searches val.
    #[arg(long)]
    pub split: Option<EvalSplit>,
}

impl ImagesArg {
    /// The images of the run in `run`, `default` when `--split` is not given (else the
    /// library's default), through [`open_images`].
    pub fn open(
        &self,
        run: &Path,
        default: Option<EvalSplit>,
    ) -> Result<(Arc<dyn ClassificationDataset>, EvalSplit)> {
        open_images(
            run,
            self.dataset.as_ref(),
            self.data_dir.as_deref(),
            self.split.or(default),
        )
    }
}

/// The images to score a run on (the library's [`run_images`]), its notes on stderr (stdout
/// may be `--json`), and its split errors in this command's flags.
pub fn open_images(
    run: &Path,
    dataset: Option<&DatasetSpec>,
    data_dir: Option<&Path>,
    split: Option<EvalSplit>,
) -> Result<(Arc<dyn ClassificationDataset>, EvalSplit)> {
    match run_images(run, dataset, data_dir, split) {
        Ok(r) => {
            for note in &r.notes {
                eprintln!("{note}");
            }
            Ok((r.images, r.split))
        }
        Err(TrainError::Split(e)) => {
            let fix = match e {
                SplitError::NoValidation(_) => "--dataset folder:DIR",
                SplitError::ValidationOfAnotherDataset => "--split test or --split train",
                SplitError::NoTestSplit(_) => "--split val, or --dataset folder:DIR",
            };
            bail!("{e} ({fix})")
        }
        Err(e) => Err(e.into()),
    }
}
