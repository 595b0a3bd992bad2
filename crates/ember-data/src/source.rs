//! Datasets by name, as the CLI spells them: `mnist`, `fashion-mnist`, `cifar10`, `cifar100`,
//! `cifar100-coarse`, `folder:PATH`.

use crate::cifar::{CifarDataset, CifarVariant};
use crate::download::{Remote, downloads_enabled, fetch, unpack};
use crate::folder::ImageFolder;
use crate::mnist::{MnistDataset, MnistVariant, file_names};
use crate::transform::Stats;
use crate::{ClassificationDataset, DataError, Split};
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

/// A dataset Ember can open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatasetSpec {
    /// MNIST digits.
    Mnist,
    /// Fashion-MNIST.
    FashionMnist,
    /// CIFAR-10.
    Cifar10,
    /// CIFAR-100, fine labels.
    Cifar100,
    /// CIFAR-100, coarse labels.
    Cifar100Coarse,
    /// An ImageFolder (directory or .tar.gz).
    Folder(PathBuf),
}

impl DatasetSpec {
    /// The names [`FromStr`] reads, for help and error texts.
    pub const NAMES: &'static str =
        "mnist, fashion-mnist, cifar10, cifar100, cifar100-coarse or folder:PATH";
}

impl FromStr for DatasetSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some(path) = s.strip_prefix("folder:") {
            if path.is_empty() {
                return Err("folder: needs a path, e.g. folder:data/flowers".into());
            }
            return Ok(DatasetSpec::Folder(PathBuf::from(path)));
        }
        match s.to_ascii_lowercase().replace('_', "-").as_str() {
            "mnist" => Ok(DatasetSpec::Mnist),
            "fashion-mnist" | "fashionmnist" => Ok(DatasetSpec::FashionMnist),
            "cifar10" | "cifar-10" => Ok(DatasetSpec::Cifar10),
            "cifar100" | "cifar-100" => Ok(DatasetSpec::Cifar100),
            "cifar100-coarse" => Ok(DatasetSpec::Cifar100Coarse),
            other => Err(format!(
                "unknown dataset `{other}`; expected {}",
                DatasetSpec::NAMES
            )),
        }
    }
}

impl fmt::Display for DatasetSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DatasetSpec::Mnist => f.write_str("mnist"),
            DatasetSpec::FashionMnist => f.write_str("fashion-mnist"),
            DatasetSpec::Cifar10 => f.write_str("cifar10"),
            DatasetSpec::Cifar100 => f.write_str("cifar100"),
            DatasetSpec::Cifar100Coarse => f.write_str("cifar100-coarse"),
            DatasetSpec::Folder(p) => write!(f, "folder:{}", p.display()),
        }
    }
}

/// Written as its name (`cifar10`, `folder:data/flowers`), as config files and run
/// descriptions spell it.
impl serde::Serialize for DatasetSpec {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for DatasetSpec {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

const MNIST_MD5: [&str; 4] = [
    "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "d53e105ee54ea40749a09fcbcd1e9432",
    "9fb629c4189551a2d022fa330f9573f3",
    "ec29112dd5afa0611ce80d1b7f02629c",
];
const FASHION_MD5: [&str; 4] = [
    "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    "25c81989df183df01b3e8a0aad5dffbe",
    "bef4ecab320f06d8554ea6380940ec79",
    "bb300cfdad3c16e7a12a480ee83cd310",
];
const CIFAR10_MD5: &str = "c32a1d4ab5d03f1284b67883e8d87530";
const CIFAR100_MD5: &str = "03b5dce01913d631647c71ecec9e9cb8";

impl DatasetSpec {
    /// Where a dataset lives when no `--data-dir` is given:
    /// `$EMBER_DATA_DIR/<name>`, else `~/.cache/ember/<name>`.
    pub fn default_dir(&self) -> PathBuf {
        let base = std::env::var_os("EMBER_DATA_DIR")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/ember")))
            .unwrap_or_else(|| PathBuf::from(".ember-data"));
        let name = match self {
            DatasetSpec::Cifar100Coarse => "cifar100".to_string(),
            other => other.to_string(),
        };
        base.join(name)
    }

    /// Normalisation statistics for the presets (ImageNet's for folders).
    pub fn stats(&self) -> Stats {
        match self {
            DatasetSpec::Mnist => Stats::mnist(),
            DatasetSpec::FashionMnist => Stats::fashion_mnist(),
            DatasetSpec::Cifar10 => Stats::cifar10(),
            DatasetSpec::Cifar100 | DatasetSpec::Cifar100Coarse => Stats::cifar100(),
            DatasetSpec::Folder(_) => Stats::imagenet(),
        }
    }

    /// Whether the dataset has an official test split (folders do not).
    pub fn has_test_split(&self) -> bool {
        !matches!(self, DatasetSpec::Folder(_))
    }

    /// Opens `split` from `dir` (or [`default_dir`](Self::default_dir)), downloading the
    /// official files first when they are missing and downloads are enabled. A folder has no
    /// splits: every split is the whole folder.
    pub fn open(
        &self,
        dir: Option<&Path>,
        split: Split,
    ) -> Result<Arc<dyn ClassificationDataset>, DataError> {
        let default = self.default_dir();
        let dir = dir.unwrap_or(&default);
        Ok(match self {
            DatasetSpec::Mnist | DatasetSpec::FashionMnist => {
                let (variant, md5) = if *self == DatasetSpec::Mnist {
                    (MnistVariant::Digits, MNIST_MD5)
                } else {
                    (MnistVariant::Fashion, FASHION_MD5)
                };
                match MnistDataset::load(dir, variant, split) {
                    Err(DataError::Missing { .. }) if downloads_enabled() => {
                        let offset = if split == Split::Train { 0 } else { 2 };
                        for (k, name) in file_names(split).iter().enumerate() {
                            let file = format!("{name}.gz");
                            let remote = Remote {
                                url: format!("{}{file}", variant.url()),
                                file,
                                md5: md5[offset + k].to_string(),
                            };
                            fetch(&remote, dir)?;
                        }
                        Arc::new(MnistDataset::load(dir, variant, split)?)
                    }
                    other => Arc::new(other?),
                }
            }
            DatasetSpec::Cifar10 | DatasetSpec::Cifar100 | DatasetSpec::Cifar100Coarse => {
                let (variant, md5, file) = match self {
                    DatasetSpec::Cifar10 => {
                        (CifarVariant::Cifar10, CIFAR10_MD5, "cifar-10-binary.tar.gz")
                    }
                    DatasetSpec::Cifar100 => (
                        CifarVariant::Cifar100Fine,
                        CIFAR100_MD5,
                        "cifar-100-binary.tar.gz",
                    ),
                    _ => (
                        CifarVariant::Cifar100Coarse,
                        CIFAR100_MD5,
                        "cifar-100-binary.tar.gz",
                    ),
                };
                match CifarDataset::load(dir, variant, split) {
                    Err(DataError::Missing { .. }) if downloads_enabled() => {
                        let remote = Remote {
                            url: variant.url().to_string(),
                            file: file.to_string(),
                            md5: md5.to_string(),
                        };
                        fetch(&remote, dir)?;
                        unpack(&dir.join(file), dir)?;
                        Arc::new(CifarDataset::load(dir, variant, split)?)
                    }
                    other => Arc::new(other?),
                }
            }
            DatasetSpec::Folder(path) => Arc::new(ImageFolder::open(path)?),
        })
    }
}
