//! The data of a run: the dataset of the config, split into training, validation and test
//! images, with the transforms each split gets.

use crate::config::{FlipMode, TrainConfig};
use crate::error::{Result, TrainError};
use burn::data::dataset::Dataset;
use ember_data::split::{ClassSubset, Subset, train_val_split};
use ember_data::transform::{Preset, Transform};
use ember_data::{ClassificationDataset, ImageItem, Split};
use std::sync::Arc;

/// The data of a run: the splits, their class names and the transforms.
pub struct RunData {
    /// Training images.
    pub train: Arc<dyn ClassificationDataset>,
    /// Validation images (empty without a validation split).
    pub valid: Arc<dyn ClassificationDataset>,
    /// The official test split, when the dataset has one.
    pub test: Option<Arc<dyn ClassificationDataset>>,
    /// Class names.
    pub classes: Vec<String>,
    /// `[C, H, W]` of the images the model sees.
    pub input: [usize; 3],
    /// Training transforms (augmentation + normalisation).
    pub train_transforms: Vec<Transform>,
    /// Evaluation transforms (deterministic).
    pub eval_transforms: Vec<Transform>,
}

/// Opens the dataset of `config` and splits it.
pub fn load_data(config: &TrainConfig) -> Result<RunData> {
    let spec = &config.data.dataset;
    let dir = config.data.data_dir.as_deref();
    let only = |ds: Arc<dyn ClassificationDataset>| -> Result<Arc<dyn ClassificationDataset>> {
        Ok(match &config.data.classes {
            Some(c) => Arc::new(ClassSubset::new(ds, c, None)?),
            None => ds,
        })
    };
    let full = only(spec.open(dir, Split::Train)?)?;
    let classes = full.classes().to_vec();
    let (train, valid): (
        Arc<dyn ClassificationDataset>,
        Arc<dyn ClassificationDataset>,
    ) = if config.data.val_split > 0.0 {
        let (t, v) = train_val_split(full, config.data.val_split, config.train_loop.seed, true)?;
        (Arc::new(t), Arc::new(v))
    } else {
        let n = full.len();
        (
            Arc::new(Subset::new(full.clone(), (0..n).collect())),
            Arc::new(Subset::new(full, Vec::new())),
        )
    };
    let train: Arc<dyn ClassificationDataset> = match config.data.per_class {
        Some(n) => {
            let all: Vec<usize> = (0..classes.len()).collect();
            Arc::new(ClassSubset::new(train, &all, Some(n))?)
        }
        None => train,
    };
    let train: Arc<dyn ClassificationDataset> = match config.data.train_limit {
        Some(limit) if limit < train.len() => {
            // Evenly spaced items keep the class mix of the (shuffled-by-class) split.
            let step = train.len() as f64 / limit as f64;
            let idx = (0..limit).map(|i| (i as f64 * step) as usize).collect();
            Arc::new(Subset::new(train, idx))
        }
        _ => train,
    };
    let test = if spec.has_test_split() {
        Some(only(spec.open(dir, Split::Test)?)?)
    } else {
        None
    };
    let first = train
        .get(0)
        .map_err(|e| TrainError::Config(format!("cannot read the first training image: {e}")))?;
    let img = &first.image;
    let [h, w] = config.data.resize.unwrap_or([img.height, img.width]);
    let input = [img.channels, h, w];
    let stats = spec.stats().for_channels(img.channels);
    let eval_preset = if config.data.augment == Preset::Imagenet {
        Preset::Imagenet
    } else {
        Preset::None
    };
    Ok(RunData {
        train,
        valid,
        test,
        classes,
        input,
        train_transforms: {
            let mut t = tuned(config, config.data.augment.train([h, w], &stats));
            if config.data.cutout > 0 {
                t.push(Transform::Cutout {
                    size: config.data.cutout,
                });
            }
            t
        },
        eval_transforms: eval_preset.eval([h, w], &stats),
    })
}

/// The preset's transforms with the config's crop padding, pad mode and flip.
fn tuned(config: &TrainConfig, transforms: Vec<Transform>) -> Vec<Transform> {
    let d = &config.data;
    transforms
        .into_iter()
        .filter_map(|t| match t {
            Transform::RandomCrop { size, .. } => Some(Transform::RandomCrop {
                size,
                padding: d.crop_padding,
                pad_mode: d.pad_mode,
            }),
            Transform::RandomHorizontalFlip { p } => match d.flip {
                FlipMode::Random => Some(Transform::RandomHorizontalFlip { p }),
                FlipMode::Alternating => Some(Transform::AltFlip),
                FlipMode::None => None,
            },
            other => Some(other),
        })
        .collect()
}

/// A [`ClassificationDataset`] seen as a plain Burn dataset of items (for the loader).
pub struct AsItems(pub Arc<dyn ClassificationDataset>);

impl Dataset<ImageItem> for AsItems {
    fn get(&self, index: usize) -> Result<ImageItem, burn::data::dataset::DatasetError> {
        self.0.get(index)
    }
    fn len(&self) -> usize {
        self.0.len()
    }
}
