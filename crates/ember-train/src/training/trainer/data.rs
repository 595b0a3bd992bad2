//! The data of a run: the dataset of the config, split into training, validation and test
//! images, with the transforms each split gets.

use crate::config::{FlipMode, TrainConfig};
use crate::error::{Result, TrainError};
use burn::data::dataset::Dataset;
use ember_data::split::{ClassSubset, Subset, train_val_split};
use ember_data::transform::{Augment, Stats, Transform, apply_all};
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
    let train_transforms = train_transforms(config, [h, w], &stats)?;
    if let Augment::Pipeline(_) = config.data.augment {
        check_output(
            &train_transforms,
            first.image.clone(),
            input,
            config.train_loop.seed,
        )?;
    }
    Ok(RunData {
        train,
        valid,
        test,
        classes,
        input,
        train_transforms,
        eval_transforms: config.data.augment.eval([h, w], &stats),
    })
}

/// The training transforms of `config` for `size` images of a dataset with `stats`: its
/// preset tuned by the preset knobs (crop padding, pad mode, flip, cutout), or its own list
/// with the dataset's statistics filled in. `ember augment` shows the same.
pub fn train_transforms(
    config: &TrainConfig,
    size: [usize; 2],
    stats: &Stats,
) -> Result<Vec<Transform>> {
    Ok(match &config.data.augment {
        Augment::Preset(p) => {
            let mut t = tuned(config, p.train(size, stats));
            if config.data.cutout > 0 {
                t.push(Transform::Cutout {
                    size: config.data.cutout,
                });
            }
            t
        }
        list => list.train(size, stats).map_err(|e| TrainError::Knob {
            path: "data.augment".into(),
            msg: e.to_string(),
        })?,
    })
}

/// A pipeline of the user's own must make images of the network's input size: tried on the
/// first training image, so that a wrong crop size is an error before the first step, not a
/// shape mismatch inside the first batch.
fn check_output(
    transforms: &[Transform],
    image: ember_data::Image,
    input: [usize; 3],
    seed: u64,
) -> Result<()> {
    let (c, h, w) = (image.channels, image.height, image.width);
    let out = apply_all(transforms, image, seed, 0, 0).map_err(|e| TrainError::Knob {
        path: "data.augment".into(),
        msg: format!("fails on the first training image ({c}x{h}x{w}): {e}"),
    })?;
    let got = [out.channels, out.height, out.width];
    if got != input {
        return Err(TrainError::Knob {
            path: "data.augment".into(),
            msg: format!(
                "turns the first training image ({c}x{h}x{w}) into {}x{}x{}, but the network \
                 sees {}x{}x{} (`data.resize` or the images' own size): give the pipeline's \
                 crops and resizes size = [{}, {}]",
                got[0], got[1], got[2], input[0], input[1], input[2], input[1], input[2]
            ),
        });
    }
    Ok(())
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
