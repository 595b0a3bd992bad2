//! Each parser on generated fixtures in its real format, each kind of bad input, the loader's
//! determinism, and the real data in ../shared when it is there.

use burn::data::dataloader::DataLoader;
use burn::data::dataset::Dataset;
use burn::prelude::*;
use ember_data::cifar::{CifarDataset, CifarVariant};
use ember_data::folder::ImageFolder;
use ember_data::idx::encode_idx;
use ember_data::loader::{ImageLoader, LoaderConfig};
use ember_data::mnist::{MnistDataset, MnistVariant};
use ember_data::split::train_val_split;
use ember_data::transform::{Preset, Stats, Transform};
use ember_data::{ClassificationDataset, DataError, ImageItem, Split};
use flate2::Compression;
use flate2::write::GzEncoder;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// Writes an MNIST-format split of `n` 28x28 images whose pixels encode their index.
fn write_mnist(dir: &Path, n: usize, gzip: bool, labels: impl Fn(usize) -> u8) {
    let pixels: Vec<u8> = (0..n * 784)
        .map(|i| ((i / 784) * 7 + i % 784) as u8)
        .collect();
    let lbl: Vec<u8> = (0..n).map(labels).collect();
    for (name, bytes) in [
        ("train-images-idx3-ubyte", encode_idx(&[n, 28, 28], &pixels)),
        ("train-labels-idx1-ubyte", encode_idx(&[n], &lbl)),
    ] {
        if gzip {
            std::fs::write(dir.join(format!("{name}.gz")), gz(&bytes)).unwrap();
        } else {
            std::fs::write(dir.join(name), bytes).unwrap();
        }
    }
}

#[test]
fn mnist_reads_gzipped_and_raw_idx() {
    for gzip in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        write_mnist(dir.path(), 5, gzip, |i| (i % 10) as u8);
        let ds = MnistDataset::load(dir.path(), MnistVariant::Digits, Split::Train).unwrap();
        assert_eq!(ds.len(), 5);
        let item = ds.get(3).unwrap();
        assert_eq!(item.label, 3);
        assert_eq!(item.image.shape_str(), "1x28x28");
        assert_eq!(item.image.at(0, 0, 1), (3 * 7 + 1) as f32 / 255.0);
        assert_eq!(ds.classes().len(), 10);
    }
    let fashion = MnistVariant::Fashion.classes();
    assert_eq!(fashion[9], "Ankle boot");
}

#[test]
fn mnist_bad_inputs_are_typed_errors_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let err = MnistDataset::load(dir.path(), MnistVariant::Digits, Split::Test).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, DataError::Missing { .. }));
    assert!(
        msg.contains("t10k-images-idx3-ubyte.gz") && msg.contains("t10k-labels-idx1-ubyte.gz"),
        "{msg}"
    );
    assert!(
        msg.contains(&dir.path().display().to_string()),
        "names the folder: {msg}"
    );

    write_mnist(dir.path(), 4, false, |i| i as u8);
    let images = dir.path().join("train-images-idx3-ubyte");
    let labels = dir.path().join("train-labels-idx1-ubyte");
    // truncated image file
    let bytes = std::fs::read(&images).unwrap();
    std::fs::write(&images, &bytes[..bytes.len() - 100]).unwrap();
    let e = MnistDataset::from_files(&images, &labels, MnistVariant::Digits).unwrap_err();
    assert!(
        matches!(e, DataError::Truncated { .. }) && e.to_string().contains("train-images"),
        "{e}"
    );
    // labels and images disagree in count
    std::fs::write(&images, encode_idx(&[3, 28, 28], &vec![0; 3 * 784])).unwrap();
    let e = MnistDataset::from_files(&images, &labels, MnistVariant::Digits).unwrap_err();
    assert!(e.to_string().contains("3 images but"), "{e}");
    // label out of range, naming the record
    std::fs::write(&images, encode_idx(&[4, 28, 28], &vec![0; 4 * 784])).unwrap();
    std::fs::write(&labels, encode_idx(&[4], &[1, 2, 12, 3])).unwrap();
    let e = MnistDataset::from_files(&images, &labels, MnistVariant::Digits).unwrap_err();
    assert!(
        matches!(
            e,
            DataError::LabelOutOfRange {
                index: 2,
                label: 12,
                ..
            }
        ),
        "{e}"
    );
    // swapped files: a label file where images belong
    let e = MnistDataset::from_files(&labels, &labels, MnistVariant::Digits).unwrap_err();
    assert!(
        e.to_string().contains("expected [count, rows, cols]"),
        "{e}"
    );
    // images of zero pixels (a header that declares 0 rows): an error, not an index panic
    std::fs::write(&images, encode_idx(&[4, 0, 28], &[])).unwrap();
    std::fs::write(&labels, encode_idx(&[4], &[1, 2, 3, 4])).unwrap();
    let e = MnistDataset::from_files(&images, &labels, MnistVariant::Digits).unwrap_err();
    assert!(
        matches!(e, DataError::BadFormat { .. }) && e.to_string().contains("0x28 pixels"),
        "{e}"
    );
    // a corrupt gzip
    std::fs::write(&images, [0x1f, 0x8b, 8, 0, 1, 2, 3]).unwrap();
    let e = MnistDataset::from_files(&images, &labels, MnistVariant::Digits).unwrap_err();
    assert!(e.to_string().contains("gzip"), "{e}");
}

