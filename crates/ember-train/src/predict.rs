//! Rebuilding a trained run's model, and classifying image files with it.

use crate::error::{Result, TrainError};
use crate::run::{RunDir, RunInfo};
use crate::trainer::load_weights;
use burn::tensor::activation::softmax;
use burn::tensor::{Device, Tensor, TensorData};
use ember_data::Image;
use ember_data::transform::{Transform, apply_all};
use ember_models::Model;
use std::path::Path;

/// A run's model in evaluation mode, with what it needs to read images.
pub struct TrainedModel {
    /// The network with the run's best (or final) weights.
    pub model: Model,
    /// The run's description.
    pub info: RunInfo,
    /// The device it lives on.
    pub device: Device,
}

impl TrainedModel {
    /// Loads the run in `dir` onto `device`.
    pub fn load(dir: &Path, device: &Device) -> Result<Self> {
        let run = RunDir::new(dir);
        let info = run.load_info()?;
        let config = info.model_config.clone().ok_or_else(|| {
            TrainError::file(run.info(), "this run trained a custom network; rebuild it in Rust and load its weights with `ember_train::trainer::load_weights`")
        })?;
        let model = config.init(device)?;
        let path = run.weights()?;
        // best.bpk / final.bpk hold the network; a checkpoint holds the Learner's wrapper.
        let model = match load_weights(model.clone(), &path) {
            Ok(m) => m,
            Err(e) => load_weights(crate::classifier::Classifier::new(model), &path)
                .map(|c| c.net)
                .map_err(|_| e)?,
        };
        Ok(Self {
            model,
            info,
            device: device.clone(),
        })
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
