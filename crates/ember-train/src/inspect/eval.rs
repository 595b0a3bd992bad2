//! Evaluation: accuracy, top-5, loss, per-class accuracy and the confusion matrix.

use crate::config::Tta;
use crate::error::{Result, TrainError};
use crate::store::run::write_atomic;
use crate::training::classifier::{Network, top_k_indices};
use burn::data::dataloader::DataLoader;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::tensor::Tensor;
use ember_data::loader::ImageBatch;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The result of evaluating a model on a labelled split.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalReport {
    /// Images evaluated.
    pub n: usize,
    /// Top-1 accuracy, a fraction.
    pub accuracy: f64,
    /// Top-5 accuracy (top-k with k = classes when there are fewer than 5).
    pub top5: f64,
    /// Mean cross-entropy.
    pub loss: f64,
    /// Class names.
    pub classes: Vec<String>,
    /// Accuracy of each class (NaN-free: 0 for a class with no images).
    pub per_class: Vec<f64>,
    /// `confusion[true][predicted]` counts.
    pub confusion: Vec<Vec<u64>>,
}

/// The logits of `images`, with test-time augmentation `tta`: for `Flip`, the mean of the
/// logits of each image and its left-right mirror; for `FlipTranslate` (airbench94's
/// `infer_mirror_translate`), half that and half the mean of the same for the image shifted
/// one pixel each way along both axes (reflect padding 1, the top-left and bottom-right
/// crops): weights 1/4, 1/4, 1/8, 1/8, 1/8, 1/8 over six views.
pub fn tta_logits<N: Network>(net: &N, images: Tensor<4>, tta: Tta) -> Tensor<2> {
    let mirror = |x: Tensor<4>| {
        let mirrored = x.clone().flip([3]);
        (net.forward(x) + net.forward(mirrored)) / 2.0
    };
    match tta {
        Tta::None => net.forward(images),
        Tta::Flip => mirror(images),
        Tta::FlipTranslate => {
            let [n, c, h, w] = images.dims();
            let padded = reflect_pad1(images.clone());
            let up_left = padded.clone().slice([0..n, 0..c, 0..h, 0..w]);
            let down_right = padded.slice([0..n, 0..c, 2..h + 2, 2..w + 2]);
            let shifted = (mirror(up_left) + mirror(down_right)) / 2.0;
            (mirror(images) + shifted) / 2.0
        }
    }
}

/// One pixel of reflect padding on each side of the last two axes (`c b | a b c | b a` ->
/// `b a b c b`), as PyTorch's `F.pad(x, (1, 1, 1, 1), 'reflect')`.
pub fn reflect_pad1(x: Tensor<4>) -> Tensor<4> {
    let [_, _, h, w] = x.dims();
    let rows = Tensor::cat(
        vec![
            x.clone().narrow(2, 1, 1),
            x.clone(),
            x.narrow(2, h.saturating_sub(2), 1),
        ],
        2,
    );
    Tensor::cat(
        vec![
            rows.clone().narrow(3, 1, 1),
            rows.clone(),
            rows.narrow(3, w.saturating_sub(2), 1),
        ],
        3,
    )
}