/// A CIFAR record: label byte(s) then R, G, B planes.
fn cifar_record(labels: &[u8], fill: [u8; 3]) -> Vec<u8> {
    let mut r = labels.to_vec();
    for v in fill {
        r.extend(std::iter::repeat_n(v, 1024));
    }
    r
}

#[test]
fn cifar_binary_formats() {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("cifar-10-batches-bin");
    std::fs::create_dir(&bin).unwrap();
    for b in 1..=5u8 {
        let bytes: Vec<u8> = (0..2)
            .flat_map(|i| cifar_record(&[b + i], [b, 10 * b, 200]))
            .collect();
        std::fs::write(bin.join(format!("data_batch_{b}.bin")), bytes).unwrap();
    }
    // the parent folder or the folder itself both work
    for root in [dir.path(), bin.as_path()] {
        let ds = CifarDataset::load(root, CifarVariant::Cifar10, Split::Train).unwrap();
        assert_eq!(ds.len(), 10);
        let item = ds.get(2).unwrap(); // batch 2, first record
        assert_eq!(item.label, 2);
        assert_eq!(item.image.shape_str(), "3x32x32");
        assert_eq!(
            [
                item.image.at(0, 5, 5),
                item.image.at(1, 0, 31),
                item.image.at(2, 31, 0)
            ],
            [2.0 / 255.0, 20.0 / 255.0, 200.0 / 255.0]
        );
        assert_eq!(ds.classes()[2], "bird");
    }
    let e = CifarDataset::load(dir.path(), CifarVariant::Cifar10, Split::Test).unwrap_err();
    assert!(
        e.to_string().contains("test_batch.bin")
            && e.to_string().contains("cifar-10-binary.tar.gz"),
        "{e}"
    );

    // CIFAR-100: coarse then fine
    let rec = [
        cifar_record(&[3, 77], [1, 2, 3]),
        cifar_record(&[19, 99], [4, 5, 6]),
    ]
    .concat();
    let fine =
        CifarDataset::parse(&rec, Path::new("train.bin"), CifarVariant::Cifar100Fine).unwrap();
    let coarse =
        CifarDataset::parse(&rec, Path::new("train.bin"), CifarVariant::Cifar100Coarse).unwrap();
    assert_eq!(
        (fine.get(0).unwrap().label, fine.get(1).unwrap().label),
        (77, 99)
    );
    assert_eq!(
        (coarse.get(0).unwrap().label, coarse.get(1).unwrap().label),
        (3, 19)
    );
    assert_eq!(fine.classes()[99], "worm");
    assert_eq!(coarse.classes().len(), 20);

    // truncated and out-of-range
    let e = CifarDataset::parse(&rec[..5000], Path::new("t.bin"), CifarVariant::Cifar100Fine)
        .unwrap_err();
    assert!(
        matches!(e, DataError::Truncated { .. }) && e.to_string().contains("record 1"),
        "{e}"
    );
    let bad = cifar_record(&[10], [0, 0, 0]);
    let e = CifarDataset::parse(&bad, Path::new("b.bin"), CifarVariant::Cifar10).unwrap_err();
    assert!(
        matches!(
            e,
            DataError::LabelOutOfRange {
                label: 10,
                classes: 10,
                ..
            }
        ),
        "{e}"
    );
}

fn write_png(path: &Path, w: u32, h: u32, rgb: [u8; 3]) {
    let img = image::RgbImage::from_pixel(w, h, image::Rgb(rgb));
    img.save(path).unwrap();
}

