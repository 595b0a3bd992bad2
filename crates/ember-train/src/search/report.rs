//! What a search shows when it ends: the ranked table, the knobs' importance,
//! `results.csv` and `search.png`.

use super::space::{Domain, Space, short};
use super::{SearchOptions, Trial, TrialState};
use crate::config::Monitor;
use crate::error::Result;
use crate::inspect::plot::{Axes, Series, palette, panels_png};
use crate::store::run::write_atomic;
use std::path::Path;

/// Trials sorted best first (finished ones, then failed and unfinished).
pub fn ranked(trials: &[Trial], objective: Monitor) -> Vec<&Trial> {
    let mut v: Vec<&Trial> = trials.iter().collect();
    v.sort_by(|a, b| {
        let key = |t: &Trial| t.objective.map(|o| objective.score(o));
        match (key(a), key(b)) {
            (Some(x), Some(y)) => y.total_cmp(&x),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => a.id.cmp(&b.id),
        }
    });
    v
}

/// The results table as text, best first.
pub fn table(space: &Space, options: &SearchOptions, trials: &[Trial]) -> String {
    let name = match options.objective {
        Monitor::ValAccuracy => "val_accuracy",
        Monitor::ValLoss => "val_loss",
    };
    let mut rows: Vec<Vec<String>> = vec![
        [
            "rank",
            "trial",
            "state",
            name,
            "epoch",
            "epochs run",
            "seconds",
        ]
        .iter()
        .map(|s| s.to_string())
        .chain(space.knobs.iter().map(|k| k.name.clone()))
        .collect(),
    ];
    for (rank, t) in ranked(trials, options.objective).into_iter().enumerate() {
        let mut row = vec![
            (rank + 1).to_string(),
            t.id.to_string(),
            format!("{:?}", t.state).to_lowercase(),
            t.objective.map_or("-".into(), |o| format!("{o:.4}")),
            t.best_epoch.map_or("-".into(), |e| e.to_string()),
            t.values.len().to_string(),
            format!("{:.1}", t.seconds),
        ];
        row.extend(space.knobs.iter().map(|k| {
            t.params
                .iter()
                .find(|(n, _)| *n == k.name)
                .map_or("-".into(), |(_, v)| short(v))
        }));
        rows.push(row);
    }
    let widths: Vec<usize> = (0..rows[0].len())
        .map(|c| rows.iter().map(|r| r[c].len()).max().unwrap_or(0))
        .collect();
    rows.iter()
        .map(|r| {
            r.iter()
                .zip(&widths)
                .map(|(c, w)| format!("{c:<w$}"))
                .collect::<Vec<_>>()
                .join("  ")
                .trim_end()
                .to_string()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// How much the objective depends on each knob: |Spearman rank correlation| for numbers,
/// the between-group share of variance (η²) for choices. Finished trials only.
pub fn importance(space: &Space, options: &SearchOptions, trials: &[Trial]) -> Vec<(String, f64)> {
    let done: Vec<&Trial> = trials.iter().filter(|t| t.objective.is_some()).collect();
    let y: Vec<f64> = done
        .iter()
        .map(|t| options.objective.score(t.objective.unwrap_or(0.0)))
        .collect();
    let rank = |v: &[f64]| -> Vec<f64> {
        let mut idx: Vec<usize> = (0..v.len()).collect();
        idx.sort_by(|&a, &b| v[a].total_cmp(&v[b]));
        let mut r = vec![0.0; v.len()];
        let mut i = 0;
        while i < idx.len() {
            let mut j = i;
            while j + 1 < idx.len() && v[idx[j + 1]] == v[idx[i]] {
                j += 1;
            }
            for &k in &idx[i..=j] {
                r[k] = (i + j) as f64 / 2.0;
            }
            i = j + 1;
        }
        r
    };
    let corr = |a: &[f64], b: &[f64]| -> f64 {
        let n = a.len() as f64;
        let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
        let cov: f64 = a.iter().zip(b).map(|(x, y)| (x - ma) * (y - mb)).sum();
        let va: f64 = a.iter().map(|x| (x - ma).powi(2)).sum();
        let vb: f64 = b.iter().map(|y| (y - mb).powi(2)).sum();
        if va <= 0.0 || vb <= 0.0 {
            0.0
        } else {
            cov / (va * vb).sqrt()
        }
    };
    space
        .knobs
        .iter()
        .map(|k| {
            let x: Vec<f64> = done
                .iter()
                .map(|t| {
                    t.params
                        .iter()
                        .find(|(n, _)| *n == k.name)
                        .and_then(|(_, v)| k.domain.to_coord(v))
                        .unwrap_or(0.0)
                })
                .collect();
            let value = if done.len() < 3 {
                0.0
            } else if let Domain::Choice { values } = &k.domain {
                let mean = y.iter().sum::<f64>() / y.len() as f64;
                let total: f64 = y.iter().map(|v| (v - mean).powi(2)).sum();
                let between: f64 = (0..values.len())
                    .map(|c| {
                        let g: Vec<f64> = x
                            .iter()
                            .zip(&y)
                            .filter(|(xi, _)| **xi as usize == c)
                            .map(|(_, yi)| *yi)
                            .collect();
                        if g.is_empty() {
                            0.0
                        } else {
                            let m = g.iter().sum::<f64>() / g.len() as f64;
                            g.len() as f64 * (m - mean).powi(2)
                        }
                    })
                    .sum();
                if total > 0.0 { between / total } else { 0.0 }
            } else {
                corr(&rank(&x), &rank(&y)).abs()
            };
            (k.name.clone(), value)
        })
        .collect()
}

pub(crate) fn write_results(
    space: &Space,
    options: &SearchOptions,
    dir: &Path,
    trials: &[Trial],
) -> Result<()> {
    // results.csv, best first.
    let mut csv = String::from("rank,trial,state,objective,best_epoch,epochs_run,seconds");
    for k in &space.knobs {
        csv.push(',');
        csv.push_str(&k.name);
    }
    csv.push('\n');
    for (rank, t) in ranked(trials, options.objective).into_iter().enumerate() {
        csv.push_str(&format!(
            "{},{},{},{},{},{},{:.2}",
            rank + 1,
            t.id,
            format!("{:?}", t.state).to_lowercase(),
            t.objective.map_or(String::new(), |o| o.to_string()),
            t.best_epoch.map_or(String::new(), |e| e.to_string()),
            t.values.len(),
            t.seconds
        ));
        for k in &space.knobs {
            let v = t
                .params
                .iter()
                .find(|(n, _)| *n == k.name)
                .map_or(String::new(), |(_, v)| short(v));
            csv.push(',');
            csv.push_str(&v);
        }
        csv.push('\n');
    }
    write_atomic(&dir.join("results.csv"), csv.as_bytes())?;
    search_png(space, options, trials, &dir.join("search.png"))
}

/// Objective per trial (with the running best), and objective against the knob it depends
/// on most.
pub fn search_png(
    space: &Space,
    options: &SearchOptions,
    trials: &[Trial],
    path: &Path,
) -> Result<()> {
    let name = match options.objective {
        Monitor::ValAccuracy => "validation accuracy",
        Monitor::ValLoss => "validation loss",
    };
    let done: Vec<&Trial> = trials.iter().filter(|t| t.objective.is_some()).collect();
    let point = |t: &Trial| (t.id as f64, t.objective.unwrap_or(f64::NAN));
    let mut running = Vec::new();
    let mut best = f64::NEG_INFINITY;
    for t in &done {
        let s = options.objective.score(t.objective.unwrap_or(f64::NAN));
        if s > best {
            best = s;
        }
        running.push((t.id as f64, options.objective.score(best)));
    }
    let trials_in = |state: TrialState, label: &str, color: usize| Series {
        label: label.into(),
        points: done
            .iter()
            .filter(|t| t.state == state)
            .map(|t| point(t))
            .collect(),
        color: palette(color),
        dashed: false,
        markers_only: true,
    };
    let by_trial = vec![
        trials_in(TrialState::Complete, "complete", 0),
        trials_in(TrialState::Pruned, "pruned", 3),
        Series {
            label: "best so far".into(),
            points: running,
            color: palette(2),
            dashed: true,
            markers_only: false,
        },
    ];
    let imp = importance(space, options, trials);
    let (knob_name, _) = imp
        .iter()
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .cloned()
        .unwrap_or_default();
    let knob = space
        .knobs
        .iter()
        .find(|k| k.name == knob_name)
        .unwrap_or(&space.knobs[0]);
    let (log_x, names) = match &knob.domain {
        Domain::Float { log, .. } | Domain::Int { log, .. } => (*log, None),
        Domain::Choice { values } => (false, Some(values.iter().map(short).collect::<Vec<_>>())),
    };
    let x_of = |t: &Trial| -> Option<f64> {
        t.params
            .iter()
            .find(|(n, _)| *n == knob.name)
            .and_then(|(_, v)| knob.domain.to_coord(v))
            .map(|c| {
                if log_x {
                    c / std::f64::consts::LN_10
                } else {
                    c
                }
            })
    };
    let by_knob = vec![Series {
        label: "trials".into(),
        points: done
            .iter()
            .filter_map(|t| Some((x_of(t)?, t.objective?)))
            .collect(),
        color: palette(0),
        dashed: false,
        markers_only: true,
    }];
    let axes = |title: String, x: String, x_names: Option<Vec<String>>| Axes {
        title,
        x_desc: x,
        y_desc: name.into(),
        log_y: false,
        x_names,
    };
    panels_png(
        &[
            (
                axes(format!("{name} per trial"), "trial".into(), None),
                by_trial,
            ),
            (
                axes(
                    format!("{name} vs {}", knob.name),
                    if log_x {
                        format!("log10 {}", knob.name)
                    } else {
                        knob.name.clone()
                    },
                    names,
                ),
                by_knob,
            ),
        ],
        600,
        440,
        path,
    )
}
