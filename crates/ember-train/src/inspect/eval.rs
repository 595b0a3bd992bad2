//! Evaluation: accuracy, top-5, loss, per-class accuracy and the confusion matrix, and the
//! error analysis of every report: per-class precision, recall and F1 (scikit-learn's
//! `classification_report`) and the most-confused pairs (fastai's `most_confused`).

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
    /// The images the model got most wrong, highest loss first (up to [`TOP_LOSSES`]):
    /// fastai's `top_losses`, drawn by [`top_losses_png`](crate::inspect::viz::top_losses_png).
    #[serde(default)]
    pub top_losses: Vec<TopLoss>,
}

/// How many of the highest-loss images a report keeps.
pub const TOP_LOSSES: usize = 16;

/// One image of [`EvalReport::top_losses`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TopLoss {
    /// Its position in the evaluated split (the loader's order).
    pub index: usize,
    /// Its class.
    pub actual: usize,
    /// The class predicted.
    pub predicted: usize,
    /// Its cross-entropy, `-ln p(actual)`.
    pub loss: f64,
    /// The probability the model gave its class.
    pub probability: f64,
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
    let mut top_losses: Vec<TopLoss> = Vec::with_capacity(TOP_LOSSES + 1);
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
        // Each image's cross-entropy, -ln softmax(logits)[target], for the top losses.
        let per_image = -burn::tensor::activation::log_softmax(logits.clone(), 1)
            .gather(1, batch.targets.clone().reshape([b, 1]));
        let per_image: Vec<f32> = per_image
            .into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .map_err(|e| TrainError::Training(format!("reading the losses: {e:?}")))?;
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
            let loss = per_image[i] as f64;
            // Keep the highest; on ties the earlier image.
            if top_losses.len() < TOP_LOSSES || loss > top_losses[TOP_LOSSES - 1].loss {
                let at = top_losses.partition_point(|x: &TopLoss| x.loss >= loss);
                top_losses.insert(
                    at,
                    TopLoss {
                        index: n + i,
                        actual: t,
                        predicted: p,
                        loss,
                        probability: (-loss).exp(),
                    },
                );
                top_losses.truncate(TOP_LOSSES);
            }
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
        top_losses,
    })
}

/// One class's scores, as scikit-learn's `classification_report` gives them.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ClassScores {
    /// `TP / (TP + FP)`: of the images predicted as the class, the share that are.
    pub precision: f64,
    /// `TP / (TP + FN)`: of the class's images, the share predicted as it (its accuracy).
    pub recall: f64,
    /// `2 P R / (P + R)`, the harmonic mean of the two.
    pub f1: f64,
    /// The class's images.
    pub support: u64,
}

/// A confusion of the model: `count` images of class `actual` predicted as `predicted`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confusion {
    /// The true class's name.
    pub actual: String,
    /// The predicted class's name.
    pub predicted: String,
    /// How many images.
    pub count: u64,
}

/// The pairs shown in a report.
const MOST_CONFUSED: usize = 10;

/// `a / b`, and 0 for `b = 0` (scikit-learn's `zero_division=0`).
fn ratio(a: f64, b: f64) -> f64 {
    if b == 0.0 { 0.0 } else { a / b }
}

impl EvalReport {
    /// Each class's precision, recall, F1 and support, from the confusion matrix.
    pub fn class_scores(&self) -> Vec<ClassScores> {
        let n = self.confusion.len();
        (0..n)
            .map(|c| {
                let tp = self.confusion[c][c] as f64;
                let support: u64 = self.confusion[c].iter().sum();
                let predicted: u64 = self.confusion.iter().map(|row| row[c]).sum();
                let precision = ratio(tp, predicted as f64);
                let recall = ratio(tp, support as f64);
                ClassScores {
                    precision,
                    recall,
                    f1: ratio(2.0 * precision * recall, precision + recall),
                    support,
                }
            })
            .collect()
    }

