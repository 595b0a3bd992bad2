//! The IDX format of MNIST and Fashion-MNIST (LeCun's `*-ubyte` files), gzipped or not.
//!
//! Layout: two zero bytes, a type byte (0x08 = unsigned byte), the number of dimensions, one
//! big-endian u32 per dimension, then the data in row-major order. Written by hand because it
//! is 40 lines and no maintained crate reads it with errors that name the file.

use crate::DataError;
use flate2::read::GzDecoder;
use std::io::Read;
use std::path::Path;

/// A parsed IDX array of bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct IdxArray {
    /// Sizes of each dimension, e.g. `[60000, 28, 28]`.
    pub dims: Vec<usize>,
    /// `dims.iter().product()` bytes.
    pub data: Vec<u8>,
}

/// Reads an IDX file, decompressing it first if it starts with the gzip magic number.
pub fn read_idx(path: &Path) -> Result<IdxArray, DataError> {
    let raw = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
    let bytes = maybe_gunzip(raw, path)?;
    parse_idx(&bytes, path)
}

/// The largest IDX body Ember reads: 4 GiB, several times any real IDX dataset (EMNIST's
/// largest file is about 700 MB). A header that claims more is refused before anything is
/// decompressed or allocated.
pub const MAX_IDX_BYTES: usize = 1 << 32;

/// Gunzips `raw` if it is gzip data (magic `1f 8b`), else returns it unchanged.
///
/// Streams: decompresses the IDX header first and then no more than the header's dimensions
/// ask for (plus one byte, so that trailing data is still reported by [`parse_idx`]), so a
/// small file that inflates to gigabytes (a gzip bomb) costs nothing.
pub fn maybe_gunzip(raw: Vec<u8>, path: &Path) -> Result<Vec<u8>, DataError> {
    if !raw.starts_with(&[0x1f, 0x8b]) {
        return Ok(raw);
    }
    let broken = |e: std::io::Error| DataError::BadFormat {
        path: path.to_path_buf(),
        format: "a readable gzip file".into(),
        detail: format!("{e} (the download may be incomplete: delete it and fetch it again)"),
    };
    let mut gz = GzDecoder::new(raw.as_slice());
    let mut out = Vec::new();
    // The 4-byte magic, then one u32 per dimension (at most 255 of them).
    (&mut gz).take(4).read_to_end(&mut out).map_err(broken)?;
    if out.len() == 4 {
        let ndims = out[3] as u64;
        (&mut gz)
            .take(4 * ndims)
            .read_to_end(&mut out)
            .map_err(broken)?;
    }
    let limit = idx_body_len(&out, path)?.map_or(0, |body| body as u64 + 1);
    (&mut gz)
        .take(limit)
        .read_to_end(&mut out)
        .map_err(broken)?;
    Ok(out)
}

/// The body length that a complete IDX header asks for (None if `header` is not complete yet);
/// an error if it overflows or exceeds [`MAX_IDX_BYTES`].
fn idx_body_len(header: &[u8], path: &Path) -> Result<Option<usize>, DataError> {
    if header.len() < 4 || header.len() < 4 + 4 * header[3] as usize {
        return Ok(None);
    }
    let dims = header[4..4 + 4 * header[3] as usize]
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize);
    let mut total = 1usize;
    for d in dims {
        total = total.saturating_mul(d);
    }
    if total > MAX_IDX_BYTES {
        return Err(DataError::BadFormat {
            path: path.to_path_buf(),
            format: "an IDX file".into(),
            detail: format!(
                "its header asks for {total} data bytes, more than the {MAX_IDX_BYTES} Ember reads (a damaged or hostile file)"
            ),
        });
    }
    Ok(Some(total))
}

