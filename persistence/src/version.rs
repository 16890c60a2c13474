//! Versioned records and the newer-wins rule.

use serde::{Deserialize, Serialize};

/// A stored value with the version it was written at.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Versioned<T> {
    /// Monotonically increasing per record; higher is newer.
    pub version: u64,
    /// The value.
    pub value: T,
}

/// What an attempted write did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteOutcome {
    /// The write was newer and replaced what was stored.
    Applied,
    /// What was stored is as new or newer; the write changed nothing.
    Stale {
        /// The version already stored.
        stored: u64,
    },
}

/// Applies `incoming` over `stored` if and only if it is newer.
pub fn apply_if_newer<T>(
    stored: &mut Option<Versioned<T>>,
    incoming: Versioned<T>,
) -> WriteOutcome {
    match stored {
        Some(current) if current.version >= incoming.version => WriteOutcome::Stale {
            stored: current.version,
        },
        _ => {
            *stored = Some(incoming);
            WriteOutcome::Applied
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_late_retry_never_rolls_back() {
        let mut stored = None;
        assert_eq!(
            apply_if_newer(
                &mut stored,
                Versioned {
                    version: 2,
                    value: "level 5"
                }
            ),
            WriteOutcome::Applied
        );
        assert_eq!(
            apply_if_newer(
                &mut stored,
                Versioned {
                    version: 1,
                    value: "level 4"
                }
            ),
            WriteOutcome::Stale { stored: 2 }
        );
        assert_eq!(
            apply_if_newer(
                &mut stored,
                Versioned {
                    version: 2,
                    value: "dup"
                }
            ),
            WriteOutcome::Stale { stored: 2 }
        );
        assert_eq!(stored.unwrap().value, "level 5");
    }
}
