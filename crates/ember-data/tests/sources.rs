//! Datasets by name, offline behaviour, the shipped MNIST subset, and the augmentation grid.

use ember_data::grid::augmentation_grid;
use ember_data::transform::{Preset, Stats};
use ember_data::{DataError, DatasetSpec, Split};
use std::path::{Path, PathBuf};

#[test]
fn names_parse_as_the_cli_spells_them() {
    assert_eq!("mnist".parse(), Ok(DatasetSpec::Mnist));
    assert_eq!("Fashion_MNIST".parse(), Ok(DatasetSpec::FashionMnist));
    assert_eq!("cifar-10".parse(), Ok(DatasetSpec::Cifar10));
    assert_eq!("cifar100-coarse".parse(), Ok(DatasetSpec::Cifar100Coarse));
    assert_eq!(
        "folder:a/b".parse(),
        Ok(DatasetSpec::Folder(PathBuf::from("a/b")))
    );
    assert!("folder:".parse::<DatasetSpec>().is_err());
    let err = "imagenet".parse::<DatasetSpec>().unwrap_err();
    assert!(err.contains("unknown dataset `imagenet`"), "{err}");
    assert_eq!(DatasetSpec::Cifar10.to_string(), "cifar10");
}

#[test]
fn offline_a_missing_dataset_names_the_files_and_where_they_go() {
    // SAFETY of the test: only this test touches EMBER_OFFLINE in this binary.
    unsafe { std::env::set_var("EMBER_OFFLINE", "1") };
    let dir = tempfile::tempdir().unwrap();
    let err = DatasetSpec::Cifar10
        .open(Some(dir.path()), Split::Train)
        .err()
        .unwrap();
    let msg = err.to_string();
    assert!(matches!(err, DataError::Missing { .. }), "{msg}");
    assert!(
        msg.contains("data_batch_1.bin") && msg.contains("cifar-10-binary.tar.gz"),
        "{msg}"
    );
    let err = DatasetSpec::FashionMnist
        .open(Some(dir.path()), Split::Test)
        .err()
        .unwrap();
    assert!(err.to_string().contains("fashion-mnist.s3"), "{err}");
    assert!(
        std::fs::read_dir(dir.path()).unwrap().next().is_none(),
        "nothing written"
    );
}

fn subset() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/mnist-subset")
}

#[test]
fn the_shipped_mnist_subset_is_real_mnist() {
    let train = DatasetSpec::Mnist
        .open(Some(&subset()), Split::Train)
        .unwrap();
    let test = DatasetSpec::Mnist
        .open(Some(&subset()), Split::Test)
        .unwrap();
    assert_eq!((train.len(), test.len()), (6000, 1000));
    assert_eq!(train.label(0), Some(5));
    assert_eq!(test.label(0), Some(7), "the first test digit is a 7");
    for class in 0..10 {
        let n = (0..train.len())
            .filter(|&i| train.label(i) == Some(class))
            .count();
        assert!((500..700).contains(&n), "class {class}: {n}");
    }
}

#[test]
fn the_grid_is_reproducible_and_shows_the_originals_first() {
    let train = DatasetSpec::Mnist
        .open(Some(&subset()), Split::Train)
        .unwrap();
    let t = Preset::Cifar.train([28, 28], &Stats::mnist());
    let a = augmentation_grid(train.as_ref(), &[0, 1, 2], &t, 4, 7, 56).unwrap();
    let b = augmentation_grid(train.as_ref(), &[0, 1, 2], &t, 4, 7, 56).unwrap();
    let c = augmentation_grid(train.as_ref(), &[0, 1, 2], &t, 4, 8, 56).unwrap();
    assert_eq!(a, b, "same seed, same pixels");
    assert_ne!(a, c, "another seed, other augmentations");
    // 3 rows of 56 px cells (28 px scaled x2) plus 2 px gaps; 5 columns plus an extra gap
    assert_eq!((a.width(), a.height()), (5 * 56 + 7 * 2, 3 * 56 + 4 * 2));
    // the first cell is the original digit, scaled x2 (nearest neighbour)
    let first = train.get(0).unwrap().image;
    for (y, x) in [(10, 10), (14, 15), (20, 5)] {
        let expected = (first.at(0, y, x) * 255.0).round() as u8;
        assert_eq!(a.get_pixel(2 + 2 * x as u32, 2 + 2 * y as u32)[0], expected);
    }
}
