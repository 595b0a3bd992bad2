//! Weights in and out: Ember's own files (Burn's burnpack `.bpk`, safetensors) and PyTorch
//! state dicts in torchvision's layout (`.pth`/`.pt`, or a `.safetensors` file written from
//! one, as the Hugging Face hub ships them).
//!
//! Loading goes through burn-store, which matches tensors by name: a key table per model
//! ([`ModelConfig::torchvision_keys`]) renames torchvision's keys to Ember's, and Burn's
//! PyTorch adapter transposes linear weights and renames batch-norm `weight`/`bias` to
//! `gamma`/`beta`. What does not fit (missing, unexpected, wrongly shaped tensors) is listed
//! by name; it is an error unless partial loading was asked for.

use crate::error::{Result, TrainError};
use crate::store::run::write_atomic;
use burn::module::Module;
use burn::store::{
    ApplyError, ApplyResult, BurnpackStore, KeyRemapper, ModuleSnapshot, PyTorchToBurnAdapter,
    PytorchStore, SafetensorsStore,
};
use burn::tensor::Device;
use ember_models::transfer::{KeyTable, under};
use ember_models::{Model, ModelConfig};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The file formats Ember reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Burn's burnpack (`.bpk`): what runs write (`best.bpk`, `final.bpk`).
    Burnpack,
    /// safetensors (`.safetensors`).
    Safetensors,
    /// A PyTorch pickle (`.pth`, `.pt`, `.bin`), as `torch.save(model.state_dict())` writes it.
    Pytorch,
}

impl Format {
    /// The format of `path`, by extension.
    pub fn of(path: &Path) -> Result<Format> {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or("")
            .to_ascii_lowercase();
        match ext.as_str() {
            "bpk" => Ok(Format::Burnpack),
            "safetensors" => Ok(Format::Safetensors),
            "pth" | "pt" | "bin" | "ckpt" => Ok(Format::Pytorch),
            _ => Err(TrainError::file(
                path,
                "unknown weights format: expected .bpk (Ember/Burn), .safetensors, or .pth/.pt (PyTorch)",
            )),
        }
    }
}

/// Whose names the tensors in a file carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Layout {
    /// torchvision's for `.pth`/`.pt`, Ember's for `.bpk` and `.safetensors`.
    #[default]
    Auto,
    /// Ember's own names.
    Ember,
    /// torchvision's names (PyTorch state dicts, Hugging Face safetensors of torchvision models).
    #[serde(alias = "pytorch")]
    Torchvision,
}

ember_data::named_enum!(Layout => "layout");

/// How to load.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// Load what fits and report the rest instead of failing.
    pub allow_partial: bool,
    /// Whose names the file uses.
    pub layout: Layout,
    /// The classifier head may differ from the file's (other classes): it keeps its fresh
    /// initialisation when its shape does not fit, and that is not an error.
    pub new_head: bool,
    /// Re-initialise the head even when the file's fits.
    pub reset_head: bool,
}

/// One tensor whose shape differs between the file and the model.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Mismatch {
    /// Ember's name.
    pub name: String,
    /// Shape in the file (after the adapter, e.g. a transposed linear weight).
    pub file: Vec<usize>,
    /// Shape in the model.
    pub model: Vec<usize>,
}

/// What a load did, by tensor name.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LoadReport {
    /// The file read.
    pub source: PathBuf,
    /// Tensors loaded.
    pub applied: Vec<String>,
    /// In the model, not in the file: they keep their initialisation.
    pub missing: Vec<String>,
    /// In the file, not in the model.
    pub unexpected: Vec<String>,
    /// In both, with other shapes: the model's are kept.
    pub mismatched: Vec<Mismatch>,
    /// Head tensors left freshly initialised (new classes, or `reset_head`).
    pub reset: Vec<String>,
}

impl LoadReport {
    /// Whether everything in the file and the model matched (the head aside).
    pub fn is_complete(&self) -> bool {
        self.missing.is_empty() && self.unexpected.is_empty() && self.mismatched.is_empty()
    }

    /// One paragraph, listing what did not fit.
    pub fn describe(&self) -> String {
        let list = |names: &[String]| {
            let mut s = names
                .iter()
                .take(12)
                .cloned()
                .collect::<Vec<_>>()
                .join(", ");
            if names.len() > 12 {
                s.push_str(&format!(", ... and {} more", names.len() - 12));
            }
            s
        };
        let mut parts = vec![format!("{} tensors loaded", self.applied.len())];
        if !self.missing.is_empty() {
            parts.push(format!(
                "{} missing from the file (kept at their initialisation): {}",
                self.missing.len(),
                list(&self.missing)
            ));
        }
        if !self.unexpected.is_empty() {
            parts.push(format!(
                "{} unexpected in the file (not in the model): {}",
                self.unexpected.len(),
                list(&self.unexpected)
            ));
        }
        if !self.mismatched.is_empty() {
            let shapes: Vec<String> = self
                .mismatched
                .iter()
                .map(|m| format!("{} (file {:?}, model {:?})", m.name, m.file, m.model))
                .collect();
            parts.push(format!(
                "{} with another shape: {}",
                self.mismatched.len(),
                list(&shapes)
            ));
        }
        if !self.reset.is_empty() {
            parts.push(format!("new head: {}", list(&self.reset)));
        }
        parts.join("; ")
    }
}

