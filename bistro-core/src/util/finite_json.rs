//! Lists of `f64` in JSON where a value that is not finite is `null`, both
//! ways. `serde_json` writes NaN and the infinities as `null` but cannot
//! read `null` back as an `f64`, so a log line holding the loss of a delta
//! that blew the model up would not parse. With
//! `#[serde(with = "crate::util::finite_json")]` such a value is written as
//! `null` and read back as NaN (every consumer treats NaN and infinity
//! alike: not a finite loss).

use serde::{Deserialize, Deserializer, Serializer};

/// Writes `values`, each non-finite one as `null`.
pub fn serialize<S: Serializer>(values: &[f64], serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_seq(values.iter().map(|x| x.is_finite().then_some(*x)))
}

/// Reads a list of numbers and `null`s, each `null` as NaN.
pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<f64>, D::Error> {
    let values: Vec<Option<f64>> = Vec::deserialize(deserializer)?;
    Ok(values.into_iter().map(|x| x.unwrap_or(f64::NAN)).collect())
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    #[derive(Debug, Serialize, Deserialize)]
    struct Losses {
        #[serde(with = "super")]
        values: Vec<f64>,
    }

    #[test]
    fn non_finite_values_round_trip_as_null_then_nan() {
        let losses = Losses {
            values: vec![1.5, f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 0.0],
        };
        let json = serde_json::to_string(&losses).unwrap();
        assert_eq!(json, r#"{"values":[1.5,null,null,null,0.0]}"#);
        let back: Losses = serde_json::from_str(&json).unwrap();
        assert_eq!(back.values[0], 1.5);
        assert!(back.values[1..4].iter().all(|x| x.is_nan()));
        assert_eq!(back.values[4], 0.0);
        // Plain serde_json cannot read its own output back: the reason
        // this module exists.
        assert!(serde_json::from_str::<Vec<f64>>("[1.0,null]").is_err());
    }
}