fn folder_fixture() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (class, colour) in [("cat", [200, 10, 10]), ("ant", [10, 200, 10])] {
        let d = dir.path().join(class);
        std::fs::create_dir(&d).unwrap();
        for i in 0..3 {
            write_png(&d.join(format!("{i}.png")), 8, 6, colour);
        }
        std::fs::write(d.join("notes.txt"), "not an image").unwrap();
    }
    let grey = image::GrayImage::from_pixel(8, 6, image::Luma([128]));
    grey.save(dir.path().join("ant").join("grey.jpg")).unwrap();
    dir
}

#[test]
fn image_folder_from_a_directory_and_from_a_tar_gz() {
    let dir = folder_fixture();
    let ds = ImageFolder::open(dir.path()).unwrap();
    assert_eq!(
        ds.classes(),
        &["ant".to_string(), "cat".to_string()],
        "sorted folder names"
    );
    assert_eq!(ds.len(), 7, "text files are skipped");
    let first = ds.get(0).unwrap();
    assert_eq!(
        (first.label, first.image.shape_str()),
        (0, "3x6x8".to_string())
    );
    assert!((first.image.at(1, 0, 0) - 200.0 / 255.0).abs() < 1e-6);
    let grey = (0..ds.len())
        .find(|&i| ds.path(i).unwrap().ends_with("grey.jpg"))
        .unwrap();
    // In a colour folder a greyscale JPEG gets three equal channels (torchvision's
    // `convert("RGB")`), so that it can share a batch with the others.
    assert_eq!(ds.channels(), 3);
    let g = ds.get(grey).unwrap().image;
    assert_eq!(g.shape_str(), "3x6x8");
    assert!((0..6).all(|y| (0..8).all(|x| g.at(0, y, x) == g.at(2, y, x))));
    assert!(
        (g.at(1, 0, 0) - 128.0 / 255.0).abs() < 0.02,
        "{}",
        g.at(1, 0, 0)
    );

    // the same tree as a .tar.gz
    let archive = dir.path().join("..").join(format!(
        "{}.tar.gz",
        dir.path().file_name().unwrap().to_string_lossy()
    ));
    let file = std::fs::File::create(&archive).unwrap();
    let mut tar = tar::Builder::new(GzEncoder::new(file, Compression::fast()));
    tar.append_dir_all("data/train", dir.path()).unwrap();
    tar.into_inner().unwrap().finish().unwrap();
    let packed = ImageFolder::open(&archive).unwrap();
    assert_eq!(packed.classes(), ds.classes());
    assert_eq!(packed.len(), 7);
    for i in 0..7 {
        assert_eq!(packed.get(i).unwrap(), ds.get(i).unwrap());
    }
    std::fs::remove_file(archive).unwrap();
}

#[test]
fn image_folder_colour_modes_and_links() {
    // All greyscale: one channel, as MNIST saved as PNGs should be.
    let grey = tempfile::tempdir().unwrap();
    for class in ["0", "1"] {
        let d = grey.path().join(class);
        std::fs::create_dir(&d).unwrap();
        image::GrayImage::from_pixel(5, 4, image::Luma([9]))
            .save(d.join("a.png"))
            .unwrap();
    }
    let ds = ImageFolder::open(grey.path()).unwrap();
    assert_eq!(
        (ds.channels(), ds.get(1).unwrap().image.shape_str()),
        (1, "1x4x5".into())
    );
    // A colour image in a greyscale folder is an error naming that file, not a batch that
    // fails later with a shape mismatch.
    write_png(&grey.path().join("1").join("b.png"), 5, 4, [1, 2, 3]);
    let ds = ImageFolder::open(grey.path()).unwrap();
    let e = ds.get(2).unwrap_err().to_string();
    assert!(e.contains("b.png") && e.contains("greyscale"), "{e}");

    // A link back to the root (a loop) would repeat every image under another label.
    #[cfg(unix)]
    {
        let dir = folder_fixture();
        std::os::unix::fs::symlink("..", dir.path().join("cat").join("up")).unwrap();
        let e = ImageFolder::open(dir.path()).unwrap_err().to_string();
        assert!(e.contains("up") && e.contains("remove the link"), "{e}");
        std::fs::remove_file(dir.path().join("cat").join("up")).unwrap();
        // A link to a folder outside the tree is followed, as torchvision does.
        let outside = tempfile::tempdir().unwrap();
        write_png(&outside.path().join("x.png"), 8, 6, [0, 0, 255]);
        std::os::unix::fs::symlink(outside.path(), dir.path().join("cat").join("more")).unwrap();
        let ds = ImageFolder::open(dir.path()).unwrap();
        assert_eq!(ds.len(), 8);
        // Two links to one folder: the second would duplicate its images.
        std::os::unix::fs::symlink(outside.path(), dir.path().join("ant").join("again")).unwrap();
        let e = ImageFolder::open(dir.path()).unwrap_err().to_string();
        assert!(e.contains("again") && e.contains("already read"), "{e}");
    }
}

