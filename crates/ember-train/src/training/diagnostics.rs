//! Per-layer gradient norms and activation statistics: how the signal and its gradient
//! travel through the depth of a network (vanishing and exploding gradients, dead ReLUs).
//!
//! During training a few steps per epoch are *sampled*: their forward records every tap
//! ([`ember_models::Taps`]) and their backward's gradients are measured, then the epoch's
//! means are appended to `gradients.csv` and `activations.csv` in the run directory
//! (`ember viz gradients RUN_DIR` draws them). Per layer:
//! * gradient norm `||g|| = sqrt(sum over the layer's parameters of sum g^2)` and the weight
//!   norm beside it (their ratio is the relative step size of SGD);
//! * activation mean, standard deviation, and the fraction of exact zeros (inactive ReLUs).
//!
//! Each sampled step costs one extra read-back from the device; the rest stays on it.

use crate::error::{Result, TrainError};
use crate::store::run::write_atomic;
use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::{Gradients, Tensor};
use ember_models::ParamPath;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// The gradient of one layer's parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerGradient {
    /// Layer path, e.g. `conv1.conv` (its parameters are `conv1.conv.weight`, `.bias`).
    pub layer: String,
    /// `sqrt(sum g^2)` over the layer's parameters.
    pub grad_norm: f64,
    /// `sqrt(sum w^2)` over the same parameters.
    pub weight_norm: f64,
}

/// Statistics of one layer's output over a batch.
#[derive(Debug, Clone, PartialEq)]
pub struct ActivationStats {
    /// Tap name, e.g. `conv1` or `layer2.1`.
    pub layer: String,
    /// Mean over batch, channels and positions.
    pub mean: f64,
    /// Standard deviation over the same.
    pub std: f64,
    /// Fraction of outputs exactly zero (inactive ReLU units).
    pub zero_fraction: f64,
}

/// Reads a rank-1 float tensor back as `f64`s.
fn read(t: Tensor<1>) -> Result<Vec<f64>> {
    t.into_data()
        .convert::<f64>()
        .try_to_vec::<f64>()
        .map_err(|e| TrainError::Training(format!("reading diagnostics back: {e:?}")))
}

/// Per-layer gradient and weight norms of `module` from the gradients of a backward pass,
/// in the module's parameter order. Layers without gradients (frozen, buffers) are skipped.
pub fn gradient_norms<M: Module>(module: &M, grads: &Gradients) -> Result<Vec<LayerGradient>> {
    struct Collect<'a> {
        grads: &'a Gradients,
        path: ParamPath,
        /// (layer, squared grad sum, squared weight sum) per parameter.
        found: Vec<(String, Tensor<1>, Tensor<1>)>,
    }
    impl ModuleVisitor for Collect<'_> {
        fn enter_module(&mut self, name: &str, container: &str) {
            self.path.enter(name, container);
        }
        fn exit_module(&mut self, _name: &str, _container: &str) {
            self.path.exit();
        }
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let value = param.val();
            let Some(g) = value.grad(self.grads) else {
                return;
            };
            let (layer, _) = self.path.layer_and_name();
            let g2 = g.powi_scalar(2).sum();
            let w2 = value.inner().powi_scalar(2).sum();
            self.found.push((layer, g2, w2));
        }
    }
    let mut c = Collect {
        grads,
        path: ParamPath::default(),
        found: Vec::new(),
    };
    module.visit(&mut c);
    if c.found.is_empty() {
        return Ok(Vec::new());
    }
    let n = c.found.len();
    let mut layers = Vec::with_capacity(n);
    let mut sums = Vec::with_capacity(2 * n);
    for (layer, g2, w2) in c.found {
        layers.push(layer);
        sums.push(g2);
        sums.push(w2);
    }
    let values = read(Tensor::cat(sums, 0))?;
    let mut out: Vec<(String, f64, f64)> = Vec::new();
    for (i, layer) in layers.into_iter().enumerate() {
        let (g2, w2) = (values[2 * i], values[2 * i + 1]);
        match out.iter_mut().find(|(l, _, _)| *l == layer) {
            Some(entry) => {
                entry.1 += g2;
                entry.2 += w2;
            }
            None => out.push((layer, g2, w2)),
        }
    }
    Ok(out
        .into_iter()
        .map(|(layer, g2, w2)| LayerGradient {
            layer,
            grad_norm: g2.sqrt(),
            weight_norm: w2.sqrt(),
        })
        .collect())
}

