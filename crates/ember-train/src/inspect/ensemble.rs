//! Ensembles: average the softmax outputs of several trained runs, `p(y|x) = (1/M) sum_m
//! p_m(y|x)`, and compare with the best member. Members may differ in model and
//! preprocessing; they must agree on the classes.

use crate::error::{Result, TrainError};
use crate::inspect::predict::TrainedModel;
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
    let mut outputs = Vec::new();
    let mut labels: Option<Vec<usize>> = None;
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
        labels.get_or_insert(l);
        outputs.push(p);
    }
    let labels = labels.unwrap_or_default();
    let (accuracies, _, ensemble) = combine(&outputs, &labels);
    Ok(EnsembleReport {
        n: labels.len(),
        members: runs.iter().cloned().zip(accuracies).collect(),
        ensemble,
    })
}

/// The ensemble's arithmetic: each member's accuracy, the averaged probabilities
/// `p(y|x) = (1/M) sum_m p_m(y|x)` (`[n][classes]`), and their accuracy. `members[m][i]` is
/// member `m`'s probabilities for image `i`. Averaging probabilities, not logits: a member
/// that is sure counts for more than one that hesitates, whatever the logits' scale.
pub fn combine(members: &[Vec<Vec<f32>>], labels: &[usize]) -> (Vec<f64>, Vec<Vec<f32>>, f64) {
    let accuracy = |p: &[Vec<f32>]| {
        let correct = p
            .iter()
            .zip(labels)
            .filter(|(p, l)| argmax(p) == **l)
            .count();
        correct as f64 / labels.len().max(1) as f64
    };
    let accuracies = members.iter().map(|p| accuracy(p)).collect();
    let m = members.len().max(1) as f32;
    let mut mean: Vec<Vec<f32>> = members.first().cloned().unwrap_or_default();
    for other in members.iter().skip(1) {
        for (s, q) in mean.iter_mut().zip(other) {
            s.iter_mut().zip(q).for_each(|(a, b)| *a += b);
        }
    }
    mean.iter_mut().flatten().for_each(|v| *v /= m);
    let ensemble = accuracy(&mean);
    (accuracies, mean, ensemble)
}

#[cfg(test)]
mod tests {
    use super::combine;

    #[test]
    fn averages_probabilities_of_two_known_members() {
        // Image 0 (label 0): A is sure of 0, B leans to 1; the average is 0 (0.55 vs 0.45).
        // Image 1 (label 2): A says 1, B says 2 more surely; the average is 2.
        // Image 2 (label 1): both wrong.
        let a = vec![
            vec![0.9, 0.1, 0.0],
            vec![0.2, 0.5, 0.3],
            vec![0.6, 0.3, 0.1],
        ];
        let b = vec![
            vec![0.2, 0.8, 0.0],
            vec![0.1, 0.2, 0.7],
            vec![0.1, 0.2, 0.7],
        ];
        let (acc, mean, ensemble) = combine(&[a, b], &[0, 2, 1]);
        assert_eq!(acc, [1.0 / 3.0, 1.0 / 3.0]);
        let want = [[0.55, 0.45, 0.0], [0.15, 0.35, 0.5], [0.35, 0.25, 0.4]];
        for (row, w) in mean.iter().zip(want) {
            for (x, y) in row.iter().zip(w) {
                assert!((x - y).abs() < 1e-6, "{mean:?}");
            }
        }
        assert!((ensemble - 2.0 / 3.0).abs() < 1e-12, "{ensemble}");
        // Every averaged row is still a distribution.
        assert!(
            mean.iter()
                .all(|r| (r.iter().sum::<f32>() - 1.0).abs() < 1e-6)
        );
    }
}
