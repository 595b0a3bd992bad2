//! The image type the transforms work on: float channel planes in [0, 1].

use crate::DataError;
use std::path::Path;

/// The longest side of an image Ember decodes (pixels): larger than any photo a CNN trains on.
pub const MAX_IMAGE_SIDE: u32 = 16384;

/// The most bytes the decoder may allocate for one image (128 MiB: a 6,500 x 6,500 RGB photo).
pub const MAX_DECODE_BYTES: u64 = 128 << 20;

/// An image as `C x H x W` float planes, values in [0, 1] until normalised.
#[derive(Debug, Clone, PartialEq)]
pub struct Image {
    /// Channels (1 for grey, 3 for RGB).
    pub channels: usize,
    /// Rows.
    pub height: usize,
    /// Columns.
    pub width: usize,
    /// `channels * height * width` values, channel-major (CHW).
    pub data: Vec<f32>,
}

/// One labelled image.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageItem {
    /// The image.
    pub image: Image,
    /// Class index.
    pub label: usize,
}

impl Image {
    /// An image of zeros.
    pub fn zeros(channels: usize, height: usize, width: usize) -> Self {
        Self {
            channels,
            height,
            width,
            data: vec![0.0; channels * height * width],
        }
    }

    /// From float CHW data; `None` if the length does not match.
    pub fn from_vec(channels: usize, height: usize, width: usize, data: Vec<f32>) -> Option<Self> {
        (data.len() == channels * height * width).then_some(Self {
            channels,
            height,
            width,
            data,
        })
    }

    /// From bytes laid out as planes (CHW), as MNIST and CIFAR store them; 255 -> 1.0.
    pub fn from_planar_u8(channels: usize, height: usize, width: usize, bytes: &[u8]) -> Self {
        debug_assert_eq!(bytes.len(), channels * height * width);
        Self {
            channels,
            height,
            width,
            data: bytes.iter().map(|&b| b as f32 / 255.0).collect(),
        }
    }

    /// From interleaved bytes (HWC), as image decoders give them.
    pub fn from_interleaved_u8(channels: usize, height: usize, width: usize, bytes: &[u8]) -> Self {
        let mut img = Self::zeros(channels, height, width);
        let plane = height * width;
        for (i, px) in bytes.chunks_exact(channels).enumerate() {
            for (c, &b) in px.iter().enumerate() {
                img.data[c * plane + i] = b as f32 / 255.0;
            }
        }
        img
    }

    /// Decodes a JPEG or PNG: grey images stay one channel, everything else becomes RGB.
    /// The size a file claims is checked before the decoder allocates for it (at most
    /// [`MAX_IMAGE_SIDE`] pixels a side and [`MAX_DECODE_BYTES`] decoded): a 100-byte PNG
    /// can claim a 16k x 16k image, 3 GB once Ember holds it as f32.
    pub fn decode(bytes: &[u8], path: &Path) -> Result<Self, DataError> {
        let bad = |reason: String| DataError::NotAnImage {
            path: path.to_path_buf(),
            reason,
        };
        let mut reader = image::ImageReader::new(std::io::Cursor::new(bytes))
            .with_guessed_format()
            .map_err(|e| bad(e.to_string()))?;
        let mut limits = image::Limits::default();
        limits.max_image_width = Some(MAX_IMAGE_SIDE);
        limits.max_image_height = Some(MAX_IMAGE_SIDE);
        limits.max_alloc = Some(MAX_DECODE_BYTES);
        reader.limits(limits);
        let decoded = reader.decode().map_err(|e| bad(e.to_string()))?;
        let (w, h) = (decoded.width() as usize, decoded.height() as usize);
        Ok(match decoded.color().channel_count() {
            1 | 2 => Self::from_interleaved_u8(1, h, w, decoded.to_luma8().as_raw()),
            _ => Self::from_interleaved_u8(3, h, w, decoded.to_rgb8().as_raw()),
        })
    }

    /// `"3x32x32"`.
    pub fn shape_str(&self) -> String {
        format!("{}x{}x{}", self.channels, self.height, self.width)
    }

    /// Value at channel `c`, row `y`, column `x`.
    #[inline]
    pub fn at(&self, c: usize, y: usize, x: usize) -> f32 {
        self.data[(c * self.height + y) * self.width + x]
    }

    /// Mutable value at channel `c`, row `y`, column `x`.
    #[inline]
    pub fn at_mut(&mut self, c: usize, y: usize, x: usize) -> &mut f32 {
        &mut self.data[(c * self.height + y) * self.width + x]
    }

    /// Interleaved RGB bytes (grey replicated), clamped to [0, 1] then scaled to 0..=255.
    pub fn to_rgb8(&self) -> Vec<u8> {
        let plane = self.height * self.width;
        let mut out = Vec::with_capacity(plane * 3);
        for i in 0..plane {
            for c in 0..3 {
                let ch = if self.channels >= 3 { c } else { 0 };
                let v = self.data[ch * plane + i].clamp(0.0, 1.0);
                out.push((v * 255.0).round() as u8);
            }
        }
        out
    }
}
