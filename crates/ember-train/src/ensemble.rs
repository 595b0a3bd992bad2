//! Ensembles: average the softmax outputs of several trained runs, `p(y|x) = (1/M) sum_m
//! p_m(y|x)`, and compare with the best member. Members may differ in model and
//! preprocessing; they must agree on the classes.

use crate::error::{Result, TrainError};
use crate::predict::TrainedModel;
use burn::data::dataloader::DataLoader;
use burn::data::dataset::Dataset;
use burn::tensor::Device;
use burn::tensor::activation::softmax;
use ember_data::ImageItem;
use ember_data::loader::{ImageLoader, LoaderConfig};
use std::path::PathBuf;
use std::sync::Arc;

/// Accuracy of each member and of their average.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct EnsembleReport {
    /// Images evaluated.
    pub n: usize,
    /// (run directory, accuracy) per member.
    pub members: Vec<(PathBuf, f64)>,
    /// Accuracy of the averaged probabilities.
    pub ensemble: f64,
}

impl EnsembleReport {
    /// The best member's accuracy.
    pub fn best_member(&self) -> f64 {
        self.members.iter().map(|m| m.1).fold(0.0, f64::max)
    }
}

/// Class probabilities `[n][classes]` and labels of `dataset` under one member.
fn probabilities(
    member: &TrainedModel,
    dataset: Arc<dyn Dataset<ImageItem>>,
    device: &Device,
) -> Result<(Vec<Vec<f32>>, Vec<usize>)> {
    let loader = ImageLoader::new(
        dataset,
        member.info.eval_transforms.clone(),
        LoaderConfig::in_order(256, 2),
        device.clone(),
    )?;
    let k = member.info.classes.len();
    let (mut probs, mut labels) = (Vec::new(), Vec::new());
    for batch in loader.iter() {
        let batch = batch.map_err(|e| TrainError::Training(format!("reading a batch: {e}")))?;
        let p = softmax(member.model.forward(batch.images), 1)
            .into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .map_err(|e| TrainError::Training(format!("reading probabilities: {e:?}")))?;
        probs.extend(p.chunks(k).map(<[f32]>::to_vec));
        let t = batch
            .targets
            .into_data()
            .convert::<i64>()
            .try_to_vec::<i64>()
            .map_err(|e| TrainError::Training(format!("reading labels: {e:?}")))?;
        labels.extend(t.into_iter().map(|l| l as usize));
    }
    Ok((probs, labels))
}

fn argmax(p: &[f32]) -> usize {
    p.iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map_or(0, |(i, _)| i)
}

/// Evaluates the runs in `runs` and their average on `dataset`.
pub fn ensemble(
    runs: &[PathBuf],
    dataset: Arc<dyn Dataset<ImageItem>>,
    device: &Device,
) -> Result<EnsembleReport> {
    if runs.is_empty() {
        return Err(TrainError::Config(
            "an ensemble needs at least one run".into(),
        ));
    }
    let mut members = Vec::new();
    let mut sum: Vec<Vec<f32>> = Vec::new();
    let mut labels = Vec::new();
    let mut classes: Option<Vec<String>> = None;
    for dir in runs {
        let member = TrainedModel::load(dir, device)?;
        match &classes {
            Some(c) if *c != member.info.classes => {
                return Err(TrainError::file(
                    dir,
                    format!(
                        "predicts other classes ({}) than the first run ({})",
                        member.info.classes.join(", "),
                        c.join(", ")
                    ),
                ));
            }
            _ => classes = Some(member.info.classes.clone()),
        }
        let (p, l) = probabilities(&member, dataset.clone(), device)?;
        let correct = p.iter().zip(&l).filter(|(p, l)| argmax(p) == **l).count();
        members.push((dir.clone(), correct as f64 / l.len().max(1) as f64));
        if sum.is_empty() {
            sum = p;
            labels = l;
        } else {
            for (s, q) in sum.iter_mut().zip(&p) {
                s.iter_mut().zip(q).for_each(|(a, b)| *a += b);
            }
        }
    }
    let correct = sum
        .iter()
        .zip(&labels)
        .filter(|(p, l)| argmax(p) == **l)
        .count();
    Ok(EnsembleReport {
        n: labels.len(),
        members,
        ensemble: correct as f64 / labels.len().max(1) as f64,
    })
}