    /// The macro average (every class alike) and the support-weighted average of the class
    /// scores, scikit-learn's `macro avg` and `weighted avg` rows.
    pub fn averages(&self) -> (ClassScores, ClassScores) {
        let scores = self.class_scores();
        let total: u64 = scores.iter().map(|s| s.support).sum();
        let avg = |weight: &dyn Fn(&ClassScores) -> f64, norm: f64| ClassScores {
            precision: ratio(scores.iter().map(|s| weight(s) * s.precision).sum(), norm),
            recall: ratio(scores.iter().map(|s| weight(s) * s.recall).sum(), norm),
            f1: ratio(scores.iter().map(|s| weight(s) * s.f1).sum(), norm),
            support: total,
        };
        (
            avg(&|_| 1.0, scores.len() as f64),
            avg(&|s| s.support as f64, total as f64),
        )
    }

    /// The off-diagonal cells of the confusion matrix with at least one image, largest first
    /// (ties by true class, then predicted): what the model mistakes for what.
    pub fn most_confused(&self, n: usize) -> Vec<Confusion> {
        let mut cells: Vec<(usize, usize, u64)> = self
            .confusion
            .iter()
            .enumerate()
            .flat_map(|(t, row)| row.iter().enumerate().map(move |(p, &c)| (t, p, c)))
            .filter(|&(t, p, c)| t != p && c > 0)
            .collect();
        cells.sort_by(|a, b| b.2.cmp(&a.2).then(a.0.cmp(&b.0)).then(a.1.cmp(&b.1)));
        let name = |i: usize| {
            self.classes
                .get(i)
                .cloned()
                .unwrap_or_else(|| i.to_string())
        };
        cells
            .into_iter()
            .take(n)
            .map(|(t, p, count)| Confusion {
                actual: name(t),
                predicted: name(p),
                count,
            })
            .collect()
    }

