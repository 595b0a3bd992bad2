//! ImageFolder: `ROOT/<class>/<image>`, class index by sorted folder name (as torchvision and
//! Burn do), JPEG and PNG decoded on access. The root may also be a `.tar.gz` of such a tree
//! (e.g. `cifar10-train-jpg.tar.gz`): its files are read into memory once, still compressed.

use crate::{ClassificationDataset, DataError, Image, ImageItem};
use burn::data::dataset::{Dataset, DatasetError};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Extensions read as images (case-insensitive); other files are skipped, as torchvision does.
pub const IMAGE_EXTENSIONS: [&str; 3] = ["jpg", "jpeg", "png"];

/// The largest image file read from a `.tar.gz` ImageFolder: 256 MiB (a 16k x 16k RGB PNG is
/// 768 MiB raw but far less compressed; real datasets' files are kilobytes).
pub const MAX_ARCHIVE_IMAGE_BYTES: u64 = 256 << 20;

fn is_image(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

fn is_hidden(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with('.'))
}

/// Where the image bytes live.
#[derive(Debug, Clone)]
enum Source {
    /// Files on disk, read on access.
    Files,
    /// Entries of an archive, in memory.
    Archive(Arc<Vec<Vec<u8>>>),
}

/// An ImageFolder dataset.
#[derive(Debug, Clone)]
pub struct ImageFolder {
    root: PathBuf,
    /// `(path, label)`; for an archive, the path inside it.
    items: Vec<(PathBuf, usize)>,
    classes: Vec<String>,
    source: Source,
    /// Channels every image is given: 3 if any sampled image is in colour, else 1.
    channels: usize,
}

impl ImageFolder {
    /// Opens `root`: a directory of class folders, or a `.tar.gz` / `.tgz` of one.
    pub fn open(root: &Path) -> Result<Self, DataError> {
        let name = root.to_string_lossy();
        if root.is_file() && (name.ends_with(".tar.gz") || name.ends_with(".tgz")) {
            Self::from_archive(root)
        } else if root.is_dir() {
            Self::from_dir(root)
        } else {
            Err(DataError::Missing {
                dataset: "ImageFolder".into(),
                files: root.display().to_string(),
                dir: root.parent().map(Path::to_path_buf).unwrap_or_default(),
                hint:
                    "give a folder of class folders (ROOT/<class>/<image>.jpg) or a .tar.gz of one"
                        .into(),
            })
        }
    }

    fn from_dir(root: &Path) -> Result<Self, DataError> {
        let read_dir = |p: &Path| -> Result<Vec<PathBuf>, DataError> {
            let mut entries = std::fs::read_dir(p)
                .map_err(|e| DataError::io(p, e))?
                .map(|e| e.map(|e| e.path()).map_err(|err| DataError::io(p, err)))
                .collect::<Result<Vec<_>, _>>()?;
            entries.sort();
            Ok(entries)
        };
        let class_dirs: Vec<PathBuf> = read_dir(root)?
            .into_iter()
            .filter(|p| p.is_dir() && !is_hidden(p))
            .collect();
        if class_dirs.is_empty() {
            return Err(DataError::NoClasses {
                path: root.to_path_buf(),
            });
        }
        let mut classes = Vec::new();
        let mut items = Vec::new();
        // Links are followed (as torchvision's `os.walk(followlinks=True)` does), but each real
        // directory is read once: a link back to the root or a parent (a loop) or a second link
        // to a folder already read would repeat its images under another label.
        let mut seen = Visited::new(root)?;
        for (label, dir) in class_dirs.iter().enumerate() {
            let mut files = Vec::new();
            collect_images(dir, &mut files, &mut seen)?;
            if files.is_empty() {
                return Err(DataError::EmptyClass { path: dir.clone() });
            }
            files.sort();
            items.extend(files.into_iter().map(|f| (f, label)));
            classes.push(
                dir.file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned(),
            );
        }
        Self {
            root: root.to_path_buf(),
            items,
            classes,
            source: Source::Files,
            channels: 3,
        }
        .with_sampled_channels()
    }

