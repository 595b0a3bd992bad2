//! PNG plots with plotters: training curves and confusion matrices.

use crate::error::{Result, TrainError};
use crate::logger::EpochRecord;
use plotters::prelude::*;
use plotters::style::FontStyle;
use std::path::Path;
use std::sync::Once;

/// DejaVu Sans, embedded so plots have labels on machines without system fonts.
static FONT: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");

pub(crate) fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The font is ours and valid: a failure here would only drop the labels.
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT);
    });
}

pub(crate) fn err(path: &Path, e: impl std::fmt::Display) -> TrainError {
    TrainError::file(path, format!("cannot draw the plot: {e}"))
}

/// A colour per series, distinguishable and print-safe (Tableau 10).
pub fn palette(i: usize) -> RGBColor {
    const C: [(u8, u8, u8); 10] = [
        (31, 119, 180),
        (255, 127, 14),
        (44, 160, 44),
        (214, 39, 40),
        (148, 103, 189),
        (140, 86, 75),
        (227, 119, 194),
        (127, 127, 127),
        (188, 189, 34),
        (23, 190, 207),
    ];
    let (r, g, b) = C[i % C.len()];
    RGBColor(r, g, b)
}

/// One named line of `(epoch, value)` points.
pub struct Series {
    /// Legend label.
    pub label: String,
    /// Points.
    pub points: Vec<(f64, f64)>,
    /// Colour index.
    pub color: usize,
    /// Dashed (validation) or solid (training).
    pub dashed: bool,
}

fn panel(
    area: &DrawingArea<BitMapBackend<'_>, plotters::coord::Shift>,
    title: &str,
    y_desc: &str,
    series: &[Series],
    path: &Path,
) -> Result<()> {
    let pts = series.iter().flat_map(|s| s.points.iter());
    let (mut x1, mut y0, mut y1) = (1.0f64, f64::INFINITY, f64::NEG_INFINITY);
    for &(x, y) in pts {
        if y.is_finite() {
            x1 = x1.max(x);
            y0 = y0.min(y);
            y1 = y1.max(y);
        }
    }
    if !y0.is_finite() {
        (y0, y1) = (0.0, 1.0);
    }
    let pad = ((y1 - y0) * 0.05).max(1e-3);
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(60)
        .build_cartesian_2d(1f64..x1.max(2.0), (y0 - pad)..(y1 + pad))
        .map_err(|e| err(path, e))?;
    chart
        .configure_mesh()
        .x_desc("epoch")
        .y_desc(y_desc)
        .label_style(("sans-serif", 13))
        .draw()
        .map_err(|e| err(path, e))?;
    for s in series {
        let color = palette(s.color);
        let style = color.stroke_width(2);
        let pts: Vec<(f64, f64)> = s
            .points
            .iter()
            .copied()
            .filter(|p| p.1.is_finite())
            .collect();
        let drawn = if s.dashed {
            chart.draw_series(DashedLineSeries::new(pts.clone(), 6, 4, style))
        } else {
            chart.draw_series(LineSeries::new(pts.clone(), style))
        }
        .map_err(|e| err(path, e))?;
        drawn.label(s.label.clone()).legend(move |(x, y)| {
            PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
        });
        if pts.len() == 1 {
            chart
                .draw_series(std::iter::once(Circle::new(pts[0], 3, color.filled())))
                .map_err(|e| err(path, e))?;
        }
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 13))
        .draw()
        .map_err(|e| err(path, e))?;
    Ok(())
}