/// Loads the weights in `source` into `model` (built from `config`).
///
/// `source` is a run directory (its `best.bpk`, else `final.bpk`) or a weights file
/// ([`Format`]). Fails, naming every tensor that does not fit, unless
/// `options.allow_partial`.
pub fn load_into(
    model: Model,
    config: &ModelConfig,
    source: &Path,
    options: &LoadOptions,
) -> Result<(Model, LoadReport)> {
    let head = config.head();
    let keys = config.torchvision_keys();
    let fresh = |d: &Device| Ok(config.init(d)?);
    load_into_network(model, &head, keys.as_ref(), &fresh, source, options)
}

/// [`load_into`] for any network: `head` names its classifier head (shape mismatches there are
/// a new head, not an error), `keys` its torchvision layout if it has one, and `fresh` builds
/// it anew (the re-initialised head of `options.reset_head` comes from it).
pub fn load_into_network<M: Module>(
    mut model: M,
    head: &[String],
    keys: Option<&KeyTable>,
    fresh: &dyn Fn(&Device) -> Result<M>,
    source: &Path,
    options: &LoadOptions,
) -> Result<(M, LoadReport)> {
    let file = resolve(source)?;
    let format = Format::of(&file)?;
    let torchvision = match options.layout {
        Layout::Torchvision => true,
        Layout::Ember => false,
        Layout::Auto => format == Format::Pytorch,
    };
    let table = if torchvision {
        Some(keys.cloned().ok_or_else(|| {
            TrainError::file(
                &file,
                "this model has no torchvision layout (torchvision has ResNet, ResNeXt, VGG, AlexNet, DenseNet and GoogLeNet); load Ember weights (.bpk or .safetensors) instead",
            )
        })?)
    } else {
        None
    };
    let remapper = match &table {
        Some(t) => KeyRemapper::from_patterns(t.rules.clone())
            .map_err(|e| TrainError::Config(format!("bad key table: {e}")))?,
        None => KeyRemapper::new(),
    };
    let unreadable = |e: String| TrainError::file(&file, format!("cannot read the weights: {e}"));
    let result: ApplyResult = match format {
        Format::Burnpack => {
            let mut store = BurnpackStore::from_file(&file)
                .allow_partial(true)
                .validate(false);
            model
                .load_from(&mut store)
                .map_err(|e| unreadable(e.to_string()))?
        }
        Format::Safetensors => {
            let mut store = SafetensorsStore::from_file(&file)
                .skip_enum_variants(true)
                .remap(remapper)
                .allow_partial(true)
                .validate(false);
            if torchvision {
                store = store.with_from_adapter(PyTorchToBurnAdapter);
            }
            model
                .load_from(&mut store)
                .map_err(|e| unreadable(e.to_string()))?
        }
        Format::Pytorch => load_pytorch(&mut model, &file, remapper)?,
    };
    let ignored: Vec<regex::Regex> = table
        .iter()
        .flat_map(|t| t.ignored.iter())
        .filter_map(|p| regex::Regex::new(p).ok())
        .collect();
    let in_head = |name: &str| head.iter().any(|h| under(name, h));
    let mut report = LoadReport {
        source: file.clone(),
        applied: result.applied.iter().map(|p| clean(p)).collect(),
        missing: result.missing.iter().map(|(p, _)| clean(p)).collect(),
        unexpected: result
            .unused
            .iter()
            .filter(|k| !ignored.iter().any(|r| r.is_match(k)))
            .map(|p| clean(p))
            .collect(),
        ..LoadReport::default()
    };
    for e in &result.errors {
        match e {
            ApplyError::ShapeMismatch {
                path,
                expected,
                found,
            } => {
                let m = Mismatch {
                    name: clean(path),
                    file: found.to_vec(),
                    model: expected.to_vec(),
                };
                if options.new_head && in_head(&m.name) {
                    report.reset.push(m.name);
                } else {
                    report.mismatched.push(m);
                }
            }
            other => return Err(TrainError::file(&file, other.to_string())),
        }
    }
    if options.reset_head {
        let device =
            model.devices().into_iter().next().ok_or_else(|| {
                TrainError::Config("a model without parameters has no head".into())
            })?;
        let fresh = fresh(&device)?;
        let head_tensors: Vec<_> = fresh
            .collect(None, None, true)
            .into_iter()
            .filter(|t| in_head(&t.name))
            .collect();
        for t in &head_tensors {
            if !report.reset.contains(&t.name) {
                report.reset.push(t.name.clone());
            }
        }
        report.applied.retain(|a| !in_head(a));
        model.apply(head_tensors, None, None, true);
    }
    if !options.allow_partial && !report.is_complete() {
        return Err(TrainError::file(
            &file,
            format!(
                "these weights do not fit the model: {}. Set `finetune.allow_partial` = true to load what fits{}",
                report.describe(),
                if torchvision {
                    ""
                } else {
                    ", or `finetune.layout` = torchvision for a torchvision state dict"
                }
            ),
        ));
    }
    Ok((model, report))
}