/// Runs `net` over every batch of `loader` (a non-autodiff device gives evaluation mode:
/// batch norm uses its running statistics, dropout is off), with test-time augmentation
/// `tta`.
pub fn evaluate<N: Network>(
    net: &N,
    loader: &dyn DataLoader<ImageBatch>,
    classes: &[String],
    tta: Tta,
) -> Result<EvalReport> {
    let k = classes.len().clamp(1, 5);
    let nc = classes.len();
    let mut confusion = vec![vec![0u64; nc]; nc];
    let (mut n, mut top1, mut topk, mut loss_sum) = (0usize, 0u64, 0u64, 0f64);
    for batch in loader.iter() {
        let batch = batch.map_err(|e| TrainError::Training(format!("reading a batch: {e}")))?;
        let logits = tta_logits(net, batch.images, tta);
        let b = logits.dims()[0];
        let loss = CrossEntropyLossConfig::new()
            .init(&logits.device())
            .forward(logits.clone(), batch.targets.clone());
        let loss: f64 = loss
            .try_into_scalar::<f64>()
            .map_err(|e| TrainError::Training(format!("reading the loss: {e:?}")))?;
        let best = top_k_indices(logits, k);
        let best: Vec<i64> = best
            .into_data()
            .convert::<i64>()
            .try_to_vec::<i64>()
            .map_err(|e| TrainError::Training(format!("reading predictions: {e:?}")))?;
        let targets: Vec<i64> = batch
            .targets
            .into_data()
            .convert::<i64>()
            .try_to_vec::<i64>()
            .map_err(|e| TrainError::Training(format!("reading targets: {e:?}")))?;
        for (i, &t) in targets.iter().enumerate() {
            let row = &best[i * k..(i + 1) * k];
            let (t, p) = (t as usize, row[0] as usize);
            if t < nc && p < nc {
                confusion[t][p] += 1;
            }
            top1 += (row[0] as usize == t) as u64;
            topk += row.iter().any(|&c| c as usize == t) as u64;
        }
        loss_sum += loss * b as f64;
        n += b;
    }
    let per_class = confusion
        .iter()
        .enumerate()
        .map(|(c, row)| {
            let total: u64 = row.iter().sum();
            if total == 0 {
                0.0
            } else {
                row[c] as f64 / total as f64
            }
        })
        .collect();
    let d = n.max(1) as f64;
    Ok(EvalReport {
        n,
        accuracy: top1 as f64 / d,
        top5: topk as f64 / d,
        loss: loss_sum / d,
        classes: classes.to_vec(),
        per_class,
        confusion,
    })
}

impl EvalReport {
    /// The report as text: summary, per-class accuracy, and the confusion matrix (up to 20 classes).
    pub fn to_text(&self, title: &str) -> String {
        let mut s = format!(
            "{title}\nimages {}\naccuracy {:.2}%\ntop-5 accuracy {:.2}%\nloss {:.4}\n\nper-class accuracy\n",
            self.n,
            100.0 * self.accuracy,
            100.0 * self.top5,
            self.loss
        );
        let w = self
            .classes
            .iter()
            .map(|c| c.len())
            .max()
            .unwrap_or(5)
            .max(5);
        for ((c, acc), row) in self
            .classes
            .iter()
            .zip(&self.per_class)
            .zip(&self.confusion)
        {
            let total: u64 = row.iter().sum();
            s += &format!("  {c:<w$}  {:>6.2}%  ({total} images)\n", 100.0 * acc);
        }
        if self.classes.len() <= 20 {
            s += "\nconfusion matrix (rows: true class, columns: predicted)\n";
            s += &format!("  {:<w$}", "");
            for j in 0..self.classes.len() {
                s += &format!(" {j:>6}");
            }
            s.push('\n');
            for (i, row) in self.confusion.iter().enumerate() {
                s += &format!(
                    "  {:<w$}",
                    format!("{i} {}", self.classes[i])
                        .chars()
                        .take(w)
                        .collect::<String>()
                );
                for c in row {
                    s += &format!(" {c:>6}");
                }
                s.push('\n');
            }
        }
        s
    }

    /// Writes `report.txt`, `report.json` and `confusion.png` into `dir`.
    pub fn save(&self, dir: &Path, title: &str) -> Result<()> {
        write_atomic(&dir.join("report.txt"), self.to_text(title).as_bytes())?;
        let json = serde_json::to_string_pretty(self)
            .map_err(|e| TrainError::file(dir.join("report.json"), e))?;
        write_atomic(&dir.join("report.json"), json.as_bytes())?;
        crate::inspect::plot::confusion_png(
            &self.confusion,
            &self.classes,
            &dir.join("confusion.png"),
        )
    }
}

/// Which images a run is scored on: `--split` of `ember eval` and `ember viz patches`, and the
/// split of a run's final report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EvalSplit {
    /// The images the run trained on.
    #[serde(alias = "training")]
    Train,
    /// The images the run held out for validation.
    #[serde(alias = "valid", alias = "validation")]
    Val,
    /// The dataset's official test split.
    Test,
}

ember_data::named_enum!(EvalSplit => "split");

impl std::fmt::Display for EvalSplit {
    /// As reports say it: `test`, `validation`, `training`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            EvalSplit::Train => "training",
            EvalSplit::Val => "validation",
            EvalSplit::Test => "test",
        })
    }
}
