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

/// How a named dataset opens a split from a folder.
pub type OpenFn = fn(&Path, Split) -> Result<Arc<dyn ClassificationDataset>, DataError>;

/// Everything Ember knows of a named dataset, in one entry: its names, its folder, its
/// normalisation statistics and how it is opened (its files, their addresses and checksums
/// live in its `open`). A new dataset is a [`DatasetSpec`] variant, one entry in
/// [`DATASETS`] and its `open` function (timm's `default_cfgs`, applied to data).
pub struct DatasetInfo {
    /// The variant.
    pub spec: DatasetSpec,
    /// Its name in configs, flags and run descriptions (`fashion-mnist`).
    pub name: &'static str,
    /// Other spellings it is read by (`fashionmnist`).
    pub aliases: &'static [&'static str],
    /// Its folder under `$EMBER_DATA_DIR` (CIFAR-100's two label sets share one).
    pub dir_name: &'static str,
    /// One line for help texts.
    pub about: &'static str,
    /// The mean and std of its training images, per channel.
    pub stats: fn() -> Stats,
    /// Opens a split from a folder, downloading the official files first when they are
    /// missing and downloads are enabled.
    pub open: OpenFn,
}

/// The named datasets (an ImageFolder, `folder:PATH`, is the one unnamed kind).
pub static DATASETS: &[DatasetInfo] = &[
    DatasetInfo {
        spec: DatasetSpec::Mnist,
        name: "mnist",
        aliases: &[],
        dir_name: "mnist",
        about: "MNIST digits (LeCun et al. 1998): 60,000 + 10,000 grey 28x28 images, 10 classes",
        stats: Stats::mnist,
        open: |dir, split| open_idx(MnistVariant::Digits, &MNIST_MD5, dir, split),
    },
    DatasetInfo {
        spec: DatasetSpec::FashionMnist,
        name: "fashion-mnist",
        aliases: &["fashionmnist"],
        dir_name: "fashion-mnist",
        about: "Fashion-MNIST (Xiao et al. 2017): 60,000 + 10,000 grey 28x28 images, 10 classes",
        stats: Stats::fashion_mnist,
        open: |dir, split| open_idx(MnistVariant::Fashion, &FASHION_MD5, dir, split),
    },
    DatasetInfo {
        spec: DatasetSpec::Cifar10,
        name: "cifar10",
        aliases: &["cifar-10"],
        dir_name: "cifar10",
        about: "CIFAR-10 (Krizhevsky 2009): 50,000 + 10,000 colour 32x32 images, 10 classes",
        stats: Stats::cifar10,
        open: |dir, split| open_cifar(CifarVariant::Cifar10, CIFAR10_MD5, dir, split),
    },
    DatasetInfo {
        spec: DatasetSpec::Cifar100,
        name: "cifar100",
        aliases: &["cifar-100"],
        dir_name: "cifar100",
        about: "CIFAR-100, fine labels: 50,000 + 10,000 colour 32x32 images, 100 classes",
        stats: Stats::cifar100,
        open: |dir, split| open_cifar(CifarVariant::Cifar100Fine, CIFAR100_MD5, dir, split),
    },
    DatasetInfo {
        spec: DatasetSpec::Cifar100Coarse,
        name: "cifar100-coarse",
        aliases: &[],
        dir_name: "cifar100",
        about: "CIFAR-100, coarse labels: the same images in 20 superclasses",
        stats: Stats::cifar100,
        open: |dir, split| open_cifar(CifarVariant::Cifar100Coarse, CIFAR100_MD5, dir, split),
    },
];

impl DatasetSpec {
    /// The names [`FromStr`] reads, from [`DATASETS`], for help and error texts:
    /// `mnist, fashion-mnist, ... or folder:PATH`.
    pub fn names() -> String {
        let named: Vec<&str> = DATASETS.iter().map(|d| d.name).collect();
        format!("{} or folder:PATH", named.join(", "))
    }

    /// Its entry in [`DATASETS`] (`None` for a folder).
    pub fn info(&self) -> Option<&'static DatasetInfo> {
        DATASETS.iter().find(|d| d.spec == *self)
    }
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
        let name = s.to_ascii_lowercase().replace('_', "-");
        DATASETS
            .iter()
            .find(|d| d.name == name || d.aliases.contains(&name.as_str()))
            .map(|d| d.spec.clone())
            .ok_or_else(|| {
                format!(
                    "unknown dataset `{name}`; expected {}",
                    DatasetSpec::names()
                )
            })
    }
}

impl fmt::Display for DatasetSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self, self.info()) {
            (DatasetSpec::Folder(p), _) => write!(f, "folder:{}", p.display()),
            (_, Some(d)) => f.write_str(d.name),
            (other, None) => write!(f, "{other:?}"),
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
        match self.info() {
            Some(d) => base.join(d.dir_name),
            None => base.join(self.to_string()),
        }
    }

    /// Normalisation statistics for the presets (ImageNet's for folders).
    pub fn stats(&self) -> Stats {
        self.info().map_or_else(Stats::imagenet, |d| (d.stats)())
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
        match (self, self.info()) {
            (DatasetSpec::Folder(path), _) => Ok(Arc::new(ImageFolder::open(path)?)),
            (_, Some(d)) => (d.open)(dir, split),
            (other, None) => Err(DataError::Invalid(format!(
                "{other:?} has no entry in DATASETS"
            ))),
        }
    }
}

/// An MNIST-format dataset (IDX files), fetched file by file when missing.
fn open_idx(
    variant: MnistVariant,
    md5: &[&str; 4],
    dir: &Path,
    split: Split,
) -> Result<Arc<dyn ClassificationDataset>, DataError> {
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
            Ok(Arc::new(MnistDataset::load(dir, variant, split)?))
        }
        other => Ok(Arc::new(other?)),
    }
}

/// A CIFAR binary-format dataset, fetched and unpacked as one archive when missing.
fn open_cifar(
    variant: CifarVariant,
    md5: &str,
    dir: &Path,
    split: Split,
) -> Result<Arc<dyn ClassificationDataset>, DataError> {
    match CifarDataset::load(dir, variant, split) {
        Err(DataError::Missing { .. }) if downloads_enabled() => {
            let file = variant.url().rsplit('/').next().unwrap_or("cifar.tar.gz");
            let remote = Remote {
                url: variant.url().to_string(),
                file: file.to_string(),
                md5: md5.to_string(),
            };
            fetch(&remote, dir)?;
            unpack(&dir.join(file), dir)?;
            Ok(Arc::new(CifarDataset::load(dir, variant, split)?))
        }
        other => Ok(Arc::new(other?)),
    }
}
