//! What each fuzz target does with one input: feed it to the parser a user's file reaches, and
//! check what a parse that succeeds promises. An `Err` is the right answer to a bad input; a
//! panic, an abort or a runaway allocation is a bug. Shared by the cargo-fuzz targets
//! (`fuzz/fuzz_targets/*.rs`) and the workspace test that replays the committed corpus
//! (`crates/ember-train/tests/it/corpus.rs`).

#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// A scratch directory of this process (targets that read files, as Ember does, write the
/// input there first).
fn scratch() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ember-fuzz-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    dir
}

fn write(name: &str, data: &[u8]) -> PathBuf {
    let path = scratch().join(name);
    std::fs::write(&path, data).expect("scratch file");
    path
}

/// MNIST's IDX, raw and gzipped.
pub fn idx(data: &[u8]) {
    use ember_data::idx::{maybe_gunzip, parse_idx};
    if let Ok(a) = parse_idx(data, Path::new("fuzz.idx")) {
        assert_eq!(a.data.len(), a.dims.iter().product::<usize>());
    }
    if let Ok(raw) = maybe_gunzip(data.to_vec(), Path::new("fuzz.gz"))
        && let Ok(a) = parse_idx(&raw, Path::new("fuzz.gz"))
    {
        assert_eq!(a.data.len(), a.dims.iter().product::<usize>());
    }
}

/// CIFAR-10 / CIFAR-100 binary batches; the first byte picks the variant.
pub fn cifar(data: &[u8]) {
    use burn::data::dataset::Dataset;
    use ember_data::cifar::{CifarDataset, CifarVariant};
    let Some((&which, bytes)) = data.split_first() else {
        return;
    };
    let variant = match which % 3 {
        0 => CifarVariant::Cifar10,
        1 => CifarVariant::Cifar100Fine,
        _ => CifarVariant::Cifar100Coarse,
    };
    if let Ok(ds) = CifarDataset::parse(bytes, Path::new("fuzz.bin"), variant) {
        for i in 0..ds.len().min(4) {
            let item = ds.get(i).expect("a parsed record reads back");
            assert!(item.label < variant.classes().len());
        }
    }
}

/// JPEG and PNG decoding, past the magic bytes.
pub fn image(data: &[u8]) {
    if let Ok(img) = ember_data::Image::decode(data, Path::new("fuzz.img")) {
        assert!(img.channels == 1 || img.channels == 3);
        assert_eq!(img.data.len(), img.channels * img.height * img.width);
    }
}

/// An ImageFolder packed as `.tar.gz`: opened, then its first images read.
pub fn archive(data: &[u8]) {
    use burn::data::dataset::Dataset;
    use ember_data::ClassificationDataset;
    let path = write("fuzz.tar.gz", data);
    if let Ok(ds) = ember_data::folder::ImageFolder::open(&path) {
        assert!(!ds.classes().is_empty());
        for i in 0..ds.len().min(8) {
            if let Some(label) = ds.label(i) {
                assert!(label < ds.classes().len());
            }
            let _ = ds.load(i);
        }
    }
}

/// A `config.toml` (a run's, or one written by hand), then the checks `ember train` makes.
pub fn config(data: &[u8]) {
    let path = write("config.toml", data);
    if let Ok(c) = ember_train::TrainConfig::load(&path) {
        let _ = c.validate();
    }
}

/// A run's `run.json`, as `eval`, `predict`, `viz` and `finetune` read it.
pub fn run_json(data: &[u8]) {
    let dir = scratch().join("run");
    let _ = std::fs::create_dir_all(&dir);
    std::fs::write(dir.join("run.json"), data).expect("scratch file");
    if let Ok(info) = ember_train::run::RunDir::new(&dir).load_info() {
        assert!(!info.classes.is_empty());
    }
}

/// A search space file.
pub fn space(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(space) = ember_train::search::space::Space::parse(text, Path::new("space.toml")) {
        let n = space.grid_len();
        assert!(n >= 1);
        assert!(space.grid_point(0).is_some());
        assert!(space.grid_point(n.saturating_sub(1)).is_some());
    }
}

/// A search's `trials.json`.
pub fn trials(data: &[u8]) {
    let dir = scratch().join("search");
    let _ = std::fs::create_dir_all(&dir);
    std::fs::write(dir.join("trials.json"), data).expect("scratch file");
    let _ = ember_train::search::load_trials(&dir);
}

/// A weights file (`.bpk`, `.safetensors` or `.pth`; the first byte picks) loaded into LeNet,
/// as `--pretrained` and `ember finetune` do: Burn's readers, behind Ember's checks.
pub fn weights(data: &[u8]) {
    let Some((&which, bytes)) = data.split_first() else {
        return;
    };
    let ext = ["bpk", "safetensors", "pth"][which as usize % 3];
    let path = write(&format!("weights.{ext}"), bytes);
    let device = burn::tensor::Device::flex();
    let config = ember_models::ModelConfig::from_name("lenet5_modern").expect("a zoo model");
    let Ok(model) = config.init(&device) else {
        return;
    };
    let options = ember_train::weights::LoadOptions {
        allow_partial: which & 4 != 0,
        ..Default::default()
    };
    let _ = ember_train::weights::load_into(model, &config, &path, &options);
}
