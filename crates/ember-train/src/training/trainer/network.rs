//! Which network a run trains, on which devices, initialised from which seed.

use crate::backend::Backend;
use crate::config::TrainConfig;
use crate::error::{Result, TrainError};
use burn::module::Module;
use burn::tensor::Device;
use ember_models::ModelConfig;

/// The zoo model of `config`, fitted to `input` and `classes` classes, with `model_options`
/// applied; fails before training if the images do not fit the network.
pub fn model_config(
    config: &TrainConfig,
    input: [usize; 3],
    classes: usize,
    device: &Device,
) -> Result<ModelConfig> {
    let base = ModelConfig::from_name(&config.model)?;
    let base = if config.model_options.is_empty() {
        base
    } else {
        let mut value = serde_json::to_value(&base)
            .map_err(|e| TrainError::Config(format!("model config: {e}")))?;
        let options = serde_json::to_value(&config.model_options)
            .map_err(|e| TrainError::Config(format!("model_options: {e}")))?;
        if let (Some(obj), serde_json::Value::Object(opts)) = (value.as_object_mut(), options) {
            obj.extend(opts);
        }
        ModelConfig::try_from(value)
            .map_err(|e| TrainError::Config(format!("model_options: {e}")))?
    };
    let fitted = base.with_num_classes(classes).with_input(input);
    fitted.validate()?;
    if let Err(e) = fitted.summary(&config.model, input, device) {
        let [c, h, w] = input;
        let canonical = fitted.canonical_input();
        let hint = if c != canonical[0] {
            String::new()
        } else {
            format!(
                "; it was designed for {}x{}: try `data.resize` = [{}, {}]",
                canonical[1], canonical[2], canonical[1], canonical[2]
            )
        };
        return Err(TrainError::Fit(format!(
            "{} cannot take {c}x{h}x{w} images: {e}{hint}",
            config.model
        )));
    }
    Ok(fitted)
}

/// The devices of `--backend` and `--devices`.
pub fn devices(backend: Backend, n: usize) -> Result<Vec<Device>> {
    let backend = backend.resolve().backend;
    #[allow(unused_mut)]
    let mut devices = vec![backend.device()?];
    if n > 1 {
        devices = match backend {
            #[cfg(feature = "wgpu")]
            Backend::Wgpu => (0..n)
                .map(|i| Device::wgpu(burn::tensor::DeviceKind::DiscreteGpu(i)))
                .collect(),
            #[cfg(feature = "cuda")]
            Backend::Cuda => (0..n).map(Device::cuda).collect(),
            // CPU backends have one device; several handles share its threads, which is what
            // the data-parallel test needs (two CPU "devices").
            _ => vec![devices[0].clone(); n],
        };
    }
    Ok(devices)
}

/// Burn's backends keep one random generator per process (`Backend::seed` replaces it), and
/// parameters are initialised lazily, on first use, from that generator. Two trainings in one
/// process (`ember search --parallel 2`, parallel tests) would interleave their draws, and a
/// seed would no longer fix the initial weights. So seeding, building and drawing every
/// parameter happen under one process-wide lock, in the module's own (fixed) order.
///
/// Dropout masks are drawn from the same generator during training, so trainings with dropout
/// that run at the same time in one process still disturb each other's masks (not their
/// initial weights); runs in separate processes are unaffected.
pub fn seeded_init<M: Module>(
    device: &Device,
    seed: u64,
    build: impl FnOnce() -> Result<M>,
) -> Result<M> {
    static INIT: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = INIT.lock().unwrap_or_else(|e| e.into_inner());
    device.seed(seed);
    let module = build()?;
    module.visit(&mut Materialise);
    Ok(module)
}

/// Draws every lazily initialised parameter of a module (reading a parameter initialises it).
struct Materialise;

impl burn::module::ModuleVisitor for Materialise {
    fn visit_float<const D: usize>(
        &mut self,
        param: &burn::module::Param<burn::tensor::Tensor<D>>,
    ) {
        let _ = param.val();
    }
}