/// Mean, standard deviation and zero fraction of each recorded tap.
pub fn activation_stats(taps: &[(String, Tensor<4>)]) -> Result<Vec<ActivationStats>> {
    if taps.is_empty() {
        return Ok(Vec::new());
    }
    let mut parts = Vec::with_capacity(3 * taps.len());
    for (_, t) in taps {
        let x = t.clone().inner().flatten::<1>(0, 3);
        let mean = x.clone().mean();
        let var = (x.clone() - mean.clone()).powi_scalar(2).mean();
        let zero = x.equal_elem(0.0).float().mean();
        parts.extend([mean, var, zero]);
    }
    let v = read(Tensor::cat(parts, 0))?;
    Ok(taps
        .iter()
        .enumerate()
        .map(|(i, (name, _))| ActivationStats {
            layer: name.clone(),
            mean: v[3 * i],
            std: v[3 * i + 1].max(0.0).sqrt(),
            zero_fraction: v[3 * i + 2],
        })
        .collect())
}

/// Running sums of one epoch's samples, per layer in first-seen order.
#[derive(Debug, Default)]
struct Accumulated {
    step: usize,
    samples: usize,
    grads: Vec<(String, [f64; 2])>,
    acts: Vec<(String, [f64; 3])>,
}

fn add<const K: usize>(into: &mut Vec<(String, [f64; K])>, layer: &str, v: [f64; K]) {
    match into.iter_mut().find(|(l, _)| l == layer) {
        Some((_, acc)) => acc.iter_mut().zip(v).for_each(|(a, x)| *a += x),
        None => into.push((layer.to_string(), v)),
    }
}

/// The collector shared by the training step (which samples) and the metric logger (which
/// writes one row per layer at the end of each epoch). Cheap to clone.
#[derive(Debug, Clone)]
pub struct Diagnostics {
    every: usize,
    dir: PathBuf,
    acc: Arc<Mutex<Accumulated>>,
}

/// One row of `gradients.csv`.
#[derive(Debug, Clone, PartialEq)]
pub struct GradientRow {
    /// 1-based epoch.
    pub epoch: usize,
    /// The layer's measurement (mean over the epoch's samples).
    pub gradient: LayerGradient,
}

/// One row of `activations.csv`.
#[derive(Debug, Clone, PartialEq)]
pub struct ActivationRow {
    /// 1-based epoch.
    pub epoch: usize,
    /// The layer's statistics (mean over the epoch's samples).
    pub stats: ActivationStats,
}

const GRAD_HEADER: &str = "epoch,layer,grad_norm,weight_norm";
const ACT_HEADER: &str = "epoch,layer,mean,std,zero_fraction";

