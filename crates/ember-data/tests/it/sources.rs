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

/// A `.tar.gz` with entries written byte by byte: the `tar` crate's builder refuses the
/// hostile names this test needs.
fn raw_tar_gz(path: &Path, entries: &[(&str, tar::EntryType, &str, &[u8])]) {
    let mut out = Vec::new();
    for (name, kind, link, data) in entries {
        let mut header = tar::Header::new_old();
        header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        header.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
        header.set_entry_type(*kind);
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.resize(out.len() + 1024, 0);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &out).unwrap();
    std::fs::write(path, gz.finish().unwrap()).unwrap();
}

#[test]
fn unpacking_is_atomic_and_refuses_entries_that_leave_the_folder() {
    use ember_data::download::unpack;
    use tar::EntryType::{Regular, Symlink};
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("data");
    std::fs::create_dir(&target).unwrap();
    let archive = dir.path().join("a.tar.gz");

    raw_tar_gz(
        &archive,
        &[
            ("set/a.bin", Regular, "", b"aaaa"),
            ("set/sub/b.bin", Regular, "", b"bb"),
        ],
    );
    unpack(&archive, &target).unwrap();
    assert_eq!(std::fs::read(target.join("set/sub/b.bin")).unwrap(), b"bb");
    let left: Vec<_> = std::fs::read_dir(&target)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, ["set"], "no staging folder left behind");

    for (entries, says) in [
        (
            vec![
                ("set/ok.bin", Regular, "", &b"x"[..]),
                ("../evil.bin", Regular, "", &b"x"[..]),
            ],
            "'..'",
        ),
        (vec![("set/../../evil.bin", Regular, "", &b"x"[..])], "'..'"),
        (vec![("/tmp/evil.bin", Regular, "", &b"x"[..])], "absolute"),
        (
            vec![("set/up", Symlink, "../../outside", &b""[..])],
            "outside",
        ),
        (
            vec![("set/abs", Symlink, "/etc/passwd", &b""[..])],
            "outside",
        ),
    ] {
        let fresh = dir.path().join("fresh");
        let _ = std::fs::remove_dir_all(&fresh);
        std::fs::create_dir(&fresh).unwrap();
        raw_tar_gz(&archive, &entries);
        let e = unpack(&archive, &fresh).unwrap_err().to_string();
        assert!(e.contains(says) && e.contains("a.tar.gz"), "{e}");
        // Nothing half-unpacked under the final names, no staging folder.
        assert_eq!(std::fs::read_dir(&fresh).unwrap().count(), 0, "{entries:?}");
    }
    assert!(!dir.path().join("evil.bin").exists());
    // A link that stays inside is fine.
    raw_tar_gz(
        &archive,
        &[
            ("set2/a.bin", Regular, "", b"aaaa"),
            ("set2/sub/link", Symlink, "../a.bin", b""),
        ],
    );
    unpack(&archive, &target).unwrap();
}

#[test]
fn a_file_put_there_by_hand_is_checked_against_the_published_checksum() {
    use ember_data::download::{Remote, fetch, md5_file};
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("set.tar.gz");
    std::fs::write(&file, b"the first half of a download").unwrap();
    let remote = |md5: String| Remote {
        url: "https://example.invalid/set.tar.gz".into(),
        file: "set.tar.gz".into(),
        md5,
    };
    // md5("") is d41d8cd98f00b204e9800998ecf8427e; anything else fails the check, offline.
    let e = fetch(
        &remote("d41d8cd98f00b204e9800998ecf8427e".into()),
        dir.path(),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("set.tar.gz") && e.contains("delete it"), "{e}");
    assert!(file.is_file(), "the user's file is not deleted");
    let right = md5_file(&file).unwrap();
    assert_eq!(right.len(), 32);
    fetch(&remote(right), dir.path()).unwrap();
}

#[test]
fn every_named_dataset_is_one_table_entry_that_names_parses_and_opens_it() {
    use ember_data::source::DATASETS;
    let mut names = std::collections::BTreeSet::new();
    for d in DATASETS {
        assert_eq!(d.spec.info().map(|i| i.name), Some(d.name));
        assert_eq!(d.spec.to_string(), d.name);
        for spelling in std::iter::once(&d.name).chain(d.aliases) {
            assert!(names.insert(*spelling), "`{spelling}` names two datasets");
            assert_eq!(
                spelling.parse::<ember_data::DatasetSpec>(),
                Ok(d.spec.clone())
            );
        }
        assert!(d.spec.default_dir().ends_with(d.dir_name));
        assert_eq!(d.spec.stats(), (d.stats)());
    }
    assert_eq!(DATASETS.len(), 5);
    assert_eq!(
        ember_data::DatasetSpec::names(),
        "mnist, fashion-mnist, cifar10, cifar100, cifar100-coarse or folder:PATH"
    );
}
