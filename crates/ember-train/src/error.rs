//! What can go wrong before, during and after training, each with the fix when there is one.

use ember_data::DatasetSpec;
use std::path::PathBuf;

pub use crate::panics::panic_message;

/// An error of `ember-train`.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// Bad model name or model configuration.
    #[error(transparent)]
    Model(#[from] ember_models::ModelError),
    /// A dataset could not be read.
    #[error(transparent)]
    Data(#[from] ember_data::DataError),
    /// The backend asked for is not usable.
    #[error(transparent)]
    Backend(#[from] crate::backend::BackendError),
    /// An option is out of range or contradicts another.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A knob of the config is out of range or contradicts another: `optim.lr must be > 0`.
    /// Other paths in `msg` are written in backticks, so that the CLI can name them by flag.
    #[error("invalid configuration: `{path}` {msg}")]
    Knob {
        /// The knob's path in the config (`optim.lr`).
        path: String,
        /// What is wrong, and the fix.
        msg: String,
    },
    /// The model's input does not fit the dataset's images.
    #[error("the model does not fit the data: {0}")]
    Fit(String),
    /// A file could not be read or written.
    #[error("{}: {msg}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What went wrong, and the fix.
        msg: String,
    },
    /// The loss became NaN or infinite.
    #[error(
        "training stopped: the loss became {value} at epoch {epoch}; the weights of the last good epoch are in {}; lower the learning rate (`optim.lr`) or clip gradients (`optim.grad_clip`)",
        last_good.display()
    )]
    NonFinite {
        /// The value seen.
        value: String,
        /// The epoch it happened in.
        epoch: usize,
        /// Where the last good checkpoint is.
        last_good: PathBuf,
    },
    /// Burn's training loop reported an error.
    #[error("training failed: {0}")]
    Training(String),
    /// A split of a run cannot be scored.
    #[error(transparent)]
    Split(#[from] SplitError),
}

impl TrainError {
    /// A file error.
    pub fn file(path: impl Into<PathBuf>, msg: impl std::fmt::Display) -> Self {
        TrainError::File {
            path: path.into(),
            msg: msg.to_string(),
        }
    }
}

/// Result with [`TrainError`].
pub type Result<T, E = TrainError> = std::result::Result<T, E>;

/// Why a split of a run cannot be scored.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SplitError {
    /// The run is on one folder and held out nothing, so it has neither split to score.
    #[error(
        "the run held out no validation images and its dataset {0} is one folder (no test split); score a separate folder"
    )]
    NoValidation(DatasetSpec),
    /// The validation split means the run's own held-out images.
    #[error(
        "the validation split is the images the run held out; of another dataset score the test or train split"
    )]
    ValidationOfAnotherDataset,
    /// A run on one folder has no test split: its test and train are the whole folder.
    #[error(
        "the run's dataset {0} is one folder with no test split (its test and train would be the whole folder, training images included); score the validation images the run held out, or a separate test folder"
    )]
    NoTestSplit(DatasetSpec),
}
