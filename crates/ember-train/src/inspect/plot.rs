//! PNG plots with plotters: training curves and confusion matrices.

use crate::error::{Result, TrainError};
use crate::training::logger::EpochRecord;
use plotters::prelude::*;
use plotters::style::FontStyle;
use std::path::Path;
use std::sync::Once;

/// DejaVu Sans, embedded so plots have labels on machines without system fonts.
static FONT: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");

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

/// One named line of `(x, y)` points.
pub struct Series {
    /// Legend label.
    pub label: String,
    /// Points.
    pub points: Vec<(f64, f64)>,
    /// Colour.
    pub color: RGBColor,
    /// Dashed (validation) or solid (training).
    pub dashed: bool,
    /// Points only, no line (scatter).
    pub markers_only: bool,
}

/// What a panel's axes say.
#[derive(Debug, Clone, Default)]
pub struct Axes {
    /// Caption.
    pub title: String,
    /// X axis description.
    pub x_desc: String,
    /// Y axis description.
    pub y_desc: String,
    /// Logarithmic y axis (non-positive values are left out).
    pub log_y: bool,
    /// Names for integer x positions (layers), instead of numbers.
    pub x_names: Option<Vec<String>>,
}

/// Draws `series` as lines on `area`, with a legend.
pub fn line_panel(
    area: &DrawingArea<BitMapBackend<'_>, plotters::coord::Shift>,
    axes: &Axes,
    series: &[Series],
    path: &Path,
) -> Result<()> {
    let log = axes.log_y;
    // A log axis is drawn as log10 of the values on a linear one, labelled with the values.
    // Zeros (a gradient that vanished completely) sit a decade below the smallest positive value.
    let floor = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .filter(|y| *y > 0.0 && y.is_finite())
        .fold(f64::INFINITY, f64::min)
        / 10.0;
    let lines: Vec<Vec<(f64, f64)>> = series
        .iter()
        .map(|s| {
            s.points
                .iter()
                .filter(|p| p.0.is_finite() && p.1.is_finite() && (!log || p.1 >= 0.0))
                .map(|&(x, y)| (x, if log { y.max(floor).log10() } else { y }))
                .filter(|p| p.1.is_finite())
                .collect()
        })
        .collect();
    let all = || lines.iter().flatten();
    let bounds = |f: fn(&(f64, f64)) -> f64| {
        all()
            .map(f)
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
                (a.min(v), b.max(v))
            })
    };
    let (mut x0, mut x1) = bounds(|p| p.0);
    let (mut y0, mut y1) = bounds(|p| p.1);
    if !x0.is_finite() {
        (x0, x1, y0, y1) = (0.0, 1.0, 0.0, 1.0);
    }
    if x1 - x0 < 1.0 {
        x1 = x0 + 1.0;
    }
    let pad = ((y1 - y0) * 0.06).max(if log { 0.05 } else { 1e-3 });
    let x_pad = if axes.x_names.is_some() { 0.3 } else { 0.0 };
    let names = axes.x_names.clone();
    let x_label = move |x: &f64| match &names {
        Some(n) => {
            let i = x.round();
            if (x - i).abs() < 1e-6 && i >= 0.0 {
                n.get(i as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        }
        None => format!("{x}"),
    };
    let y_label = move |y: &f64| {
        if !log {
            return format!("{y:.3}")
                .trim_end_matches('0')
                .trim_end_matches('.')
                .to_string();
        }
        // Two significant digits: 3.981 -> 4.0, 0.631 -> 0.63.
        let v = 10f64.powf(*y);
        if (1e-3..1e4).contains(&v) {
            let decimals = (1.0 - v.log10().floor()).max(0.0) as usize;
            format!("{v:.decimals$}")
        } else {
            format!("{v:.1e}")
        }
    };
    let mut chart = ChartBuilder::on(area)
        .caption(&axes.title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(if axes.x_names.is_some() { 110 } else { 40 })
        .y_label_area_size(60)
        .build_cartesian_2d((x0 - x_pad)..(x1 + x_pad), (y0 - pad)..(y1 + pad))
        .map_err(|e| err(path, e))?;
    // Whole-number x (epochs, depths): one label per integer when they fit.
    let integral = all().all(|p| p.0.fract() == 0.0);
    let n_x = match &axes.x_names {
        Some(n) => n.len().min(24),
        None if integral => ((x1 - x0) as usize + 1).min(12),
        None => 10,
    };
    chart
        .configure_mesh()
        .x_labels(if axes.x_names.is_some() { 0 } else { n_x })
        .x_label_formatter(&x_label)
        .y_label_formatter(&y_label)
        .x_desc(axes.x_desc.as_str())
        .y_desc(axes.y_desc.as_str())
        .label_style(("sans-serif", 12))
        .draw()
        .map_err(|e| err(path, e))?;
    if let Some(names) = &axes.x_names {
        // Layer names read downwards from under their position (the mesh would centre
        // rotated labels on the tick, over the plot).
        let style = ("sans-serif", 10)
            .into_font()
            .transform(FontTransform::Rotate90)
            .color(&BLACK);
        let bottom = y0 - pad;
        // Backend pixels are the whole image's; the panel draws in its own.
        let (bx, by) = area.get_base_pixel();
        for (i, name) in names.iter().enumerate() {
            let (px, py) = chart.backend_coord(&(i as f64, bottom));
            area.draw(&Text::new(
                name.clone(),
                (px - bx + 6, py - by + 6),
                style.clone(),
            ))
            .map_err(|e| err(path, e))?;
        }
    }
    for (s, pts) in series.iter().zip(lines) {
        let color = s.color;
        let style = color.stroke_width(2);
        if s.markers_only {
            chart
                .draw_series(pts.iter().map(|&p| Circle::new(p, 4, color.filled())))
                .map_err(|e| err(path, e))?
                .label(s.label.clone())
                .legend(move |(x, y)| Circle::new((x + 10, y), 4, color.filled()));
            continue;
        }
        let drawn = if s.dashed {
            chart.draw_series(DashedLineSeries::new(pts.clone(), 6, 4, style))
        } else {
            chart.draw_series(LineSeries::new(pts.clone(), style))
        }
        .map_err(|e| err(path, e))?;
        let dashed = s.dashed;
        drawn.label(s.label.clone()).legend(move |(x, y)| {
            // A dashed series gets a dashed key.
            let gap = if dashed { 6 } else { 0 };
            EmptyElement::at((x, y))
                + PathElement::new(vec![(0, 0), (10 - gap / 2, 0)], color.stroke_width(2))
                + PathElement::new(vec![(10 + gap / 2, 0), (20, 0)], color.stroke_width(2))
        });
        if pts.len() <= 30 {
            chart
                .draw_series(pts.iter().map(|&p| Circle::new(p, 2, color.filled())))
                .map_err(|e| err(path, e))?;
        }
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 12))
        .draw()
        .map_err(|e| err(path, e))?;
    Ok(())
}

/// Several panels side by side in one PNG, `width` pixels each.
pub fn panels_png(
    panels: &[(Axes, Vec<Series>)],
    width: u32,
    height: u32,
    path: &Path,
) -> Result<()> {
    register_font();
    let n = panels.len().max(1) as u32;
    let root = BitMapBackend::new(path, (width * n, height)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(path, e))?;
    let areas = root.split_evenly((1, n as usize));
    for ((axes, series), area) in panels.iter().zip(&areas) {
        line_panel(area, axes, series, path)?;
    }
    root.present().map_err(|e| err(path, e))?;
    Ok(())
}

/// Loss and accuracy curves (training solid, validation dashed) of one or more runs.
pub fn curves_png(runs: &[(String, Vec<EpochRecord>)], path: &Path) -> Result<()> {
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
                let color = palette(if runs.len() > 1 { i } else { dashed as usize });
                into.push(Series {
                    label: format!("{prefix}{label}"),
                    points,
                    color,
                    dashed,
                    markers_only: false,
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
    let axes = |title: &str, y: &str| Axes {
        title: title.into(),
        x_desc: "epoch".into(),
        y_desc: y.into(),
        ..Axes::default()
    };
    panels_png(
        &[
            (axes("Loss", "cross-entropy"), loss),
            (axes("Accuracy", "%"), acc),
        ],
        600,
        460,
        path,
    )
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