    fn from_archive(archive: &Path) -> Result<Self, DataError> {
        let file = std::fs::File::open(archive).map_err(|e| DataError::io(archive, e))?;
        let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(file));
        let broken = |e: std::io::Error| DataError::BadFormat {
            path: archive.to_path_buf(),
            format: "a readable .tar.gz".into(),
            detail: e.to_string(),
        };
        // class folder path inside the archive -> files (path, bytes)
        let mut by_class: BTreeMap<PathBuf, Vec<(PathBuf, Vec<u8>)>> = BTreeMap::new();
        for entry in tar.entries().map_err(broken)? {
            let mut entry = entry.map_err(broken)?;
            if !entry.header().entry_type().is_file() {
                continue;
            }
            let path = entry.path().map_err(broken)?.into_owned();
            if !is_image(&path)
                || path
                    .components()
                    .any(|c| is_hidden(Path::new(c.as_os_str())))
            {
                continue;
            }
            let Some(class_dir) = path.parent().map(Path::to_path_buf) else {
                continue;
            };
            // The header's size is the archive's claim, not a fact: check it before trusting it
            // with an allocation (a 200-byte archive can claim terabytes).
            if entry.size() > MAX_ARCHIVE_IMAGE_BYTES {
                return Err(DataError::BadFormat {
                    path: archive.to_path_buf(),
                    format: "an ImageFolder archive".into(),
                    detail: format!(
                        "{} claims {} bytes, more than the {} an image may have here",
                        path.display(),
                        entry.size(),
                        MAX_ARCHIVE_IMAGE_BYTES
                    ),
                });
            }
            let mut bytes = Vec::with_capacity(entry.size().min(1 << 20) as usize);
            (&mut entry)
                .take(MAX_ARCHIVE_IMAGE_BYTES)
                .read_to_end(&mut bytes)
                .map_err(broken)?;
            by_class.entry(class_dir).or_default().push((path, bytes));
        }
        if by_class.is_empty() {
            return Err(DataError::NoClasses {
                path: archive.to_path_buf(),
            });
        }
        let parents: Vec<_> = by_class
            .keys()
            .map(|k| k.parent().map(Path::to_path_buf))
            .collect();
        if parents.windows(2).any(|w| w[0] != w[1]) {
            return Err(DataError::BadFormat {
                path: archive.to_path_buf(),
                format: "an ImageFolder archive".into(),
                detail:
                    "images sit at different depths; expected ROOT/<class>/<image> for every image"
                        .into(),
            });
        }
        let mut classes = Vec::new();
        let mut items = Vec::new();
        let mut blobs = Vec::new();
        for (label, (dir, mut files)) in by_class.into_iter().enumerate() {
            files.sort_by(|a, b| a.0.cmp(&b.0));
            classes.push(
                dir.file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned(),
            );
            for (path, bytes) in files {
                items.push((path, label));
                blobs.push(bytes);
            }
        }
        Self {
            root: archive.to_path_buf(),
            items,
            classes,
            source: Source::Archive(Arc::new(blobs)),
            channels: 3,
        }
        .with_sampled_channels()
    }

    /// How many of the first images of each class are decoded to choose the channel count.
    const CHANNEL_SAMPLES: usize = 32;

    /// Chooses the channel count from the first image of each class (at most
    /// [`Self::CHANNEL_SAMPLES`]): a folder of greyscale images (MNIST as PNGs) stays one channel;
    /// in a folder with colour images, greyscale ones are given three equal channels, as
    /// torchvision's `convert("RGB")` does (ImageNet has a few greyscale JPEGs), so that a batch
    /// never mixes 1 and 3 channels.
    fn with_sampled_channels(mut self) -> Result<Self, DataError> {
        let mut firsts = Vec::new();
        for (i, (_, label)) in self.items.iter().enumerate() {
            if i == 0 || self.items[i - 1].1 != *label {
                firsts.push(i);
            }
        }
        firsts.truncate(Self::CHANNEL_SAMPLES);
        let mut colour = false;
        for i in firsts {
            colour |= self.decode(i)?.channels == 3;
        }
        self.channels = if colour { 3 } else { 1 };
        Ok(self)
    }

    /// Channels of every image this dataset gives (1 or 3).
    pub fn channels(&self) -> usize {
        self.channels
    }

    /// The folder or archive it was opened from.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Path of item `index` (inside the archive for archives).
    pub fn path(&self, index: usize) -> Option<&Path> {
        self.items.get(index).map(|(p, _)| p.as_path())
    }

    /// Reads and decodes item `index`, with the dataset's channel count.
    pub fn load(&self, index: usize) -> Result<ImageItem, DataError> {
        let image = self.decode(index)?;
        let (path, label) = &self.items[index];
        let image = match (image.channels, self.channels) {
            (c, want) if c == want => image,
            // Three equal channels, as torchvision's `convert("RGB")`.
            (1, 3) => crate::transform::grayscale(&image, 3)
                .map_err(|e| DataError::Invalid(format!("{}: {e}", path.display())))?,
            _ => {
                return Err(DataError::WrongImage {
                    path: self.shown(path),
                    found: image.shape_str(),
                    expected: format!(
                        "a greyscale image like the first image of each class in {} \
                         (the folder is read as one channel); convert it to greyscale, or \
                         make the folder's images colour",
                        self.root.display()
                    ),
                });
            }
        };
        Ok(ImageItem {
            image,
            label: *label,
        })
    }

    /// The path a user knows an item by (for an archive, the archive joined with the entry).
    fn shown(&self, path: &Path) -> PathBuf {
        match self.source {
            Source::Files => path.to_path_buf(),
            Source::Archive(_) => self.root.join(path),
        }
    }

    /// Decodes item `index` as it is stored: one channel for greyscale, three otherwise.
    fn decode(&self, index: usize) -> Result<Image, DataError> {
        let (path, _) = self.items.get(index).ok_or_else(|| {
            DataError::Invalid(format!(
                "index {index} out of range 0..{}",
                self.items.len()
            ))
        })?;
        match &self.source {
            Source::Files => {
                let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
                Image::decode(&bytes, path)
            }
            Source::Archive(blobs) => Image::decode(&blobs[index], &self.shown(path)),
        }
    }
}

