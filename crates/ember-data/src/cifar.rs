//! CIFAR-10 and CIFAR-100 from the official binary version
//! (`cifar-10-batches-bin/`, `cifar-100-binary/`).
//!
//! Each record is the label byte(s) then 3072 pixel bytes: the red, green and blue 32x32 planes.
//! CIFAR-10 records have one label byte; CIFAR-100 records have two, coarse then fine.

use crate::{ClassificationDataset, DataError, Image, ImageItem, Split};
use burn::data::dataset::{Dataset, DatasetError};
use std::path::{Path, PathBuf};

/// Pixel bytes of one record.
const PIXELS: usize = 3 * 32 * 32;

/// Which CIFAR and which labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CifarVariant {
    /// 10 classes.
    Cifar10,
    /// 100 fine classes.
    Cifar100Fine,
    /// 20 coarse super-classes of CIFAR-100.
    Cifar100Coarse,
}

const CIFAR10: [&str; 10] = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
];

const CIFAR100_FINE: [&str; 100] = [
    "apple",
    "aquarium_fish",
    "baby",
    "bear",
    "beaver",
    "bed",
    "bee",
    "beetle",
    "bicycle",
    "bottle",
    "bowl",
    "boy",
    "bridge",
    "bus",
    "butterfly",
    "camel",
    "can",
    "castle",
    "caterpillar",
    "cattle",
    "chair",
    "chimpanzee",
    "clock",
    "cloud",
    "cockroach",
    "couch",
    "crab",
    "crocodile",
    "cup",
    "dinosaur",
    "dolphin",
    "elephant",
    "flatfish",
    "forest",
    "fox",
    "girl",
    "hamster",
    "house",
    "kangaroo",
    "keyboard",
    "lamp",
    "lawn_mower",
    "leopard",
    "lion",
    "lizard",
    "lobster",
    "man",
    "maple_tree",
    "motorcycle",
    "mountain",
    "mouse",
    "mushroom",
    "oak_tree",
    "orange",
    "orchid",
    "otter",
    "palm_tree",
    "pear",
    "pickup_truck",
    "pine_tree",
    "plain",
    "plate",
    "poppy",
    "porcupine",
    "possum",
    "rabbit",
    "raccoon",
    "ray",
    "road",
    "rocket",
    "rose",
    "sea",
    "seal",
    "shark",
    "shrew",
    "skunk",
    "skyscraper",
    "snail",
    "snake",
    "spider",
    "squirrel",
    "streetcar",
    "sunflower",
    "sweet_pepper",
    "table",
    "tank",
    "telephone",
    "television",
    "tiger",
    "tractor",
    "train",
    "trout",
    "tulip",
    "turtle",
    "wardrobe",
    "whale",
    "willow_tree",
    "wolf",
    "woman",
    "worm",
];

const CIFAR100_COARSE: [&str; 20] = [
    "aquatic_mammals",
    "fish",
    "flowers",
    "food_containers",
    "fruit_and_vegetables",
    "household_electrical_devices",
    "household_furniture",
    "insects",
    "large_carnivores",
    "large_man-made_outdoor_things",
    "large_natural_outdoor_scenes",
    "large_omnivores_and_herbivores",
    "medium_mammals",
    "non-insect_invertebrates",
    "people",
    "reptiles",
    "small_mammals",
    "trees",
    "vehicles_1",
    "vehicles_2",
];

impl CifarVariant {
    /// Dataset name for messages.
    pub fn name(self) -> &'static str {
        match self {
            CifarVariant::Cifar10 => "CIFAR-10",
            _ => "CIFAR-100",
        }
    }

    /// The folder the official archive unpacks to.
    pub fn folder(self) -> &'static str {
        match self {
            CifarVariant::Cifar10 => "cifar-10-batches-bin",
            _ => "cifar-100-binary",
        }
    }

    /// The official archive.
    pub fn url(self) -> &'static str {
        match self {
            CifarVariant::Cifar10 => "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",
            _ => "https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz",
        }
    }

    /// Files of a split.
    pub fn files(self, split: Split) -> Vec<&'static str> {
        match (self, split) {
            (CifarVariant::Cifar10, Split::Train) => vec![
                "data_batch_1.bin",
                "data_batch_2.bin",
                "data_batch_3.bin",
                "data_batch_4.bin",
                "data_batch_5.bin",
            ],
            (CifarVariant::Cifar10, Split::Test) => vec!["test_batch.bin"],
            (_, Split::Train) => vec!["train.bin"],
            (_, Split::Test) => vec!["test.bin"],
        }
    }

    /// Label bytes before the pixels of each record.
    fn label_bytes(self) -> usize {
        match self {
            CifarVariant::Cifar10 => 1,
            _ => 2,
        }
    }

    /// Class names by label.
    pub fn classes(self) -> Vec<String> {
        let names: &[&str] = match self {
            CifarVariant::Cifar10 => &CIFAR10,
            CifarVariant::Cifar100Fine => &CIFAR100_FINE,
            CifarVariant::Cifar100Coarse => &CIFAR100_COARSE,
        };
        names.iter().map(|s| s.to_string()).collect()
    }
}