/// Builds `config`'s model on `device` and loads `source` into it: one call from a file (or a
/// run) to a model, e.g. torchvision's `resnet18-f37072fd.pth` into `resnet18`.
pub fn load_pretrained(
    config: &ModelConfig,
    source: &Path,
    device: &Device,
    options: &LoadOptions,
) -> Result<(Model, LoadReport)> {
    let model = config.init(device)?;
    load_into(model, config, source, options)
}

/// Saves `model`'s weights by the extension of `path`: `.bpk` (Burn's burnpack) or
/// `.safetensors` (names without enum variants, the model configuration in the metadata).
pub fn save_as(model: &Model, config: &ModelConfig, path: &Path) -> Result<()> {
    match Format::of(path)? {
        Format::Burnpack => save_weights(model, path),
        Format::Safetensors => {
            let json = serde_json::to_string(config)
                .map_err(|e| TrainError::Config(format!("model config: {e}")))?;
            let mut store = SafetensorsStore::from_bytes(None)
                .skip_enum_variants(true)
                .metadata("ember.model_config", json);
            model
                .save_into(&mut store)
                .map_err(|e| TrainError::file(path, format!("cannot serialise: {e}")))?;
            let bytes = store
                .get_bytes()
                .map_err(|e| TrainError::file(path, format!("cannot serialise: {e}")))?;
            write_atomic(path, &bytes)
        }
        Format::Pytorch => Err(TrainError::file(
            path,
            "Ember writes .bpk or .safetensors (PyTorch reads safetensors with `safetensors.torch.load_file`)",
        )),
    }
}

/// The weights file of a run directory, or `source` itself.
pub fn resolve(source: &Path) -> Result<PathBuf> {
    if source.is_dir() {
        for name in ["best.bpk", "final.bpk"] {
            let p = source.join(name);
            if p.is_file() {
                return Ok(p);
            }
        }
        return Err(TrainError::file(
            source,
            "a run directory without best.bpk or final.bpk (did its training finish?)",
        ));
    }
    if !source.is_file() {
        return Err(TrainError::file(
            source,
            "no such weights file or run directory",
        ));
    }
    Ok(source.to_path_buf())
}

/// Reads a PyTorch file, trying the whole file as the state dict and then the usual
/// checkpoint keys (`state_dict`, `model_state_dict`, `model`).
fn load_pytorch<M: Module>(
    model: &mut M,
    file: &Path,
    remapper: KeyRemapper,
) -> Result<ApplyResult> {
    let store = |key: Option<&str>| {
        let s = PytorchStore::from_file(file)
            .remap(remapper.clone())
            // The key tables name every index explicitly; renumbering would break them.
            .map_indices_contiguous(false)
            .allow_partial(true)
            .validate(false);
        match key {
            Some(k) => s.with_top_level_key(k),
            None => s,
        }
    };
    let mut first_error = None;
    for key in [
        None,
        Some("state_dict"),
        Some("model_state_dict"),
        Some("model"),
    ] {
        let mut candidate = model.clone();
        match candidate.load_from(&mut store(key)) {
            Ok(result) if !result.applied.is_empty() => {
                *model = candidate;
                return Ok(result);
            }
            Ok(result) => {
                first_error.get_or_insert_with(|| {
                    format!(
                        "no tensor matched; the file holds {}",
                        result
                            .unused
                            .iter()
                            .take(8)
                            .cloned()
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                });
            }
            Err(e) => {
                first_error.get_or_insert_with(|| e.to_string());
            }
        }
    }
    Err(TrainError::file(
        file,
        format!(
            "not a PyTorch state dict this model can read: {}",
            first_error.unwrap_or_default()
        ),
    ))
}

/// Ember's name for a burn-store path: enum variants (`ResNet`, `Basic`) left out.
fn clean(path: &str) -> String {
    path.split('.')
        .filter(|s| {
            !(s.len() > 1
                && s.starts_with(|c: char| c.is_ascii_uppercase())
                && s.chars().any(|c| c.is_ascii_lowercase()))
        })
        .collect::<Vec<_>>()
        .join(".")
}

/// Saves a module's weights (burnpack) atomically.
pub fn save_weights<M: Module>(module: &M, path: &std::path::Path) -> Result<()> {
    let bytes = module
        .clone()
        .into_record()
        .into_bytes()
        .map_err(|e| TrainError::file(path, format!("cannot serialise the weights: {e}")))?;
    write_atomic(path, &bytes)
}

/// Loads burnpack weights into `module`, failing clearly on a foreign or corrupt file.
pub fn load_weights<M: Module>(module: M, path: &std::path::Path) -> Result<M> {
    let record = burn::store::ModuleRecord::load(path).map_err(|e| {
        TrainError::file(
            path,
            format!("not a readable Burn weights file (.bpk): {e}"),
        )
    })?;
    module
        .try_load_record(record)
        .map_err(|e| TrainError::file(path, format!("these weights do not fit the model: {e}")))
}