/// Loss and accuracy curves (training solid, validation dashed) of one or more runs.
pub fn curves_png(runs: &[(String, Vec<EpochRecord>)], path: &Path) -> Result<()> {
    register_font();
    let root = BitMapBackend::new(path, (1200, 460)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(path, e))?;
    let (left, right) = root.split_horizontally(600);
    let mut loss = Vec::new();
    let mut acc = Vec::new();
    for (i, (name, records)) in runs.iter().enumerate() {
        let prefix = if runs.len() > 1 {
            format!("{name} ")
        } else {
            String::new()
        };
        let pick = |f: &dyn Fn(&EpochRecord) -> Option<f64>| -> Vec<(f64, f64)> {
            records
                .iter()
                .filter_map(|r| f(r).map(|v| (r.epoch as f64, v)))
                .collect()
        };
        // Training solid, validation dashed; one colour per run (per split for a single run).
        let add = |into: &mut Vec<Series>, label: &str, points: Vec<(f64, f64)>, dashed: bool| {
            if !points.is_empty() {
                let color = if runs.len() > 1 { i } else { dashed as usize };
                into.push(Series {
                    label: format!("{prefix}{label}"),
                    points,
                    color,
                    dashed,
                });
            }
        };
        add(&mut loss, "train", pick(&|r| r.train_loss), false);
        add(&mut loss, "valid", pick(&|r| r.val_loss), true);
        add(
            &mut acc,
            "train",
            pick(&|r| r.train_accuracy.map(|a| 100.0 * a)),
            false,
        );
        add(
            &mut acc,
            "valid",
            pick(&|r| r.val_accuracy.map(|a| 100.0 * a)),
            true,
        );
    }
    panel(&left, "Loss", "cross-entropy", &loss, path)?;
    panel(&right, "Accuracy", "%", &acc, path)?;
    root.present().map_err(|e| err(path, e))?;
    Ok(())
}

/// The confusion matrix, rows = true class, columns = predicted, shaded by row fraction.
pub fn confusion_png(confusion: &[Vec<u64>], classes: &[String], path: &Path) -> Result<()> {
    register_font();
    let n = confusion.len().max(1);
    let cell = (560 / n).clamp(4, 56) as u32;
    let label_space = if n <= 20 { 110 } else { 40 };
    let size = cell * n as u32 + label_space + 40;
    let root = BitMapBackend::new(path, (size, size)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(path, e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Confusion matrix (rows: true, columns: predicted)",
            ("sans-serif", 15),
        )
        .margin(10)
        .x_label_area_size(if n <= 20 { label_space - 30 } else { 20 })
        .y_label_area_size(if n <= 20 { label_space - 30 } else { 20 })
        .build_cartesian_2d(0..n as i32, (0..n as i32).into_segmented())
        .map_err(|e| err(path, e))?;
    let _ = &mut chart;
    let area = chart.plotting_area();
    for (t, row) in confusion.iter().enumerate() {
        let total: u64 = row.iter().sum::<u64>().max(1);
        for (p, &c) in row.iter().enumerate() {
            let f = c as f64 / total as f64;
            let shade = (255.0 * (1.0 - f)).round() as u8;
            let color = if t == p {
                RGBColor(shade, shade, 255)
            } else {
                RGBColor(255, shade, shade)
            };
            let y = n as i32 - 1 - t as i32;
            area.draw(&Rectangle::new(
                [
                    (p as i32, SegmentValue::Exact(y)),
                    (p as i32 + 1, SegmentValue::Exact(y + 1)),
                ],
                color.filled(),
            ))
            .map_err(|e| err(path, e))?;
            if n <= 12 && c > 0 {
                let text_color = if f > 0.6 { WHITE } else { BLACK };
                area.draw(&Text::new(
                    c.to_string(),
                    (p as i32, SegmentValue::Exact(y + 1)),
                    ("sans-serif", 12).into_font().color(&text_color),
                ))
                .map_err(|e| err(path, e))?;
            }
        }
    }
    let names: Vec<String> = classes.to_vec();
    let names2 = names.clone();
    chart
        .configure_mesh()
        .disable_mesh()
        .x_labels(n.min(20))
        .y_labels(n.min(20))
        .x_label_formatter(&|x| names.get(*x as usize).cloned().unwrap_or_default())
        .y_label_formatter(&|y| match y {
            SegmentValue::CenterOf(v) | SegmentValue::Exact(v) => names2
                .get((n as i32 - 1 - *v) as usize)
                .cloned()
                .unwrap_or_default(),
            SegmentValue::Last => String::new(),
        })
        .label_style(("sans-serif", 11))
        .draw()
        .map_err(|e| err(path, e))?;
    root.present().map_err(|e| err(path, e))?;
    Ok(())
}
