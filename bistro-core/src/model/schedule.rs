//! The learning-rate schedule: linear warmup, then cosine decay.

/// Linear warmup from `peak / warmup` to `peak` over `warmup` steps, then a
/// cosine from `peak` down to `floor` at step `total`, then `floor`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Schedule {
    /// The learning rate at the end of warmup.
    pub peak: f64,
    /// The learning rate at and after `total`.
    pub floor: f64,
    /// Warmup steps.
    pub warmup: u64,
    /// Steps until the decay reaches `floor`.
    pub total: u64,
}

impl Schedule {
    /// The learning rate of step `step` (0-based).
    pub fn at(&self, step: u64) -> f64 {
        if step < self.warmup {
            return self.peak * (step + 1) as f64 / self.warmup as f64;
        }
        if step >= self.total {
            return self.floor;
        }
        // warmup <= step < total, so the denominator is positive.
        let progress = (step - self.warmup) as f64 / (self.total - self.warmup) as f64;
        let cosine = 0.5 * (1.0 + (std::f64::consts::PI * progress).cos());
        self.floor + (self.peak - self.floor) * cosine
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warms_up_then_decays_to_the_floor() {
        let s = Schedule {
            peak: 1e-3,
            floor: 1e-4,
            warmup: 10,
            total: 110,
        };
        assert!((s.at(0) - 1e-4).abs() < 1e-12);
        assert!((s.at(9) - 1e-3).abs() < 1e-12);
        assert!((s.at(10) - 1e-3).abs() < 1e-12);
        assert!((s.at(60) - 5.5e-4).abs() < 1e-9);
        assert!(s.at(60) < s.at(30) && s.at(90) < s.at(60));
        assert_eq!(s.at(110), 1e-4);
        assert_eq!(s.at(10_000), 1e-4);
    }
}
