//! Retries with bounded exponential backoff and jitter, for the network
//! clients (S3 and HTTP).
//!
//! One meaning of "attempts" everywhere: `max_attempts` counts every try,
//! the first included, so 1 means no retry.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::error::{Error, Result};

/// How often and how patiently to retry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// Tries in all, the first included (at least 1).
    pub max_attempts: u32,
    /// The wait after the first failed try, before jitter.
    pub initial: Duration,
    /// The longest wait between tries.
    pub max: Duration,
}

/// A failed try: the error, and how long the server asked the client to
/// wait before the next one (HTTP `Retry-After`), if it did.
#[derive(Debug)]
pub struct Failed {
    /// What went wrong; only [`Error::is_transient`] errors are retried.
    pub error: Error,
    /// A wait the server asked for, used instead of the backoff.
    pub wait: Option<Duration>,
}

impl From<Error> for Failed {
    fn from(error: Error) -> Self {
        Failed { error, wait: None }
    }
}

impl Backoff {
    /// Runs `attempt` until it succeeds, fails with a non-transient error,
    /// or `max_attempts` tries are used up; returns the last error.
    pub fn run<T>(&self, mut attempt: impl FnMut() -> std::result::Result<T, Failed>) -> Result<T> {
        let mut tries = 0u32;
        loop {
            tries = tries.saturating_add(1);
            match attempt() {
                Ok(value) => return Ok(value),
                Err(f) if f.error.is_transient() && tries < self.max_attempts => {
                    std::thread::sleep(f.wait.unwrap_or_else(|| self.delay(tries)));
                }
                Err(f) => return Err(f.error),
            }
        }
    }

    /// The wait after failed try number `tries` (from 1): `initial * 2^(tries-1)`,
    /// capped at `max`, times a jitter factor in [0.5, 1] so that clients
    /// that failed together do not retry in step.
    pub fn delay(&self, tries: u32) -> Duration {
        let exponent = tries.saturating_sub(1).min(20);
        let full = self.initial.saturating_mul(1u32 << exponent).min(self.max);
        // The clock's nanoseconds are random enough for jitter; nothing
        // depends on their quality.
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let factor = 0.5 + f64::from(nanos % 1000) / 2000.0;
        full.mul_f64(factor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transient() -> Error {
        Error::Network {
            endpoint: "e".into(),
            detail: "d".into(),
            transient: true,
        }
    }

    const FAST: Backoff = Backoff {
        max_attempts: 3,
        initial: Duration::from_millis(1),
        max: Duration::from_millis(2),
    };

    #[test]
    fn max_attempts_counts_every_try() {
        let mut calls = 0;
        let r: Result<()> = FAST.run(|| {
            calls += 1;
            Err(transient().into())
        });
        assert!(r.is_err());
        assert_eq!(calls, 3);

        let once = Backoff {
            max_attempts: 1,
            ..FAST
        };
        let mut calls = 0;
        let r: Result<()> = once.run(|| {
            calls += 1;
            Err(transient().into())
        });
        assert!(r.is_err());
        assert_eq!(calls, 1);
    }

    #[test]
    fn permanent_errors_are_not_retried() {
        let mut calls = 0;
        let r: Result<()> = FAST.run(|| {
            calls += 1;
            Err(Error::AccessDenied("no".into()).into())
        });
        assert!(matches!(r, Err(Error::AccessDenied(_))));
        assert_eq!(calls, 1);

        let mut calls = 0;
        let r = FAST.run(|| {
            calls += 1;
            if calls < 2 {
                Err(Failed {
                    error: transient(),
                    wait: Some(Duration::ZERO),
                })
            } else {
                Ok(calls)
            }
        });
        assert_eq!(r.unwrap(), 2);
    }

    #[test]
    fn delay_grows_is_bounded_and_jittered() {
        let b = Backoff {
            max_attempts: 10,
            initial: Duration::from_millis(100),
            max: Duration::from_secs(1),
        };
        for _ in 0..20 {
            let first = b.delay(1);
            assert!((Duration::from_millis(50)..=Duration::from_millis(100)).contains(&first));
            assert!(b.delay(3) >= Duration::from_millis(200));
            assert!(b.delay(3) <= Duration::from_millis(400));
            assert!(b.delay(40) <= Duration::from_secs(1));
            assert!(b.delay(40) >= Duration::from_millis(500));
        }
    }
}
