//! Stopping bad trials early from their per-epoch validation metric.
//!
//! * Median stopping (Golovin et al. 2017, Optuna's `MedianPruner`): after a warm-up epoch,
//!   a trial stops when its value at epoch `e` is worse than the median of the other trials'
//!   values at `e` (once at least three others got there).
//! * Asynchronous successive halving (ASHA; Li et al. 2020, as Ray Tune's scheduler stops
//!   trials): rungs at epochs `r, r η, r η², ...`; a trial reaching a rung continues only if
//!   it is in the best `1/η` of the trials that reached that rung so far (once `η` have).

use serde::{Deserialize, Serialize};

/// Which pruner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Prune {
    /// Run every trial to the end.
    None,
    /// Median stopping rule.
    Median,
    /// Asynchronous successive halving.
    Asha,
}

ember_data::named_enum!(Prune => "pruner");

/// Minimum other trials at an epoch before the median rule acts.
pub const MEDIAN_MIN_TRIALS: usize = 3;
/// ASHA's reduction factor η.
pub const ASHA_ETA: usize = 3;
/// ASHA's first rung, in epochs.
pub const ASHA_MIN_EPOCHS: usize = 1;

impl Prune {
    /// Whether a trial whose score (larger is better) at `epoch` (1-based) is `score` should
    /// stop, given the scores other trials reported at that epoch.
    pub fn should_stop(self, epoch: usize, score: f64, others_at_epoch: &[f64]) -> bool {
        match self {
            Prune::None => false,
            Prune::Median => {
                if epoch < 2 || others_at_epoch.len() < MEDIAN_MIN_TRIALS {
                    return false;
                }
                let mut v = others_at_epoch.to_vec();
                v.sort_by(f64::total_cmp);
                let n = v.len();
                let median = if n % 2 == 1 {
                    v[n / 2]
                } else {
                    (v[n / 2 - 1] + v[n / 2]) / 2.0
                };
                score < median
            }
            Prune::Asha => {
                if !is_rung(epoch) || others_at_epoch.len() + 1 < ASHA_ETA {
                    return false;
                }
                let mut v = others_at_epoch.to_vec();
                v.push(score);
                v.sort_by(|a, b| b.total_cmp(a));
                // Keep the best ceil(n / η): stop when below the last of them.
                let keep = v.len().div_ceil(ASHA_ETA);
                score < v[keep - 1]
            }
        }
    }
}

/// Whether `epoch` is an ASHA rung: `r η^k`.
pub fn is_rung(epoch: usize) -> bool {
    let mut r = ASHA_MIN_EPOCHS;
    while r < epoch {
        r *= ASHA_ETA;
    }
    r == epoch
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_median_rule_stops_below_the_median_after_warm_up() {
        let others = [0.5, 0.7, 0.9];
        assert!(!Prune::Median.should_stop(1, 0.1, &others), "warm-up epoch");
        assert!(Prune::Median.should_stop(2, 0.6, &others));
        assert!(!Prune::Median.should_stop(2, 0.8, &others));
        assert!(
            !Prune::Median.should_stop(2, 0.1, &[0.5, 0.9]),
            "too few others"
        );
        assert!(
            Prune::Median.should_stop(3, 0.55, &[0.5, 0.6, 0.7, 0.9]),
            "even count: mean of the middle two"
        );
    }

    #[test]
    fn asha_keeps_the_best_third_at_each_rung() {
        assert!(is_rung(1) && is_rung(3) && is_rung(9) && !is_rung(2) && !is_rung(4));
        // Rung 1 with 5 trials in total: keep the best ceil(5/3) = 2.
        let others = [0.9, 0.8, 0.3, 0.2];
        assert!(Prune::Asha.should_stop(1, 0.5, &others));
        assert!(!Prune::Asha.should_stop(1, 0.85, &others));
        assert!(!Prune::Asha.should_stop(2, 0.0, &others), "not a rung");
        assert!(
            !Prune::Asha.should_stop(1, 0.0, &[0.9]),
            "fewer than η trials"
        );
        assert!(!Prune::None.should_stop(3, 0.0, &others));
    }
}
