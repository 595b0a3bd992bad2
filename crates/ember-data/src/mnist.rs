//! MNIST and Fashion-MNIST from the official IDX files.

use crate::idx::read_idx;
use crate::{ClassificationDataset, DataError, Image, ImageItem, Split};
use burn::data::dataset::{Dataset, DatasetError};
use std::path::{Path, PathBuf};

/// Which of the two 28x28 grey-scale datasets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MnistVariant {
    /// Handwritten digits (LeCun et al. 1998).
    Digits,
    /// Zalando's clothing images (Xiao et al. 2017), same format and size.
    Fashion,
}

impl MnistVariant {
    /// Dataset name for messages.
    pub fn name(self) -> &'static str {
        match self {
            MnistVariant::Digits => "MNIST",
            MnistVariant::Fashion => "Fashion-MNIST",
        }
    }

    /// Class names by label.
    pub fn classes(self) -> Vec<String> {
        let names: &[&str] = match self {
            MnistVariant::Digits => &["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"],
            MnistVariant::Fashion => &[
                "T-shirt/top",
                "Trouser",
                "Pullover",
                "Dress",
                "Coat",
                "Sandal",
                "Shirt",
                "Sneaker",
                "Bag",
                "Ankle boot",
            ],
        };
        names.iter().map(|s| s.to_string()).collect()
    }

    /// Where to download the files from.
    pub fn url(self) -> &'static str {
        match self {
            MnistVariant::Digits => "https://ossci-datasets.s3.amazonaws.com/mnist/",
            MnistVariant::Fashion => "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        }
    }
}

/// `(images, labels)` file names of a split, without `.gz`.
pub fn file_names(split: Split) -> [&'static str; 2] {
    match split {
        Split::Train => ["train-images-idx3-ubyte", "train-labels-idx1-ubyte"],
        Split::Test => ["t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"],
    }
}

/// A split of MNIST or Fashion-MNIST, held in memory as bytes (47 MB for the training set).
#[derive(Debug, Clone)]
pub struct MnistDataset {
    images: Vec<u8>,
    labels: Vec<u8>,
    rows: usize,
    cols: usize,
    classes: Vec<String>,
}

/// `name` or `name.gz` in `dir`, whichever exists.
fn find(dir: &Path, name: &str) -> Option<PathBuf> {
    [dir.join(name), dir.join(format!("{name}.gz"))]
        .into_iter()
        .find(|p| p.is_file())
}

impl MnistDataset {
    /// Loads `split` from `dir`, which holds the four official files (`.gz` or not).
    pub fn load(dir: &Path, variant: MnistVariant, split: Split) -> Result<Self, DataError> {
        let [img_name, lbl_name] = file_names(split);
        match (find(dir, img_name), find(dir, lbl_name)) {
            (Some(images), Some(labels)) => Self::from_files(&images, &labels, variant),
            (images, labels) => {
                let missing: Vec<String> = [(images, img_name), (labels, lbl_name)]
                    .into_iter()
                    .filter(|(p, _)| p.is_none())
                    .map(|(_, n)| format!("{n}.gz"))
                    .collect();
                Err(DataError::Missing {
                    dataset: variant.name().into(),
                    files: missing.join(", "),
                    dir: dir.to_path_buf(),
                    hint: format!(
                        "download them from {} (gzipped or not) into that folder",
                        variant.url()
                    ),
                })
            }
        }
    }

    /// Reads an image file and a label file.
    pub fn from_files(
        images: &Path,
        labels: &Path,
        variant: MnistVariant,
    ) -> Result<Self, DataError> {
        let img = read_idx(images)?;
        let lbl = read_idx(labels)?;
        let [n, rows, cols] = img.dims[..] else {
            return Err(DataError::BadFormat {
                path: images.to_path_buf(),
                format: "an IDX image file".into(),
                detail: format!("dimensions {:?}, expected [count, rows, cols]", img.dims),
            });
        };
        if rows == 0 || cols == 0 {
            return Err(DataError::BadFormat {
                path: images.to_path_buf(),
                format: "an IDX image file".into(),
                detail: format!("its images are {rows}x{cols} pixels; an image needs at least one"),
            });
        }
        let [m] = lbl.dims[..] else {
            return Err(DataError::BadFormat {
                path: labels.to_path_buf(),
                format: "an IDX label file".into(),
                detail: format!("dimensions {:?}, expected [count]", lbl.dims),
            });
        };
        if n != m {
            return Err(DataError::Mismatch {
                detail: format!(
                    "{} holds {n} images but {} holds {m} labels",
                    images.display(),
                    labels.display()
                ),
            });
        }
        let classes = variant.classes();
        if let Some(index) = lbl.data.iter().position(|&l| l as usize >= classes.len()) {
            return Err(DataError::LabelOutOfRange {
                path: labels.to_path_buf(),
                index,
                label: lbl.data[index] as usize,
                classes: classes.len(),
            });
        }
        Ok(Self {
            images: img.data,
            labels: lbl.data,
            rows,
            cols,
            classes,
        })
    }

    /// Keeps the first `n` items (for quick experiments and the shipped subset).
    pub fn truncate(mut self, n: usize) -> Self {
        let n = n.min(self.labels.len());
        self.labels.truncate(n);
        self.images.truncate(n * self.rows * self.cols);
        self
    }

    /// Raw bytes of item `index` (row-major) and its label.
    pub fn raw(&self, index: usize) -> Option<(&[u8], u8)> {
        let size = self.rows * self.cols;
        let label = *self.labels.get(index)?;
        Some((&self.images[index * size..(index + 1) * size], label))
    }

    /// `[rows, cols]` of every image.
    pub fn image_size(&self) -> [usize; 2] {
        [self.rows, self.cols]
    }
}

impl Dataset<ImageItem> for MnistDataset {
    fn get(&self, index: usize) -> Result<ImageItem, DatasetError> {
        let (pixels, label) = self.raw(index).ok_or_else(|| {
            DataError::Invalid(format!("index {index} out of range 0..{}", self.len()))
        })?;
        Ok(ImageItem {
            image: Image::from_planar_u8(1, self.rows, self.cols, pixels),
            label: label as usize,
        })
    }

    fn len(&self) -> usize {
        self.labels.len()
    }
}

impl ClassificationDataset for MnistDataset {
    fn classes(&self) -> &[String] {
        &self.classes
    }

    fn label(&self, index: usize) -> Option<usize> {
        self.labels.get(index).map(|&l| l as usize)
    }
}
