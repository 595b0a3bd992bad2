//! A picture of what augmentation does: originals in the first column, augmented versions
//! (one per epoch) beside them.

use crate::transform::{Transform, apply_all, displayable};
use crate::{DataError, Image, ImageItem};
use burn::data::dataset::Dataset;
use image::{Rgb, RgbImage};

/// Renders `rows` items (chosen by `indices`) with `versions` augmented copies each.
/// Each cell is scaled up (nearest neighbour) to at least `min_cell` pixels.
pub fn augmentation_grid(
    dataset: &dyn Dataset<ImageItem>,
    indices: &[usize],
    transforms: &[Transform],
    versions: usize,
    seed: u64,
    min_cell: usize,
) -> Result<RgbImage, DataError> {
    // Show images in [0, 1]: undo the pipeline's normalisation at the end.
    let shown = |img: Image| displayable(transforms, img);
    let mut rows: Vec<Vec<Image>> = Vec::new();
    for &index in indices {
        let item = dataset
            .get(index)
            .map_err(|e| DataError::Invalid(format!("item {index}: {e}")))?;
        let mut row = vec![item.image.clone()];
        for epoch in 0..versions {
            let out = apply_all(
                transforms,
                item.image.clone(),
                seed,
                epoch as u64,
                index as u64,
            )
            .map_err(|e| DataError::Invalid(format!("item {index}: {e}")))?;
            row.push(shown(out));
        }
        rows.push(row);
    }
    let cell_h = rows.iter().flatten().map(|i| i.height).max().unwrap_or(1);
    let cell_w = rows.iter().flatten().map(|i| i.width).max().unwrap_or(1);
    let scale = min_cell.div_ceil(cell_h.max(cell_w)).max(1);
    let (ch, cw) = (cell_h * scale, cell_w * scale);
    let gap = 2;
    let cols = versions + 1;
    let width = cols * cw + (cols + 1) * gap + gap; // extra gap after the originals column
    let height = rows.len() * ch + (rows.len() + 1) * gap;
    let mut canvas = RgbImage::from_pixel(width as u32, height as u32, Rgb([255, 255, 255]));
    for (r, row) in rows.iter().enumerate() {
        for (c, img) in row.iter().enumerate() {
            let rgb = img.to_rgb8();
            let x0 = gap + c * (cw + gap) + if c > 0 { gap } else { 0 };
            let y0 = gap + r * (ch + gap);
            for y in 0..img.height * scale {
                for x in 0..img.width * scale {
                    let i = ((y / scale) * img.width + x / scale) * 3;
                    canvas.put_pixel(
                        (x0 + x) as u32,
                        (y0 + y) as u32,
                        Rgb([rgb[i], rgb[i + 1], rgb[i + 2]]),
                    );
                }
            }
        }
    }
    Ok(canvas)
}
