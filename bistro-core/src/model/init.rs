//! Deterministic initial weights: the same seed and name give the same bits on
//! any machine.
//!
//! libtorch's `randn` is not used: its CPU kernels differ between vector
//! instruction sets, and a Box–Muller transform needs `ln`/`cos`, whose last
//! bit differs between math libraries. Instead each element is an Irwin–Hall
//! sum of four 32-bit uniforms, which needs only exact integer arithmetic and
//! one rounded multiplication:
//!
//! ```text
//! key      = first 8 bytes (LE) of BLAKE3("bistro.model.init.v1" || seed as u64 LE || name)
//! r(j)     = splitmix64_mix(key + (j + 1) * 0x9E3779B97F4A7C15)      (wrapping u64)
//! s(i)     = lo32(r(2i)) + hi32(r(2i)) + lo32(r(2i+1)) + hi32(r(2i+1))  (exact, < 2^34)
//! w(i)     = f32( (s(i) - 2^33) as f64 * (std * sqrt(3) * 2^-32) )
//! ```
//!
//! `w` has mean 0 and standard deviation `std`, is bell-shaped and bounded by
//! ±√3·2·std ≈ ±3.46 std (like a truncated normal). `std` is
//! `initializer_range` for embeddings and projections, divided by
//! `sqrt(2 · num_hidden_layers)` for the projections that write into the
//! residual stream (`o_proj`, `down_proj`, as GPT-2 does); RMSNorm gains are 1.

use rayon::prelude::*;

use super::config::Config;
use super::params::{ParamSpec, Role};

const GOLDEN_GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;
const SQRT_3: f64 = 1.732_050_807_568_877_2;
/// 2^-32, exactly.
const INV_2_32: f64 = 1.0 / 4_294_967_296.0;
/// Elements per parallel chunk.
const CHUNK: usize = 1 << 16;

/// SplitMix64's output function.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The per-tensor stream key.
fn key(seed: u64, name: &str) -> u64 {
    let mut h = blake3::Hasher::new();
    h.update(b"bistro.model.init.v1");
    h.update(&seed.to_le_bytes());
    h.update(name.as_bytes());
    let bytes = h.finalize();
    let mut k = [0u8; 8];
    k.copy_from_slice(&bytes.as_bytes()[..8]);
    u64::from_le_bytes(k)
}

/// The standard deviation a parameter is drawn with (0 for constants).
fn std_for(config: &Config, role: Role) -> f64 {
    match role {
        Role::Norm => 0.0,
        Role::Embedding | Role::Projection | Role::Head => config.initializer_range,
        Role::ResidualOutput => {
            config.initializer_range / (2.0 * config.num_hidden_layers as f64).sqrt()
        }
    }
}

/// Fills `out` with the initial values of the parameter `spec`.
pub(crate) fn fill(config: &Config, seed: u64, spec: &ParamSpec, out: &mut [f32]) {
    if spec.role == Role::Norm {
        out.fill(1.0);
        return;
    }
    let k = key(seed, &spec.info.name);
    let scale = std_for(config, spec.role) * SQRT_3 * INV_2_32;
    out.par_chunks_mut(CHUNK)
        .enumerate()
        .for_each(|(chunk, values)| {
            let first = (chunk * CHUNK) as u64;
            for (offset, w) in values.iter_mut().enumerate() {
                let i = first + offset as u64;
                let a = mix(k.wrapping_add((2 * i + 1).wrapping_mul(GOLDEN_GAMMA)));
                let b = mix(k.wrapping_add((2 * i + 2).wrapping_mul(GOLDEN_GAMMA)));
                let s = (a & 0xFFFF_FFFF) + (a >> 32) + (b & 0xFFFF_FFFF) + (b >> 32);
                let centered = s as i64 - (1i64 << 33);
                *w = (centered as f64 * scale) as f32;
            }
        });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::params::ParamInfo;

    fn spec(name: &str, role: Role) -> ParamSpec {
        ParamSpec {
            info: ParamInfo {
                name: name.into(),
                shape: vec![1 << 18],
            },
            role,
        }
    }

    #[test]
    fn moments_match_the_requested_std() {
        let config = Config::preset("tiny").unwrap();
        let mut w = vec![0f32; 1 << 18];
        fill(&config, 7, &spec("a", Role::Projection), &mut w);
        let n = w.len() as f64;
        let mean = w.iter().map(|&x| x as f64).sum::<f64>() / n;
        let var = w.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / n;
        assert!(mean.abs() < 1e-4, "mean {mean}");
        assert!((var.sqrt() / 0.02 - 1.0).abs() < 0.01, "std {}", var.sqrt());
        let bound = 0.02 * 2.0 * SQRT_3;
        assert!(w.iter().all(|x| (*x as f64).abs() <= bound * 1.000001));
    }

    #[test]
    fn depends_on_seed_and_name_only() {
        let config = Config::preset("tiny").unwrap();
        let (mut a, mut b, mut c) = (vec![0f32; 1000], vec![0f32; 1000], vec![0f32; 1000]);
        fill(&config, 1, &spec("x", Role::Projection), &mut a);
        fill(&config, 1, &spec("y", Role::Projection), &mut b);
        fill(&config, 2, &spec("x", Role::Projection), &mut c);
        assert_ne!(a, b);
        assert_ne!(a, c);
        let mut again = vec![0f32; 1000];
        fill(&config, 1, &spec("x", Role::Projection), &mut again);
        assert_eq!(
            a.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
            again.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
        );
    }
}
