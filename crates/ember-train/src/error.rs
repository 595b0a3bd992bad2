//! What can go wrong before, during and after training, each with the fix when there is one.

use std::path::PathBuf;

/// The message of a panic's payload (`panic!` with a literal or a formatted string), for the
/// places that catch a panic and report it: a search trial, the guarded Burn logger, the CUDA
/// probe and the CLI's panic hook.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".into())
}

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
        "training stopped: the loss became {value} at epoch {epoch}; the weights of the last good epoch are in {}; lower the learning rate (--lr) or clip gradients (--grad-clip)",
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