#[test]
fn image_folder_bad_inputs() {
    let dir = folder_fixture();
    std::fs::create_dir(dir.path().join("empty")).unwrap();
    let e = ImageFolder::open(dir.path()).unwrap_err();
    assert!(
        matches!(e, DataError::EmptyClass { .. }) && e.to_string().contains("empty"),
        "{e}"
    );
    std::fs::remove_dir(dir.path().join("empty")).unwrap();

    std::fs::write(
        dir.path().join("cat").join("broken.jpg"),
        b"these are not jpeg bytes",
    )
    .unwrap();
    let ds = ImageFolder::open(dir.path()).unwrap();
    let broken = (0..ds.len())
        .find(|&i| ds.path(i).unwrap().ends_with("broken.jpg"))
        .unwrap();
    let e = ds.load(broken).unwrap_err();
    assert!(
        matches!(e, DataError::NotAnImage { .. }) && e.to_string().contains("broken.jpg"),
        "{e}"
    );

    let empty = tempfile::tempdir().unwrap();
    assert!(matches!(
        ImageFolder::open(empty.path()),
        Err(DataError::NoClasses { .. })
    ));
    assert!(matches!(
        ImageFolder::open(&empty.path().join("nope")),
        Err(DataError::Missing { .. })
    ));
}

/// An in-memory dataset of distinguishable 3x8x8 images.
struct Toy(Vec<ImageItem>);

impl Dataset<ImageItem> for Toy {
    fn get(&self, index: usize) -> Result<ImageItem, burn::data::dataset::DatasetError> {
        Ok(self.0[index].clone())
    }
    fn len(&self) -> usize {
        self.0.len()
    }
}

fn toy(n: usize) -> Arc<Toy> {
    Arc::new(Toy((0..n)
        .map(|i| ImageItem {
            image: ember_data::Image::from_vec(
                3,
                8,
                8,
                (0..192)
                    .map(|p| ((p * 31 + i * 17) % 97) as f32 / 97.0)
                    .collect(),
            )
            .unwrap(),
            label: i % 4,
        })
        .collect()))
}

fn epoch_batches(loader: &ImageLoader) -> Vec<(Vec<f32>, Vec<i64>)> {
    loader
        .iter()
        .map(|b| {
            let b = b.unwrap();
            (
                b.images.into_data().try_to_vec::<f32>().unwrap(),
                b.targets
                    .into_data()
                    .convert::<i64>()
                    .try_to_vec::<i64>()
                    .unwrap(),
            )
        })
        .collect()
}

#[test]
fn device_slices_cut_one_shuffle_so_each_image_is_seen_once_per_epoch() {
    // Image i is the single value i, so a batch says which images it holds.
    let items = (0..41)
        .map(|i| ImageItem {
            image: ember_data::Image::from_vec(1, 1, 1, vec![i as f32]).unwrap(),
            label: 0,
        })
        .collect();
    let config = LoaderConfig {
        batch_size: 4,
        shuffle: true,
        seed: 3,
        workers: 1,
        drop_last: false,
        total_batches: None,
        shard: None,
    };
    let loader = ImageLoader::new(Arc::new(Toy(items)), vec![], config, Device::flex()).unwrap();
    loader.set_epoch(5);
    let loader: Arc<dyn DataLoader<ember_data::loader::ImageBatch>> = Arc::new(loader);
    // As Burn's multi-device strategy does: slice once, then iterate every slice each epoch.
    let devices = vec![Device::flex(); 2];
    let slices = burn::data::dataloader::split::split_dataloader(loader, &devices);
    let mut orders = Vec::new();
    for _ in 0..3 {
        let mut order = Vec::new();
        for slice in &slices {
            for batch in slice.iter() {
                let values = batch
                    .unwrap()
                    .images
                    .into_data()
                    .try_to_vec::<f32>()
                    .unwrap();
                order.extend(values.into_iter().map(|v| v as usize));
            }
        }
        let mut seen = order.clone();
        seen.sort_unstable();
        assert_eq!(
            seen,
            (0..41).collect::<Vec<_>>(),
            "each image once: {order:?}"
        );
        orders.push(order);
    }
    assert!(
        orders[0] != orders[1] && orders[1] != orders[2],
        "reshuffled each epoch"
    );
}