/// Parses IDX bytes; `path` only names the file in errors.
pub fn parse_idx(bytes: &[u8], path: &Path) -> Result<IdxArray, DataError> {
    let bad = |detail: String| DataError::BadFormat {
        path: path.to_path_buf(),
        format: "an IDX file".into(),
        detail,
    };
    if bytes.len() < 4 {
        return Err(DataError::Truncated {
            path: path.to_path_buf(),
            detail: format!("{} bytes, shorter than the 4-byte IDX header", bytes.len()),
        });
    }
    if bytes[0] != 0 || bytes[1] != 0 {
        return Err(bad(format!(
            "magic number starts with {:#04x} {:#04x}, expected 0x00 0x00",
            bytes[0], bytes[1]
        )));
    }
    if bytes[2] != 0x08 {
        return Err(bad(format!(
            "element type {:#04x}; only unsigned bytes (0x08) are supported",
            bytes[2]
        )));
    }
    let ndims = bytes[3] as usize;
    if ndims == 0 || ndims > 4 {
        return Err(bad(format!("{ndims} dimensions; expected 1 to 4")));
    }
    let header = 4 + 4 * ndims;
    if bytes.len() < header {
        return Err(DataError::Truncated {
            path: path.to_path_buf(),
            detail: format!(
                "{} bytes, shorter than its {header}-byte header",
                bytes.len()
            ),
        });
    }
    let dims: Vec<usize> = bytes[4..header]
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize)
        .collect();
    let expected = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| bad(format!("dimensions {dims:?} overflow")))?;
    idx_body_len(&bytes[..header], path)?;
    let body = bytes.len() - header;
    if body < expected {
        return Err(DataError::Truncated {
            path: path.to_path_buf(),
            detail: format!(
                "dimensions {dims:?} need {expected} data bytes, found {body} (record {} is incomplete)",
                body / dims[1..].iter().product::<usize>().max(1)
            ),
        });
    }
    if body > expected {
        return Err(bad(format!(
            "dimensions {dims:?} need {expected} data bytes, found {body}: trailing data"
        )));
    }
    Ok(IdxArray {
        dims,
        data: bytes[header..].to_vec(),
    })
}

/// Encodes bytes as an IDX file (for fixtures and the shipped subset).
pub fn encode_idx(dims: &[usize], data: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0, 0x08, dims.len() as u8];
    for &d in dims {
        out.extend_from_slice(&(d as u32).to_be_bytes());
    }
    out.extend_from_slice(data);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_every_malformation_is_an_error() {
        let p = Path::new("x.idx");
        let data: Vec<u8> = (0..24).collect();
        let bytes = encode_idx(&[2, 3, 4], &data);
        assert_eq!(
            parse_idx(&bytes, p).unwrap(),
            IdxArray {
                dims: vec![2, 3, 4],
                data: data.clone()
            }
        );
        // truncated body, header, magic, type, rank, trailing data
        assert!(matches!(
            parse_idx(&bytes[..20], p),
            Err(DataError::Truncated { .. })
        ));
        assert!(matches!(
            parse_idx(&bytes[..6], p),
            Err(DataError::Truncated { .. })
        ));
        assert!(matches!(
            parse_idx(&bytes[..2], p),
            Err(DataError::Truncated { .. })
        ));
        let mut b = bytes.clone();
        b[0] = 1;
        assert!(matches!(parse_idx(&b, p), Err(DataError::BadFormat { .. })));
        let mut b = bytes.clone();
        b[2] = 0x0d;
        let e = parse_idx(&b, p).unwrap_err().to_string();
        assert!(e.contains("x.idx") && e.contains("0x0d"), "{e}");
        let mut b = bytes.clone();
        b[3] = 9;
        assert!(parse_idx(&b, p).is_err());
        let mut b = bytes.clone();
        b.push(0);
        assert!(
            parse_idx(&b, p)
                .unwrap_err()
                .to_string()
                .contains("trailing")
        );
        // dims whose product overflows
        let huge = encode_idx(
            &[u32::MAX as usize, u32::MAX as usize, u32::MAX as usize],
            &[],
        );
        assert!(parse_idx(&huge, p).is_err());
    }
}