impl Diagnostics {
    /// Samples one step in `every` (at least 1) and writes its CSV files into `dir`.
    pub fn new(every: usize, dir: impl Into<PathBuf>) -> Self {
        Self {
            every: every.max(1),
            dir: dir.into(),
            acc: Arc::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Accumulated> {
        self.acc.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts a training step; true when this one is to be measured.
    pub fn sample_now(&self) -> bool {
        let mut acc = self.lock();
        acc.step += 1;
        (acc.step - 1).is_multiple_of(self.every)
    }

    /// Adds one sampled step's measurements.
    pub fn record(&self, grads: &[LayerGradient], acts: &[ActivationStats]) {
        let mut acc = self.lock();
        acc.samples += 1;
        for g in grads {
            add(&mut acc.grads, &g.layer, [g.grad_norm, g.weight_norm]);
        }
        for a in acts {
            add(&mut acc.acts, &a.layer, [a.mean, a.std, a.zero_fraction]);
        }
    }

    /// `gradients.csv` of the run.
    pub fn gradients_path(dir: &Path) -> PathBuf {
        dir.join("gradients.csv")
    }

    /// `activations.csv` of the run.
    pub fn activations_path(dir: &Path) -> PathBuf {
        dir.join("activations.csv")
    }

    /// Appends the epoch's means to the CSV files (replacing rows of this and later epochs,
    /// left by a run that was killed and resumed) and starts a new epoch.
    pub fn flush(&self, epoch: usize) -> Result<()> {
        let (samples, grads, acts) = {
            let mut acc = self.lock();
            let taken = (
                acc.samples,
                std::mem::take(&mut acc.grads),
                std::mem::take(&mut acc.acts),
            );
            acc.samples = 0;
            taken
        };
        if samples == 0 {
            return Ok(());
        }
        let n = samples as f64;
        let mut g_rows = read_gradients(&Self::gradients_path(&self.dir)).unwrap_or_default();
        g_rows.retain(|r| r.epoch < epoch);
        g_rows.extend(grads.into_iter().map(|(layer, [g, w])| GradientRow {
            epoch,
            gradient: LayerGradient {
                layer,
                grad_norm: g / n,
                weight_norm: w / n,
            },
        }));
        write_gradients(&Self::gradients_path(&self.dir), &g_rows)?;
        let mut a_rows = read_activations(&Self::activations_path(&self.dir)).unwrap_or_default();
        a_rows.retain(|r| r.epoch < epoch);
        a_rows.extend(acts.into_iter().map(|(layer, [m, s, z])| ActivationRow {
            epoch,
            stats: ActivationStats {
                layer,
                mean: m / n,
                std: s / n,
                zero_fraction: z / n,
            },
        }));
        write_activations(&Self::activations_path(&self.dir), &a_rows)
    }
}

/// Writes `gradients.csv`.
pub fn write_gradients(path: &Path, rows: &[GradientRow]) -> Result<()> {
    let mut text = format!("{GRAD_HEADER}\n");
    for r in rows {
        let g = &r.gradient;
        text.push_str(&format!(
            "{},{},{},{}\n",
            r.epoch, g.layer, g.grad_norm, g.weight_norm
        ));
    }
    write_atomic(path, text.as_bytes())
}

/// Writes `activations.csv`.
pub fn write_activations(path: &Path, rows: &[ActivationRow]) -> Result<()> {
    let mut text = format!("{ACT_HEADER}\n");
    for r in rows {
        let a = &r.stats;
        text.push_str(&format!(
            "{},{},{},{},{}\n",
            r.epoch, a.layer, a.mean, a.std, a.zero_fraction
        ));
    }
    write_atomic(path, text.as_bytes())
}

/// Rows of a CSV file with `header`, each split into exactly `cols` fields.
fn csv_rows(path: &Path, header: &str, cols: usize) -> Result<Vec<Vec<String>>> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        TrainError::file(
            path,
            format!(
                "cannot read: {e} (runs record diagnostics unless trained with `runtime.diagnostics` = false)"
            ),
        )
    })?;
    let mut lines = text.lines();
    if lines.next().map(str::trim) != Some(header) {
        return Err(TrainError::file(
            path,
            format!("not an Ember diagnostics file (expected the header `{header}`)"),
        ));
    }
    lines
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            let f: Vec<String> = l.split(',').map(str::to_string).collect();
            if f.len() == cols {
                Ok(f)
            } else {
                Err(TrainError::file(
                    path,
                    format!("line {}: expected {cols} comma-separated columns", i + 2),
                ))
            }
        })
        .collect()
}

fn num<T: std::str::FromStr>(path: &Path, s: &str) -> Result<T> {
    s.parse()
        .map_err(|_| TrainError::file(path, format!("`{s}` is not a number")))
}

/// Reads `gradients.csv`.
pub fn read_gradients(path: &Path) -> Result<Vec<GradientRow>> {
    csv_rows(path, GRAD_HEADER, 4)?
        .into_iter()
        .map(|f| {
            Ok(GradientRow {
                epoch: num(path, &f[0])?,
                gradient: LayerGradient {
                    layer: f[1].clone(),
                    grad_norm: num(path, &f[2])?,
                    weight_norm: num(path, &f[3])?,
                },
            })
        })
        .collect()
}

/// Reads `activations.csv`.
pub fn read_activations(path: &Path) -> Result<Vec<ActivationRow>> {
    csv_rows(path, ACT_HEADER, 5)?
        .into_iter()
        .map(|f| {
            Ok(ActivationRow {
                epoch: num(path, &f[0])?,
                stats: ActivationStats {
                    layer: f[1].clone(),
                    mean: num(path, &f[2])?,
                    std: num(path, &f[3])?,
                    zero_fraction: num(path, &f[4])?,
                },
            })
        })
        .collect()
}