#[test]
fn shards_split_every_batch_of_the_single_process_in_order() {
    // Image i is the single value i; 10 images in batches of 4: 4, 4, 2; three ranks.
    let items: Vec<ImageItem> = (0..10)
        .map(|i| ImageItem {
            image: ember_data::Image::from_vec(1, 1, 1, vec![i as f32]).unwrap(),
            label: i % 3,
        })
        .collect();
    let batches = |shard| {
        let config = LoaderConfig {
            batch_size: 4,
            shuffle: true,
            seed: 9,
            workers: 1,
            drop_last: false,
            total_batches: None,
            shard,
        };
        let loader =
            ImageLoader::new(Arc::new(Toy(items.clone())), vec![], config, Device::flex()).unwrap();
        let mut iter = loader.iter();
        let mut out = Vec::new();
        for b in iter.by_ref() {
            let b = b.unwrap();
            let values = b.images.into_data().try_to_vec::<f32>().unwrap();
            let [n] = b.targets.dims();
            assert_eq!(n, values.len(), "one target per image");
            out.push(values.into_iter().map(|v| v as usize).collect::<Vec<_>>());
        }
        assert_eq!(
            iter.progress().items_processed,
            10,
            "progress counts whole batches"
        );
        out
    };
    let whole = batches(None);
    let parts: Vec<_> = (0..3).map(|r| batches(Some((r, 3)))).collect();
    for (i, batch) in whole.iter().enumerate() {
        let joined: Vec<usize> = parts.iter().flat_map(|p| p[i].clone()).collect();
        assert_eq!(&joined, batch, "batch {i}: the ranks' parts, in rank order");
    }
    // The short last batch of 2 leaves rank 0 without images: an empty batch, not an error.
    assert_eq!(parts[0][2].len(), 0);
    assert_eq!(
        ember_data::loader::shard_of(&[1, 2, 3, 4, 5], 1, 2),
        &[3, 4, 5][..]
    );
}

#[test]
fn loader_batches_depend_on_the_seed_not_on_the_workers() {
    let device = Device::flex();
    let transforms = Preset::Cifar.train([8, 8], &Stats::cifar10());
    let make = |workers, seed| {
        let config = LoaderConfig {
            batch_size: 6,
            shuffle: true,
            seed,
            workers,
            drop_last: false,
            total_batches: None,
            shard: None,
        };
        ImageLoader::new(toy(40), transforms.clone(), config, device.clone()).unwrap()
    };
    let one = make(1, 9);
    let reference: Vec<_> = (0..2).map(|_| epoch_batches(&one)).collect();
    assert_eq!(reference[0].len(), 7, "40 items in batches of 6");
    assert_eq!(reference[0][6].1.len(), 4, "the last batch keeps the rest");
    assert_ne!(
        reference[0], reference[1],
        "each epoch reshuffles and re-augments"
    );
    for workers in [0, 2, 3] {
        let loader = make(workers, 9);
        let got: Vec<_> = (0..2).map(|_| epoch_batches(&loader)).collect();
        assert_eq!(got, reference, "{workers} workers");
    }
    assert_ne!(epoch_batches(&make(1, 10)), reference[0], "another seed");

    // a resumed run: setting the epoch reproduces that epoch
    let resumed = make(2, 9);
    resumed.set_epoch(1);
    assert_eq!(epoch_batches(&resumed), reference[1]);
}

