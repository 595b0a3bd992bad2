//! Downloads with a progress bar, a published checksum and an atomic rename: the file appears
//! under its final name only once complete and verified, so a killed download never leaves a
//! file that looks whole.

use crate::DataError;
use indicatif::{ProgressBar, ProgressStyle};
use md5::{Digest, Md5};
use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;

/// How long a download may receive nothing before it is given up.
pub const READ_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

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

/// MD5 of a file, as lowercase hex.
pub fn md5_file(path: &Path) -> Result<String, DataError> {
    let mut file = std::fs::File::open(path).map_err(|e| DataError::io(path, e))?;
    let mut hasher = Md5::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buf).map_err(|e| DataError::io(path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Fetches `remote` into `dir` unless it is already there. On any failure nothing is left
/// under the final name, and the error names the URL and where to put the file by hand.
/// A file already there (downloaded before, or put there by hand) is checked against the
/// published checksum too: a truncated or wrong file is named, not unpacked or trusted.
pub fn fetch(remote: &Remote, dir: &Path) -> Result<(), DataError> {
    let dest = dir.join(&remote.file);
    if dest.is_file() {
        let digest = md5_file(&dest)?;
        if digest != remote.md5 {
            return Err(DataError::BadFormat {
                path: dest,
                format: format!("{} (MD5 {})", remote.file, remote.md5),
                detail: format!(
                    "its MD5 is {digest}: truncated or another file; delete it to download it \
                     again, or fetch {} by hand",
                    remote.url
                ),
            });
        }
        return Ok(());
    }
    std::fs::create_dir_all(dir).map_err(|e| DataError::io(dir, e))?;
    let partial = dir.join(format!("{}.part", remote.file));
    let result = download_to(remote, &partial, &agent(READ_IDLE_TIMEOUT));
    match result {
        Ok(()) => std::fs::rename(&partial, &dest).map_err(|e| DataError::io(&dest, e)),
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            Err(e)
        }
    }
}

/// The HTTP client: timeouts for connecting and for the response's head, and an idle limit
/// (`idle` without a byte), not a total one, on the body: CIFAR's 163 MB may take many minutes
/// on a slow link, but a link that sends nothing for a minute is dead.
fn agent(idle: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_connect(Some(Duration::from_secs(15)))
        .timeout_recv_response(Some(Duration::from_secs(60)))
        .timeout_per_read(Some(idle))
        .build()
        .into()
}

fn download_to(remote: &Remote, partial: &Path, agent: &ureq::Agent) -> Result<(), DataError> {
    let failed = |reason: String| DataError::Download {
        url: remote.url.clone(),
        reason,
        file: remote.file.clone(),
        dir: partial.parent().map(Path::to_path_buf).unwrap_or_default(),
    };
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
    let digest = hex(&hasher.finalize());
    if digest != remote.md5 {
        return Err(failed(format!(
            "checksum mismatch: MD5 {digest}, published {}",
            remote.md5
        )));
    }
    Ok(())
}

/// Unpacks a `.tar.gz` into `dir`, atomically: into a temporary folder in `dir` first, then
/// each top-level entry renamed into place, so a killed or failed unpack never leaves a folder
/// that looks complete. An entry that would land outside `dir` (an absolute path, `..`, a link
/// whose target leaves the tree) is an error naming it: the `tar` crate skips such entries
/// silently, which would give a dataset with files missing.
pub fn unpack(archive: &Path, dir: &Path) -> Result<(), DataError> {
    let bad = |detail: String| DataError::BadFormat {
        path: archive.to_path_buf(),
        format: "a readable .tar.gz".into(),
        detail: format!("{detail} (delete it to download it again)"),
    };
    let staging = dir.join(format!(".unpack-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir_all(&staging).map_err(|e| DataError::io(&staging, e))?;
    let result = (|| {
        let file = std::fs::File::open(archive).map_err(|e| DataError::io(archive, e))?;
        let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(file));
        for entry in tar.entries().map_err(|e| bad(e.to_string()))? {
            let mut entry = entry.map_err(|e| bad(e.to_string()))?;
            let path = entry.path().map_err(|e| bad(e.to_string()))?.into_owned();
            let inside = |p: &Path| escapes(p).is_none();
            if let Some(why) = escapes(&path) {
                return Err(bad(format!("entry {} {why}", path.display())));
            }
            let kind = entry.header().entry_type();
            if kind.is_symlink() || kind.is_hard_link() {
                let target = entry
                    .link_name()
                    .map_err(|e| bad(e.to_string()))?
                    .map(|t| t.into_owned())
                    .unwrap_or_default();
                // A symlink's target is relative to the link's folder; a hard link's to the root.
                let resolved = if kind.is_symlink() {
                    path.parent().unwrap_or(Path::new("")).join(&target)
                } else {
                    target.clone()
                };
                if target.is_absolute() || !inside(&resolved) {
                    return Err(bad(format!(
                        "entry {} links to {}, outside the archive's folder",
                        path.display(),
                        target.display()
                    )));
                }
            }
            entry
                .unpack_in(&staging)
                .map_err(|e| bad(format!("entry {}: {e}", path.display())))?;
        }
        // Into place: each top-level entry by one rename.
        for top in std::fs::read_dir(&staging).map_err(|e| DataError::io(&staging, e))? {
            let top = top.map_err(|e| DataError::io(&staging, e))?;
            let dest = dir.join(top.file_name());
            if dest.exists() {
                std::fs::remove_dir_all(&dest)
                    .or_else(|_| std::fs::remove_file(&dest))
                    .map_err(|e| DataError::io(&dest, e))?;
            }
            std::fs::rename(top.path(), &dest).map_err(|e| DataError::io(&dest, e))?;
        }
        Ok(())
    })();
    let _ = std::fs::remove_dir_all(&staging);
    result
}

/// Why `path` (inside an archive) would not stay inside the folder it is unpacked into, if it
/// would not: absolute, or more `..` than folders at some point.
fn escapes(path: &Path) -> Option<&'static str> {
    use std::path::Component;
    let mut depth = 0usize;
    for c in path.components() {
        match c {
            Component::Prefix(_) | Component::RootDir => return Some("is an absolute path"),
            Component::ParentDir if depth == 0 => return Some("climbs out with '..'"),
            Component::ParentDir => depth -= 1,
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader};
    use std::net::TcpListener;
    use std::time::Instant;

    /// A one-shot HTTP server on 127.0.0.1 that sends `body` in pieces of `chunk` bytes with
    /// `gap` between them, after `stall_after` bytes waiting `stall` once. Returns its URL.
    fn slow_server(
        body: &'static [u8],
        chunk: usize,
        gap: Duration,
        stall_after: usize,
        stall: Duration,
    ) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/file.bin", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes());
            for (i, piece) in body.chunks(chunk).enumerate() {
                if i * chunk == stall_after {
                    std::thread::sleep(stall);
                }
                if stream
                    .write_all(piece)
                    .and_then(|_| stream.flush())
                    .is_err()
                {
                    return;
                }
                std::thread::sleep(gap);
            }
        });
        url
    }

    fn remote(url: String, body: &[u8]) -> Remote {
        Remote {
            url,
            file: "file.bin".into(),
            md5: hex(&Md5::digest(body)),
        }
    }

    /// No proxy: the test server is local, whatever the machine's proxy settings.
    fn local_agent(idle: Duration) -> ureq::Agent {
        ureq::Agent::config_builder()
            .timeout_per_read(Some(idle))
            .proxy(None)
            .build()
            .into()
    }

    #[test]
    fn a_slow_download_is_limited_by_idle_time_not_by_total_time() {
        let dir = tempfile::tempdir().unwrap();
        let partial = dir.path().join("file.bin.part");
        const BODY: &[u8] = b"0123456789";
        // Ten bytes, 250 ms apart: 2.5 s in all, never 1 s without a byte.
        let url = slow_server(
            BODY,
            1,
            Duration::from_millis(250),
            usize::MAX,
            Duration::ZERO,
        );
        let started = Instant::now();
        download_to(
            &remote(url, BODY),
            &partial,
            &local_agent(Duration::from_secs(1)),
        )
        .unwrap();
        assert!(
            started.elapsed() > Duration::from_secs(2),
            "the whole body was awaited"
        );
        assert_eq!(std::fs::read(&partial).unwrap(), BODY);

        // A link that goes silent for longer than the idle limit is given up, with the URL.
        let url = slow_server(BODY, 1, Duration::ZERO, 4, Duration::from_secs(4));
        let started = Instant::now();
        let err = download_to(
            &remote(url.clone(), BODY),
            &partial,
            &local_agent(Duration::from_secs(1)),
        )
        .unwrap_err()
        .to_string();
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "gave up after the idle limit"
        );
        assert!(err.contains(&url), "{err}");
    }
}
