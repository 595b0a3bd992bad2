//! Rebuilding a trained run's network (a zoo model or your own), and evaluating it or
//! classifying image files with it.

use crate::config::Tta;
use crate::error::{Result, TrainError};
use crate::inspect::eval::{EvalReport, evaluate};
use crate::store::run::{RunDir, RunInfo, Weights};
use crate::training::classifier::{Classifier, Network};
use crate::training::trainer::{AsItems, load_weights};
use burn::data::dataset::Dataset;
use burn::tensor::activation::softmax;
use burn::tensor::{Device, Tensor, TensorData};
use ember_data::Image;
use ember_data::loader::{ImageLoader, LoaderConfig};
use ember_data::transform::{Transform, apply_all};
use ember_data::{ClassificationDataset, ImageItem};
use ember_models::Model;
use std::path::Path;
use std::sync::Arc;

/// A run's network in evaluation mode, with what it needs to read images: a zoo model
/// ([`TrainedModel::load`]) or a network of your own ([`TrainedModel::load_with`]).
pub struct TrainedModel<N = Model> {
    /// The network with the run's best or final weights.
    pub model: N,
    /// The run's description.
    pub info: RunInfo,
    /// The device it lives on.
    pub device: Device,
}

impl TrainedModel {
    /// Loads the run in `dir` (a zoo model) onto `device`, with its best weights.
    pub fn load(dir: &Path, device: &Device) -> Result<Self> {
        Self::load_from(dir, Weights::Best, device)
    }

    /// Loads the run in `dir` (a zoo model) onto `device`, with `which` weights.
    pub fn load_from(dir: &Path, which: Weights, device: &Device) -> Result<Self> {
        let run = RunDir::new(dir);
        let info = run.load_info()?;
        if info.model_config.is_none() {
            return Err(TrainError::file(
                run.info(),
                format!(
                    "this run trained a network of your own (`{}`); load it with `TrainedModel::load_with(run, device, build)`, giving the function that built it",
                    info.model
                ),
            ));
        }
        Self::load_with_weights(dir, which, device, |info, device| {
            match &info.model_config {
                Some(config) => Ok(config.init(device)?),
                None => Err(TrainError::Config("no model configuration".into())),
            }
        })
    }
}

impl<N: Network> TrainedModel<N> {
    /// Loads the run in `dir` onto `device`, the network made by `build(info, device)` (the
    /// same function that built it for training, see
    /// [`Training::network`](crate::training::trainer::Training::network)).
    pub fn load_with(
        dir: &Path,
        device: &Device,
        build: impl FnOnce(&RunInfo, &Device) -> Result<N>,
    ) -> Result<Self> {
        Self::load_with_weights(dir, Weights::Best, device, build)
    }

    /// [`TrainedModel::load_with`], with `which` weights.
    pub fn load_with_weights(
        dir: &Path,
        which: Weights,
        device: &Device,
        build: impl FnOnce(&RunInfo, &Device) -> Result<N>,
    ) -> Result<Self> {
        let run = RunDir::new(dir);
        let info = run.load_info()?;
        let model = build(&info, device)?;
        let path = run.weights_of(which)?;
        // best.bpk / final.bpk hold the network; a checkpoint holds the Learner's wrapper.
        let model = match load_weights(model.clone(), &path) {
            Ok(m) => m,
            // A checkpoint of a lookahead run also holds the average.
            Err(e) => load_weights(Classifier::new(model.clone()), &path)
                .or_else(|_| load_weights(Classifier::new(model).with_average(), &path))
                .map(|c| c.net)
                .map_err(|_| e)?,
        };
        Ok(Self {
            model,
            info,
            device: device.clone(),
        })
    }

    /// Accuracy, per-class accuracy, confusion and loss on `dataset` (its classes in the run's
    /// order), read with the run's evaluation transforms.
    pub fn evaluate(
        &self,
        dataset: Arc<dyn ClassificationDataset>,
        batch_size: usize,
        workers: usize,
        tta: Tta,
    ) -> Result<EvalReport> {
        let ds: Arc<dyn Dataset<ImageItem>> = Arc::new(AsItems(dataset));
        let loader = ImageLoader::new(
            ds,
            self.info.eval_transforms.clone(),
            LoaderConfig::in_order(batch_size, workers),
            self.device.clone(),
        )?;
        evaluate(&self.model, &loader, &self.info.classes, tta)
    }

    /// Reads an image file and prepares it as the model's input `[C, H, W]`.
    pub fn prepare(&self, path: &Path) -> Result<Image> {
        let bytes =
            std::fs::read(path).map_err(|e| TrainError::file(path, format!("cannot read: {e}")))?;
        let img = Image::decode(&bytes, path)?;
        let [c, _, _] = self.info.input;
        let mut transforms = Vec::new();
        if img.channels != c {
            // A colour photo for an MNIST model, or a grey one for a CIFAR model.
            transforms.push(Transform::Grayscale { channels: c });
        }
        transforms.extend(self.info.eval_transforms.iter().cloned());
        let img = apply_all(&transforms, img, 0, 0, 0).map_err(|e| TrainError::file(path, e))?;
        if [img.channels, img.height, img.width] != self.info.input {
            return Err(TrainError::file(
                path,
                format!(
                    "became {} after the run's transforms, the model takes {:?}",
                    img.shape_str(),
                    self.info.input
                ),
            ));
        }
        Ok(img)
    }

    /// Class probabilities of each image, `[N, classes]`.
    pub fn probabilities(&self, images: &[Image]) -> Result<Vec<Vec<f32>>> {
        let [c, h, w] = self.info.input;
        let mut data = Vec::with_capacity(images.len() * c * h * w);
        for img in images {
            data.extend_from_slice(&img.data);
        }
        let x =
            Tensor::<4>::from_data(TensorData::new(data, [images.len(), c, h, w]), &self.device);
        let p = softmax(self.model.forward(x), 1);
        let n = self.info.classes.len();
        let flat: Vec<f32> = p
            .into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .map_err(|e| TrainError::Training(format!("reading probabilities: {e:?}")))?;
        Ok(flat.chunks(n).map(<[f32]>::to_vec).collect())
    }
}

/// The `k` most probable `(class index, probability)` pairs, best first.
pub fn top_k(probs: &[f32], k: usize) -> Vec<(usize, f32)> {
    let mut idx: Vec<(usize, f32)> = probs.iter().copied().enumerate().collect();
    idx.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    idx.truncate(k);
    idx
}
