//! The images a trained run is scored on: a split of its own dataset (the validation images
//! it held out, rebuilt from its config and seed, or the test split) or of another dataset,
//! with the classes matched to the run's by name. `ember eval`, `ember viz patches` and
//! `ember ensemble` all start here; so can a program of yours.

use crate::config::TrainConfig;
use crate::error::{Result, TrainError};
use crate::inspect::eval::EvalSplit;
use crate::store::run::RunDir;
use crate::training::trainer;
use ember_data::split::ClassSubset;
use ember_data::{ClassificationDataset, DatasetSpec, Split};
use std::path::Path;
use std::sync::Arc;

pub use crate::error::SplitError;

/// The images to score a run on, and what was decided on the way.
pub struct RunImages {
    /// The images, labelled with the run's classes.
    pub images: Arc<dyn ClassificationDataset>,
    /// Which split they are.
    pub split: EvalSplit,
    /// Choices a user should hear of (a fallback split, classes left out), one line each.
    pub notes: Vec<String>,
}

/// The images of `split` for the run in `run`, labelled as the run's model predicts: `val` is
/// the run's own validation split (re-made from its config: splits are seeded), `test` and
/// `train` the dataset's splits (`dataset`, or the run's, read where the run read it unless
/// `data_dir` says otherwise). Without `split`: `test` where the dataset has one, else (a
/// folder, whose test and train would both be the whole folder, training images included) the
/// run's held-out `val`. Classes are matched by name, so a run trained on some classes
/// (`data.classes = [0, 1, 2, 3, 4]`) is scored on those classes of the test split, and a
/// dataset with the classes in another order is scored with the right labels.
pub fn run_images(
    run: &Path,
    dataset: Option<&DatasetSpec>,
    data_dir: Option<&Path>,
    split: Option<EvalSplit>,
) -> Result<RunImages> {
    let run_dir = RunDir::new(run);
    let mut config = TrainConfig::load(&run_dir.config())?;
    let info = run_dir.load_info()?;
    if let Some(dir) = data_dir {
        config.data.data_dir = Some(dir.to_path_buf());
    }
    let spec = dataset
        .cloned()
        .unwrap_or_else(|| config.data.dataset.clone());
    let own_folder = dataset.is_none() && matches!(spec, DatasetSpec::Folder(_));
    let split = split.unwrap_or(if own_folder {
        EvalSplit::Val
    } else {
        EvalSplit::Test
    });
    // The run's own dataset is where the run read it (or `data_dir`); another dataset is at
    // `data_dir` or its default place, not in the run's folder for its own data.
    let dir = if dataset.is_none() {
        config.data.data_dir.as_deref()
    } else {
        data_dir
    };
    let mut notes = Vec::new();
    let images = match split {
        EvalSplit::Val if dataset.is_none() => {
            let data = trainer::load_data(&config)?;
            if data.valid.is_empty() {
                if own_folder {
                    return Err(SplitError::NoValidation(spec).into());
                }
                notes.push("the run held out no validation images; using the test split".into());
                spec.open(dir, Split::Test)?
            } else {
                data.valid
            }
        }
        EvalSplit::Val => return Err(SplitError::ValidationOfAnotherDataset.into()),
        EvalSplit::Test if own_folder => return Err(SplitError::NoTestSplit(spec).into()),
        EvalSplit::Test => spec.open(dir, Split::Test)?,
        EvalSplit::Train => spec.open(dir, Split::Train)?,
    };
    if images.classes() == info.classes.as_slice() {
        return Ok(RunImages {
            images,
            split,
            notes,
        });
    }
    let extra = images
        .classes()
        .iter()
        .filter(|c| !info.classes.contains(c))
        .count();
    let mapped = ClassSubset::by_name(images, &info.classes).map_err(|e| {
        TrainError::Config(format!(
            "matching the run's classes to {spec} ({split}): {e}"
        ))
    })?;
    if extra > 0 {
        notes.push(format!(
            "scoring the run's {} classes only: {extra} other classes of {spec} left out",
            info.classes.len()
        ));
    }
    Ok(RunImages {
        images: Arc::new(mapped),
        split,
        notes,
    })
}
