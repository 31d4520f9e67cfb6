//! What an audit found: each difference between what a validator published
//! and what the auditor recomputed, each file that did not parse, each
//! thing that could not be checked.

use std::fmt;

use serde::Serialize;

/// The kind of a [`Finding`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    /// A published value is not what the auditor recomputes from public data.
    Differs,
    /// A published file or log line does not parse or fails its own checks.
    Unreadable,
    /// Something the check needs is gone or unreachable (a pruned master, a
    /// deleted delta, a chain without the block): the value is unverified.
    Unavailable,
}

impl fmt::Display for FindingKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FindingKind::Differs => "differs",
            FindingKind::Unreadable => "unreadable",
            FindingKind::Unavailable => "unavailable",
        })
    }
}

/// One finding, with the record it concerns.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Finding {
    /// What kind of finding.
    pub kind: FindingKind,
    /// The round's deadline, when it concerns a round.
    pub deadline: Option<u64>,
    /// The uid, when it concerns one evaluation.
    pub uid: Option<u16>,
    /// What was checked (`"score"`, `"evaluation.local.with_delta[3]"`,
    /// `"log line 4"`, `"weights"`, ...).
    pub field: String,
    /// What the validator published (or the file's problem).
    pub published: String,
    /// What the auditor recomputed (or why it could not).
    pub recomputed: String,
}

/// The findings of one audit, in the order they were found.
#[derive(Debug, Default)]
pub(super) struct Findings(pub Vec<Finding>);

impl Findings {
    /// Adds a finding.
    pub fn push(
        &mut self,
        kind: FindingKind,
        at: (Option<u64>, Option<u16>),
        field: impl Into<String>,
        published: impl fmt::Display,
        recomputed: impl fmt::Display,
    ) {
        self.0.push(Finding {
            kind,
            deadline: at.0,
            uid: at.1,
            field: field.into(),
            published: published.to_string(),
            recomputed: recomputed.to_string(),
        });
    }

    /// A [`FindingKind::Differs`] unless `published == recomputed`.
    pub fn expect_eq<T: PartialEq + fmt::Debug>(
        &mut self,
        at: (Option<u64>, Option<u16>),
        field: &str,
        published: &T,
        recomputed: &T,
    ) {
        if published != recomputed {
            self.push(
                FindingKind::Differs,
                at,
                field,
                format!("{published:?}"),
                format!("{recomputed:?}"),
            );
        }
    }

    /// A [`FindingKind::Differs`] for the first of the values of
    /// `published` and `recomputed` that are not [`close`] (or for their
    /// lengths), naming how many differ.
    pub fn expect_close(
        &mut self,
        at: (Option<u64>, Option<u16>),
        field: &str,
        published: &[f64],
        recomputed: &[f64],
        tolerance: f64,
    ) {
        if published.len() != recomputed.len() {
            self.push(
                FindingKind::Differs,
                at,
                format!("{field} (count)"),
                published.len(),
                recomputed.len(),
            );
            return;
        }
        let differing: Vec<usize> = (0..published.len())
            .filter(|&i| !close(published[i], recomputed[i], tolerance))
            .collect();
        if let Some(&i) = differing.first() {
            let also = match differing.len() {
                1 => String::new(),
                n => format!(" ({} of {} values differ)", n, published.len()),
            };
            self.push(
                FindingKind::Differs,
                at,
                format!("{field}[{i}]{also}"),
                published[i],
                recomputed[i],
            );
        }
    }
}

/// Whether two measured values agree: both not finite, or within
/// `tolerance` relative to the larger magnitude (absolute below 1).
pub fn close(a: f64, b: f64, tolerance: f64) -> bool {
    if !a.is_finite() || !b.is_finite() {
        return !a.is_finite() && !b.is_finite();
    }
    (a - b).abs() <= tolerance * a.abs().max(b.abs()).max(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_is_relative_above_one_and_treats_all_non_finite_alike() {
        assert!(close(1000.0, 1000.0005, 1e-6));
        assert!(!close(1000.0, 1000.01, 1e-6));
        assert!(close(0.0, 5e-7, 1e-6));
        assert!(!close(0.0, 2e-6, 1e-6));
        assert!(close(f64::NAN, f64::INFINITY, 0.0));
        assert!(!close(f64::NAN, 1.0, 1.0));
    }

    #[test]
    fn expect_close_names_the_first_difference_and_the_count() {
        let mut f = Findings::default();
        f.expect_close(
            (Some(10), Some(3)),
            "x",
            &[1.0, 2.0, 3.0],
            &[1.0, 2.5, 3.5],
            1e-9,
        );
        f.expect_close((Some(10), Some(3)), "y", &[1.0], &[1.0, 2.0], 1e-9);
        f.expect_close((Some(10), Some(3)), "z", &[1.0], &[1.0], 1e-9);
        assert_eq!(f.0.len(), 2);
        assert_eq!(f.0[0].field, "x[1] (2 of 3 values differ)");
        assert_eq!(
            (f.0[0].published.as_str(), f.0[0].recomputed.as_str()),
            ("2", "2.5")
        );
        assert_eq!(f.0[1].field, "y (count)");
    }
}
