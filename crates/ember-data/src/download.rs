//! Downloads with a progress bar, a published checksum and an atomic rename: the file appears
//! under its final name only once complete and verified, so a killed download never leaves a
//! file that looks whole.

use crate::DataError;
use indicatif::{ProgressBar, ProgressStyle};
use md5::{Digest, Md5};
use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;

/// A file to fetch.
#[derive(Debug, Clone)]
pub struct Remote {
    /// Full URL.
    pub url: String,
    /// File name to save it as.
    pub file: String,
    /// Published MD5 (hex).
    pub md5: String,
}

/// Whether downloads are allowed: `EMBER_OFFLINE=1` turns them off (tests, air-gapped runs).
pub fn downloads_enabled() -> bool {
    std::env::var("EMBER_OFFLINE").map_or(true, |v| v.is_empty() || v == "0")
}

/// Fetches `remote` into `dir` unless it is already there. On any failure nothing is left
/// under the final name, and the error names the URL and where to put the file by hand.
pub fn fetch(remote: &Remote, dir: &Path) -> Result<(), DataError> {
    let dest = dir.join(&remote.file);
    if dest.is_file() {
        return Ok(());
    }
    std::fs::create_dir_all(dir).map_err(|e| DataError::io(dir, e))?;
    let partial = dir.join(format!("{}.part", remote.file));
    let result = download_to(remote, &partial);
    match result {
        Ok(()) => std::fs::rename(&partial, &dest).map_err(|e| DataError::io(&dest, e)),
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            Err(e)
        }
    }
}

fn download_to(remote: &Remote, partial: &Path) -> Result<(), DataError> {
    let failed = |reason: String| DataError::Download {
        url: remote.url.clone(),
        reason,
        file: remote.file.clone(),
        dir: partial.parent().map(Path::to_path_buf).unwrap_or_default(),
    };
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_connect(Some(Duration::from_secs(15)))
        .timeout_recv_body(Some(Duration::from_secs(60)))
        .build()
        .into();
    let response = agent
        .get(&remote.url)
        .call()
        .map_err(|e| failed(e.to_string()))?;
    let body = response.into_body();
    let bar = match body.content_length() {
        Some(n) => ProgressBar::new(n),
        None => ProgressBar::no_length(),
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{msg} {wide_bar} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_message(remote.file.clone());
    let mut reader = body.into_reader();
    let mut file = std::fs::File::create(partial).map_err(|e| DataError::io(partial, e))?;
    let mut hasher = Md5::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = reader.read(&mut buf).map_err(|e| failed(e.to_string()))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        file.write_all(&buf[..n])
            .map_err(|e| DataError::io(partial, e))?;
        bar.inc(n as u64);
    }
    file.sync_all().map_err(|e| DataError::io(partial, e))?;
    bar.finish_and_clear();
    let digest: String = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    if digest != remote.md5 {
        return Err(failed(format!(
            "checksum mismatch: MD5 {digest}, published {}",
            remote.md5
        )));
    }
    Ok(())
}

/// Unpacks a `.tar.gz` into `dir`, refusing entries that would land outside it.
pub fn unpack(archive: &Path, dir: &Path) -> Result<(), DataError> {
    let file = std::fs::File::open(archive).map_err(|e| DataError::io(archive, e))?;
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(file));
    // `unpack` rejects `..` and absolute paths.
    tar.unpack(dir).map_err(|e| DataError::BadFormat {
        path: archive.to_path_buf(),
        format: "a readable .tar.gz".into(),
        detail: format!("{e} (delete it to download it again)"),
    })
}
