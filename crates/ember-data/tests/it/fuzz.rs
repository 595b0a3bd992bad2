//! Fuzz targets (proptest): the IDX and CIFAR parsers and the ImageFolder decoder return an
//! error, never a panic, on any bytes, including mutations of valid files.
//! `PROPTEST_CASES=100000 cargo test --workspace --test fuzz` fuzzes longer.

use ember_data::Image;
use ember_data::cifar::{CifarDataset, CifarVariant};
use ember_data::idx::{encode_idx, maybe_gunzip, parse_idx};
use proptest::prelude::*;
use std::path::Path;

fn valid_idx() -> Vec<u8> {
    encode_idx(&[3, 4, 5], &(0..60).collect::<Vec<u8>>())
}

fn valid_cifar() -> Vec<u8> {
    let mut rec = vec![7u8];
    rec.extend((0..3072).map(|i| (i % 251) as u8));
    rec.repeat(2)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn idx_never_panics_on_random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = parse_idx(&bytes, Path::new("fuzz.idx"));
        let _ = maybe_gunzip(bytes, Path::new("fuzz.gz"));
    }

    #[test]
    fn idx_never_panics_on_mutated_files(edits in proptest::collection::vec((0usize..80, any::<u8>()), 1..6), cut in 0usize..80) {
        let mut bytes = valid_idx();
        for (at, v) in edits {
            let i = at % bytes.len();
            bytes[i] = v;
        }
        bytes.truncate(cut.max(1).min(bytes.len()));
        if let Ok(a) = parse_idx(&bytes, Path::new("fuzz.idx")) {
            prop_assert_eq!(a.data.len(), a.dims.iter().product::<usize>());
        }
    }

    #[test]
    fn cifar_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..7000), coarse in any::<bool>()) {
        let variant = if coarse { CifarVariant::Cifar100Coarse } else { CifarVariant::Cifar10 };
        let _ = CifarDataset::parse(&bytes, Path::new("fuzz.bin"), variant);
    }

    #[test]
    fn cifar_mutations_are_parsed_or_rejected(label in any::<u8>(), cut in 0usize..6200) {
        let mut bytes = valid_cifar();
        bytes[3073] = label;
        bytes.truncate(cut);
        match CifarDataset::parse(&bytes, Path::new("fuzz.bin"), CifarVariant::Cifar10) {
            Ok(ds) => {
                prop_assert_eq!(bytes.len() % 3073, 0);
                prop_assert!(label < 10 || bytes.len() < 2 * 3073);
                use burn::data::dataset::Dataset;
                prop_assert_eq!(ds.len(), bytes.len() / 3073);
            }
            Err(e) => prop_assert!(e.to_string().contains("fuzz.bin")),
        }
    }

    #[test]
    fn image_decoding_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = Image::decode(&bytes, Path::new("fuzz.png"));
    }
}