#[test]
fn loader_reports_items_of_the_wrong_size() {
    let mut items = toy(4).0.to_vec();
    items[2].image = ember_data::Image::zeros(3, 9, 8);
    let ds = Arc::new(Toy(items));
    let config = LoaderConfig {
        batch_size: 4,
        shuffle: false,
        seed: 0,
        workers: 1,
        drop_last: false,
        total_batches: None,
        shard: None,
    };
    let loader = ImageLoader::new(ds.clone(), vec![], config.clone(), Device::flex()).unwrap();
    let err = loader.iter().next().unwrap().unwrap_err().to_string();
    assert!(err.contains("item 2") && err.contains("3x9x8"), "{err}");
    // with a Resize the batch is fine
    let loader = ImageLoader::new(
        ds.clone(),
        vec![Transform::Resize { size: [8, 8] }],
        config.clone(),
        Device::flex(),
    )
    .unwrap();
    assert!(loader.iter().next().unwrap().is_ok());
    // a crop larger than the image names the item
    let loader = ImageLoader::new(
        ds,
        vec![Transform::CenterCrop { size: [10, 10] }],
        config,
        Device::flex(),
    )
    .unwrap();
    let err = loader.iter().next().unwrap().unwrap_err().to_string();
    assert!(
        err.contains("item 0") && err.contains("larger than the image"),
        "{err}"
    );
}

fn shared() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data");
    p.is_dir().then_some(p)
}