    /// The report as JSON: its fields and the error analysis (`class_scores` by class name,
    /// `macro_avg`, `weighted_avg`, `most_confused`).
    pub fn to_json(&self) -> Result<serde_json::Value> {
        let mut json =
            serde_json::to_value(self).map_err(|e| TrainError::Training(e.to_string()))?;
        let scores: serde_json::Map<String, serde_json::Value> = self
            .classes
            .iter()
            .zip(self.class_scores())
            .map(|(c, s)| Ok((c.clone(), serde_json::to_value(s)?)))
            .collect::<std::result::Result<_, serde_json::Error>>()
            .map_err(|e| TrainError::Training(e.to_string()))?;
        let (macro_avg, weighted_avg) = self.averages();
        if let Some(o) = json.as_object_mut() {
            o.insert("class_scores".into(), scores.into());
            o.insert("macro_avg".into(), serde_json::json!(macro_avg));
            o.insert("weighted_avg".into(), serde_json::json!(weighted_avg));
            o.insert(
                "most_confused".into(),
                serde_json::json!(self.most_confused(MOST_CONFUSED)),
            );
        }
        Ok(json)
    }

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
        // scikit-learn's classification_report, in its layout.
        let wr = w.max(12);
        s += &format!(
            "\n  {:<wr$}  precision     recall   f1-score    support\n",
            ""
        );
        let row = |name: &str, x: &ClassScores| {
            format!(
                "  {name:<wr$}  {:>9.4}  {:>9.4}  {:>9.4}  {:>9}\n",
                x.precision, x.recall, x.f1, x.support
            )
        };
        for (c, x) in self.classes.iter().zip(self.class_scores()) {
            s += &row(c, &x);
        }
        let (macro_avg, weighted_avg) = self.averages();
        s += &format!(
            "\n  {:<wr$}  {:>9}  {:>9}  {:>9.4}  {:>9}\n",
            "accuracy", "", "", self.accuracy, self.n
        );
        s += &row("macro avg", &macro_avg);
        s += &row("weighted avg", &weighted_avg);
        if !self.top_losses.is_empty() {
            s += "\nhighest losses (image: true -> predicted, loss, probability of the true class)\n";
            let name = |c: usize| {
                self.classes
                    .get(c)
                    .cloned()
                    .unwrap_or_else(|| c.to_string())
            };
            for t in &self.top_losses {
                s += &format!(
                    "  {}: {} -> {}, {:.3}, {:.4}\n",
                    t.index,
                    name(t.actual),
                    name(t.predicted),
                    t.loss,
                    t.probability
                );
            }
        }
        let confused = self.most_confused(MOST_CONFUSED);
        if !confused.is_empty() {
            s += "\nmost confused (true -> predicted: images)\n";
            for c in confused {
                s += &format!("  {} -> {}: {}\n", c.actual, c.predicted, c.count);
            }
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
        let json = serde_json::to_string_pretty(&self.to_json()?)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// y_true = [0, 0, 0, 1, 1, 2, 3], y_pred = [0, 0, 1, 1, 2, 2, 0]; the figures are
    /// scikit-learn's `classification_report(y_true, y_pred, zero_division=0)`.
    fn report() -> EvalReport {
        EvalReport {
            n: 7,
            accuracy: 4.0 / 7.0,
            top5: 1.0,
            loss: 1.0,
            classes: ["cat", "dog", "fox", "owl"].map(String::from).to_vec(),
            per_class: vec![2.0 / 3.0, 0.5, 1.0, 0.0],
            confusion: vec![
                vec![2, 1, 0, 0],
                vec![0, 1, 1, 0],
                vec![0, 0, 1, 0],
                vec![1, 0, 0, 0],
            ],
            top_losses: Vec::new(),
        }
    }

    fn near(a: f64, b: f64) -> bool {
        (a - b).abs() < 5e-5
    }

    #[test]
    fn class_scores_are_scikit_learns() {
        let r = report();
        let s = r.class_scores();
        let want = [
            (0.6667, 0.6667, 0.6667, 3),
            (0.5, 0.5, 0.5, 2),
            (0.5, 1.0, 0.6667, 1),
            (0.0, 0.0, 0.0, 1),
        ];
        for (c, (x, w)) in s.iter().zip(want).enumerate() {
            assert!(
                near(x.precision, w.0) && near(x.recall, w.1) && near(x.f1, w.2),
                "class {c}: {x:?} vs {w:?}"
            );
            assert_eq!(x.support, w.3);
        }
        let (m, w) = r.averages();
        assert!(
            near(m.precision, 0.4167) && near(m.recall, 0.5417) && near(m.f1, 0.4583),
            "{m:?}"
        );
        assert!(
            near(w.precision, 0.5) && near(w.recall, 0.5714) && near(w.f1, 0.5238),
            "{w:?}"
        );
        assert_eq!(m.support, 7);
        // Recall is the per-class accuracy the report already had.
        for (x, acc) in s.iter().zip(&r.per_class) {
            assert!(near(x.recall, *acc));
        }
    }

    #[test]
    fn most_confused_lists_the_mistakes_largest_first() {
        let mut r = report();
        r.confusion[1][2] = 4;
        let c = r.most_confused(10);
        let pairs: Vec<(&str, &str, u64)> = c
            .iter()
            .map(|c| (c.actual.as_str(), c.predicted.as_str(), c.count))
            .collect();
        assert_eq!(
            pairs,
            [("dog", "fox", 4), ("cat", "dog", 1), ("owl", "cat", 1)]
        );
        assert_eq!(r.most_confused(1).len(), 1);
        let text = r.to_text("t");
        assert!(
            text.contains("precision") && text.contains("weighted avg"),
            "{text}"
        );
        assert!(text.contains("dog -> fox: 4"), "{text}");
        let json = r.to_json().unwrap();
        assert_eq!(json["most_confused"][0]["count"], 4);
        assert!(json["class_scores"]["fox"]["recall"].as_f64().unwrap() > 0.0);
        assert_eq!(json["weighted_avg"]["support"], 10);
    }
}