/// A split of CIFAR-10 or CIFAR-100 in memory (150 MB for a training set).
#[derive(Debug, Clone)]
pub struct CifarDataset {
    pixels: Vec<u8>,
    labels: Vec<u8>,
    classes: Vec<String>,
}

impl CifarDataset {
    /// Loads `split` from `dir`: the unpacked folder itself or its parent.
    pub fn load(dir: &Path, variant: CifarVariant, split: Split) -> Result<Self, DataError> {
        let folder = if dir.join(variant.folder()).is_dir() {
            dir.join(variant.folder())
        } else {
            dir.to_path_buf()
        };
        let files: Vec<PathBuf> = variant
            .files(split)
            .iter()
            .map(|f| folder.join(f))
            .collect();
        let missing: Vec<&str> = variant
            .files(split)
            .into_iter()
            .filter(|f| !folder.join(f).is_file())
            .collect();
        if !missing.is_empty() {
            return Err(DataError::Missing {
                dataset: variant.name().into(),
                files: missing.join(", "),
                dir: folder,
                hint: format!(
                    "download {} and unpack it there (or into its parent)",
                    variant.url()
                ),
            });
        }
        let mut data = Self {
            pixels: Vec::new(),
            labels: Vec::new(),
            classes: variant.classes(),
        };
        for file in files {
            data.append_file(&file, variant)?;
        }
        Ok(data)
    }

    /// Parses one batch file's bytes; `path` names it in errors.
    pub fn parse(bytes: &[u8], path: &Path, variant: CifarVariant) -> Result<Self, DataError> {
        let mut data = Self {
            pixels: Vec::new(),
            labels: Vec::new(),
            classes: variant.classes(),
        };
        data.append_bytes(bytes, path, variant)?;
        Ok(data)
    }

    fn append_file(&mut self, path: &Path, variant: CifarVariant) -> Result<(), DataError> {
        let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
        self.append_bytes(&bytes, path, variant)
    }

    fn append_bytes(
        &mut self,
        bytes: &[u8],
        path: &Path,
        variant: CifarVariant,
    ) -> Result<(), DataError> {
        let lb = variant.label_bytes();
        let record = lb + PIXELS;
        if bytes.is_empty() || !bytes.len().is_multiple_of(record) {
            return Err(DataError::Truncated {
                path: path.to_path_buf(),
                detail: format!(
                    "{} bytes is not a whole number of {record}-byte {} records (record {} is incomplete)",
                    bytes.len(),
                    variant.name(),
                    bytes.len() / record
                ),
            });
        }
        let label_at = match variant {
            CifarVariant::Cifar100Fine => 1,
            _ => 0,
        };
        let classes = self.classes.len();
        for (index, rec) in bytes.chunks_exact(record).enumerate() {
            let label = rec[label_at];
            if label as usize >= classes {
                return Err(DataError::LabelOutOfRange {
                    path: path.to_path_buf(),
                    index,
                    label: label as usize,
                    classes,
                });
            }
            self.labels.push(label);
            self.pixels.extend_from_slice(&rec[lb..]);
        }
        Ok(())
    }
}

impl Dataset<ImageItem> for CifarDataset {
    fn get(&self, index: usize) -> Result<ImageItem, DatasetError> {
        let label = *self.labels.get(index).ok_or_else(|| {
            DataError::Invalid(format!("index {index} out of range 0..{}", self.len()))
        })?;
        let px = &self.pixels[index * PIXELS..(index + 1) * PIXELS];
        Ok(ImageItem {
            image: Image::from_planar_u8(3, 32, 32, px),
            label: label as usize,
        })
    }

    fn len(&self) -> usize {
        self.labels.len()
    }
}

impl ClassificationDataset for CifarDataset {
    fn classes(&self) -> &[String] {
        &self.classes
    }

    fn label(&self, index: usize) -> Option<usize> {
        self.labels.get(index).map(|&l| l as usize)
    }
}