/// The real (canonical) directories a walk has read, with the path it first reached each by.
struct Visited(std::collections::HashMap<PathBuf, PathBuf>);

impl Visited {
    fn new(root: &Path) -> Result<Self, DataError> {
        let mut seen = Self(std::collections::HashMap::new());
        seen.enter(root)?;
        Ok(seen)
    }

    /// Records `dir`; an error if its real directory was read before under another path.
    fn enter(&mut self, dir: &Path) -> Result<(), DataError> {
        let real = std::fs::canonicalize(dir).map_err(|e| DataError::io(dir, e))?;
        if let Some(first) = self.0.get(&real) {
            return Err(DataError::BadFormat {
                path: dir.to_path_buf(),
                format: "an ImageFolder tree".into(),
                detail: format!(
                    "it is a link to {}, already read as {} (a loop or a duplicate would repeat its \
                     images under another label); remove the link",
                    real.display(),
                    first.display()
                ),
            });
        }
        self.0.insert(real, dir.to_path_buf());
        Ok(())
    }
}

fn collect_images(dir: &Path, out: &mut Vec<PathBuf>, seen: &mut Visited) -> Result<(), DataError> {
    seen.enter(dir)?;
    let mut entries = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| DataError::io(dir, e))? {
        entries.push(entry.map_err(|e| DataError::io(dir, e))?.path());
    }
    // Sorted, so that which of two links to one folder is "first" does not depend on the
    // file system's order.
    entries.sort();
    for path in entries {
        if is_hidden(&path) {
            continue;
        }
        if path.is_dir() {
            collect_images(&path, out, seen)?;
        } else if is_image(&path) {
            out.push(path);
        }
    }
    Ok(())
}

impl Dataset<ImageItem> for ImageFolder {
    fn get(&self, index: usize) -> Result<ImageItem, DatasetError> {
        Ok(self.load(index)?)
    }

    fn len(&self) -> usize {
        self.items.len()
    }
}

impl ClassificationDataset for ImageFolder {
    fn classes(&self) -> &[String] {
        &self.classes
    }

    fn label(&self, index: usize) -> Option<usize> {
        self.items.get(index).map(|(_, l)| *l)
    }

    /// The path below the root (for an archive, the path inside it), `/`-separated.
    fn source(&self, index: usize) -> Option<String> {
        let (path, _) = self.items.get(index)?;
        let rel = path.strip_prefix(&self.root).unwrap_or(path);
        let parts: Vec<_> = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect();
        Some(parts.join("/"))
    }
}