#[test]
fn real_mnist_from_shared_data() {
    let Some(data) = shared() else {
        eprintln!("../shared/data not present: skipped");
        return;
    };
    let train =
        MnistDataset::load(&data.join("mnist"), MnistVariant::Digits, Split::Train).unwrap();
    let test = MnistDataset::load(&data.join("mnist"), MnistVariant::Digits, Split::Test).unwrap();
    assert_eq!((train.len(), test.len()), (60_000, 10_000));
    let mut counts = [0usize; 10];
    (0..train.len()).for_each(|i| counts[train.label(i).unwrap()] += 1);
    assert_eq!(
        counts,
        [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    );
    let first = train.get(0).unwrap();
    assert_eq!(first.label, 5, "the famous first digit is a 5");
    let mean: f32 = (0..1000)
        .map(|i| train.get(i).unwrap().image.data.iter().sum::<f32>() / 784.0)
        .sum::<f32>()
        / 1000.0;
    assert!((mean - 0.1307).abs() < 0.01, "mean pixel {mean}");

    let (tr, va) = train_val_split(Arc::new(train), 0.1, 0, true).unwrap();
    assert_eq!((tr.len(), va.len()), (54_000, 6_000));
    let ones = (0..va.len()).filter(|&i| va.label(i) == Some(1)).count();
    assert_eq!(ones, 674, "stratified: round(6742 / 10)");
}

#[test]
fn real_cifar10_jpeg_archive_from_shared_data() {
    let Some(data) = shared() else {
        eprintln!("../shared/data not present: skipped");
        return;
    };
    let ds = ImageFolder::open(&data.join("cifar10/cifar10-train-jpg.tar.gz")).unwrap();
    assert_eq!(ds.len(), 50_000);
    assert_eq!(
        ds.classes(),
        &[
            "airplane",
            "automobile",
            "bird",
            "cat",
            "deer",
            "dog",
            "frog",
            "horse",
            "ship",
            "truck"
        ]
    );
    for i in [0, 12_345, 49_999] {
        let item = ds.get(i).unwrap();
        assert_eq!(item.image.shape_str(), "3x32x32");
        assert_eq!(item.label, i / 5000);
    }
}

/// Sizes an input claims are checked before they are trusted with memory: a tar entry whose
/// header claims a terabyte (a 200-byte archive), an IDX header that claims more than Ember
/// reads, and a gzip bomb behind a small IDX header. Each used to abort or exhaust memory.
#[test]
fn claimed_sizes_are_checked_before_allocation() {
    let dir = tempfile::tempdir().unwrap();
    // A tar header for `root/cat/1.png` that claims 1 TiB, followed by a few real bytes.
    let mut header = tar::Header::new_gnu();
    header.set_path("root/cat/1.png").unwrap();
    header.set_size(1 << 40);
    header.set_entry_type(tar::EntryType::Regular);
    header.set_cksum();
    let mut raw = header.as_bytes().to_vec();
    raw.extend_from_slice(&[0u8; 64]);
    let archive = dir.path().join("claims.tar.gz");
    std::fs::write(&archive, gz(&raw)).unwrap();
    assert!(std::fs::metadata(&archive).unwrap().len() < 400);
    let e = ImageFolder::open(&archive).unwrap_err();
    assert!(
        matches!(e, DataError::BadFormat { .. })
            && e.to_string().contains("1.png")
            && e.to_string().contains("claims"),
        "{e}"
    );

    // An IDX header claiming 2^17 x 2^17 x 2^2 = 64 GiB of pixels: refused from the header.
    let mut idx = vec![0, 0, 8, 3];
    for d in [1u32 << 17, 1 << 17, 4] {
        idx.extend_from_slice(&d.to_be_bytes());
    }
    let e = ember_data::idx::maybe_gunzip(gz(&idx), Path::new("huge.gz")).unwrap_err();
    assert!(
        e.to_string().contains("huge.gz") && e.to_string().contains("asks for"),
        "{e}"
    );
    let e = ember_data::idx::parse_idx(&idx, Path::new("huge.idx")).unwrap_err();
    assert!(e.to_string().contains("asks for"), "{e}");

    // A gzip bomb: a header for 10 bytes followed by 64 MiB of zeros (64 KiB compressed).
    let mut bomb = encode_idx(&[10], &[1; 10]);
    bomb.resize(bomb.len() + (64 << 20), 0);
    let packed = gz(&bomb);
    assert!(packed.len() < 1 << 20);
    let inflated = ember_data::idx::maybe_gunzip(packed.clone(), Path::new("bomb.gz")).unwrap();
    assert_eq!(
        inflated.len(),
        8 + 10 + 1,
        "reads the header's worth and one byte more"
    );
    let e = ember_data::idx::parse_idx(&inflated, Path::new("bomb.gz")).unwrap_err();
    assert!(e.to_string().contains("trailing"), "{e}");
}

/// CRC-32 (IEEE), as PNG chunks carry it.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[test]
fn an_image_claiming_a_huge_size_is_refused_before_decoding() {
    // A valid 4x3 PNG whose header is rewritten to claim 10,000 x 10,000 (300 MB of RGB,
    // 1.2 GB as f32; under the image crate's own 512 MiB default), with the header's checksum
    // fixed so that only the size is wrong: refused by its size, not found truncated after
    // the buffer for it was allocated.
    let mut png = Vec::new();
    image::RgbImage::from_pixel(4, 3, image::Rgb([1, 2, 3]))
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    assert_eq!(&png[12..16], b"IHDR");
    png[16..20].copy_from_slice(&10_000u32.to_be_bytes());
    png[20..24].copy_from_slice(&10_000u32.to_be_bytes());
    let crc = crc32(&png[12..29]);
    png[29..33].copy_from_slice(&crc.to_be_bytes());
    let e = ember_data::Image::decode(&png, Path::new("huge.png")).unwrap_err();
    assert!(
        matches!(e, DataError::NotAnImage { .. })
            && e.to_string().contains("huge.png")
            && e.to_string().contains("limit"),
        "{e}"
    );
    // The same file at its real size decodes.
    png[16..20].copy_from_slice(&4u32.to_be_bytes());
    png[20..24].copy_from_slice(&3u32.to_be_bytes());
    let crc = crc32(&png[12..29]);
    png[29..33].copy_from_slice(&crc.to_be_bytes());
    assert_eq!(
        ember_data::Image::decode(&png, Path::new("ok.png"))
            .unwrap()
            .shape_str(),
        "3x3x4"
    );
}

/// A run of a fractional number of epochs: with `total_batches` the loader yields full
/// epochs until the total is reached, then the rest of one, then nothing; `drop_last` drops
/// the short batch of every epoch.
#[test]
fn total_batches_cut_the_last_epoch_and_drop_last_the_short_batch() {
    let config = LoaderConfig {
        batch_size: 4,
        shuffle: true,
        seed: 1,
        workers: 1,
        drop_last: true,
        total_batches: Some(12),
        shard: None,
    };
    // 22 items: 5 full batches an epoch (the short one of 2 dropped); 12 = 5 + 5 + 2.
    let loader = ImageLoader::new(toy(22), vec![], config, Device::flex()).unwrap();
    assert_eq!(loader.num_batches(), 5);
    let sizes = |loader: &ImageLoader| -> Vec<usize> {
        loader
            .iter()
            .map(|b| b.unwrap().targets.dims()[0])
            .collect()
    };
    assert_eq!(sizes(&loader), [4; 5]);
    assert_eq!(sizes(&loader), [4; 5]);
    assert_eq!(sizes(&loader), [4; 2], "the last epoch stops at the total");
    assert!(sizes(&loader).is_empty());
    // A resumed run sets the epoch and gets the same cut.
    loader.set_epoch(2);
    assert_eq!(sizes(&loader), [4; 2]);
}
