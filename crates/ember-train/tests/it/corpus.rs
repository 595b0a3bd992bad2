//! Replays the fuzz corpus (`fuzz/corpus/<target>/`: the seeds, what cargo-fuzz kept, and the
//! inputs that once crashed a parser) through the same checks the fuzz targets make
//! (`fuzz/targets.rs`): CI proves every committed input still gets an answer, not a panic,
//! without fuzzing.

#[path = "../../../../fuzz/targets.rs"]
mod targets;

use std::path::PathBuf;

fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect()
}

fn replay(target: &str, run: fn(&[u8])) {
    let inputs = corpus(target);
    assert!(
        inputs.iter().any(|(p, _)| p
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("seed-")),
        "{target}: the seeds are missing"
    );
    for (path, bytes) in inputs {
        let outcome = std::panic::catch_unwind(|| run(&bytes));
        assert!(outcome.is_ok(), "{target}: {} panicked", path.display());
    }
}

#[test]
fn the_fuzz_corpus_replays_without_a_panic() {
    replay("idx", targets::idx);
    replay("cifar", targets::cifar);
    replay("image", targets::image);
    replay("archive", targets::archive);
    replay("config", targets::config);
    replay("run_json", targets::run_json);
    replay("space", targets::space);
    replay("trials", targets::trials);
    replay("weights", targets::weights);
}
