//! Everything that can be wrong with data on disk, each naming the file and the fix.

use std::path::PathBuf;

/// A data error. Each variant names the file, and the record where there is one.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The dataset's files are not where they should be (and were not downloaded).
    #[error("{dataset}: missing {files} in {dir}; {hint}")]
    Missing {
        /// Dataset name.
        dataset: String,
        /// The missing file names, comma separated.
        files: String,
        /// Where they were looked for.
        dir: PathBuf,
        /// Where to get them.
        hint: String,
    },
    /// The file ends early.
    #[error("{path} is truncated: {detail}")]
    Truncated {
        /// The file.
        path: PathBuf,
        /// What was expected and what was found.
        detail: String,
    },
    /// The file does not have the format's magic number or header.
    #[error("{path} is not {format}: {detail}")]
    BadFormat {
        /// The file.
        path: PathBuf,
        /// The expected format, e.g. "an IDX image file".
        format: String,
        /// What was found.
        detail: String,
    },
    /// A label outside `0..classes`.
    #[error(
        "{path}, record {index}: label {label} is out of range (the dataset has {classes} classes)"
    )]
    LabelOutOfRange {
        /// The file.
        path: PathBuf,
        /// Record index in the file.
        index: usize,
        /// The label read.
        label: usize,
        /// Number of classes.
        classes: usize,
    },
    /// Two files that must agree do not.
    #[error("{detail}")]
    Mismatch {
        /// What disagrees, naming both files.
        detail: String,
    },
    /// An image file that does not decode.
    #[error("{path} is not a readable image: {reason}")]
    NotAnImage {
        /// The file.
        path: PathBuf,
        /// The decoder's message.
        reason: String,
    },
    /// An image of another size or mode than the dataset needs.
    #[error("{path}: image is {found}, expected {expected}")]
    WrongImage {
        /// The file (or record).
        path: PathBuf,
        /// What was found, e.g. "3x28x30".
        found: String,
        /// What was expected.
        expected: String,
    },
    /// An ImageFolder class folder without any image.
    #[error("class folder {path} holds no image (.jpg, .jpeg, .png); remove it or add images")]
    EmptyClass {
        /// The folder.
        path: PathBuf,
    },
    /// An ImageFolder without class folders.
    #[error("{path} has no class folders: ImageFolder expects ROOT/<class>/<image>.jpg")]
    NoClasses {
        /// The root.
        path: PathBuf,
    },
    /// A download that failed (offline, refused, or a checksum mismatch).
    #[error(
        "could not download {url}: {reason}. Offline? Fetch it by hand and put {file} in {dir}"
    )]
    Download {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
        /// The file name to save it as.
        file: String,
        /// Where it belongs.
        dir: PathBuf,
    },
    /// A bad argument (split fraction, index...).
    #[error("{0}")]
    Invalid(String),
}

impl DataError {
    /// An I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        DataError::Io {
            path: path.into(),
            source,
        }
    }
}

impl From<DataError> for burn::data::dataset::DatasetError {
    fn from(e: DataError) -> Self {
        burn::data::dataset::DatasetError::new(e)
    }
}
