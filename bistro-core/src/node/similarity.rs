//! Recognising a delta that re-uses earlier deltas, scaled, perturbed or
//! summed: a small linear sketch of every judged delta is kept for a window
//! of rounds, and a new delta whose sketch is mostly explained by the
//! sketches of earlier deltas is a copy.
//!
//! The sketch is a *count sketch* of the delta as one long vector: element
//! `i` of tensor `name` goes, with a pseudo-random sign, into one of
//! [`SKETCH_DIM`] buckets, both chosen by a hash of `(name, i)`. It is linear
//! (`sketch(a·x + b·y) = a·sketch(x) + b·sketch(y)`) and preserves inner
//! products in expectation, so a scaled copy has the same direction, a
//! perturbed copy nearly the same, and a sum of earlier deltas lies in
//! their span. It costs one pass over the delta's values and 16 KiB.
//!
//! How much of a new sketch `s` earlier sketches explain is measured by
//! orthogonal matching pursuit ([`SketchHistory::explain`]): repeatedly take
//! the earlier sketch most aligned with what is left of `s`, project it out,
//! until the explained share `1 - |residual|² / |s|²` passes the threshold
//! or [`MAX_ATOMS`] sketches were used. The specification (hash, bucket and
//! sign bits, record layout) is in `docs/incentive.md`.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::codec::DeltaReader;
use crate::digest::Hasher;
use crate::error::{Error, Result};
use crate::identity::PublicKey;

/// Buckets of a sketch (a power of two: the bucket is the hash's top bits).
pub const SKETCH_DIM: usize = 4096;
const BUCKET_BITS: u32 = SKETCH_DIM.trailing_zeros();

/// Most earlier sketches one explanation may combine.
pub const MAX_ATOMS: usize = 32;

/// Domain string of the per-tensor hash key.
pub const SKETCH_DOMAIN: &[u8] = b"bistro.sketch.v1";

/// When a delta counts as a copy of earlier ones. Validators must agree on
/// it; it is part of [`SubnetParams`](crate::node::SubnetParams).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct SimilarityRule {
    /// A delta whose sketch is explained by earlier sketches to more than
    /// this share of its squared norm is rejected as a copy.
    pub max_explained: f64,
    /// Sketches are kept for this many rounds before the current one.
    pub window_rounds: u64,
}

impl Default for SimilarityRule {
    fn default() -> Self {
        SimilarityRule {
            max_explained: 0.99,
            window_rounds: 8,
        }
    }
}

impl SimilarityRule {
    /// Checks the parameters are usable.
    pub fn validate(&self) -> Result<()> {
        if !(self.max_explained > 0.0 && self.max_explained <= 1.0) {
            return Err(Error::InvalidArgument(format!(
                "similarity max_explained must be in (0, 1], got {}",
                self.max_explained
            )));
        }
        Ok(())
    }
}

/// A count sketch of a delta (see the module docs).
#[derive(Clone, Debug, PartialEq)]
pub struct Sketch(pub Vec<f32>);

/// splitmix64's finaliser: a fast, well-mixed 64-bit hash.
fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The bucket and sign of element `index` of the tensor whose key is `key`.
fn slot(key: u64, index: u64) -> (usize, f64) {
    let h = mix64(key ^ mix64(index.wrapping_add(0x9e37_79b9_7f4a_7c15)));
    let bucket = (h >> (64 - BUCKET_BITS)) as usize;
    let sign = if h & 1 == 0 { 1.0 } else { -1.0 };
    (bucket, sign)
}

/// The hash key of a tensor: the first 8 bytes (little-endian) of
/// BLAKE3(`SKETCH_DOMAIN` ‖ name).
fn tensor_key(name: &str) -> u64 {
    let mut h = Hasher::new();
    h.update(SKETCH_DOMAIN).update(name.as_bytes());
    let d = h.finalize();
    u64::from_le_bytes([
        d.0[0], d.0[1], d.0[2], d.0[3], d.0[4], d.0[5], d.0[6], d.0[7],
    ])
}

impl Sketch {
    /// The all-zero sketch.
    pub fn zero() -> Sketch {
        Sketch(vec![0.0; SKETCH_DIM])
    }

    /// Sketches every value of `delta` (sparse tensors: their stored
    /// elements). Tensors are sketched in parallel and summed in name
    /// order, so the result does not depend on the thread count.
    pub fn of_delta(delta: &DeltaReader<'_>) -> Result<Sketch> {
        use rayon::prelude::*;
        let mut tensors: Vec<_> = delta.tensors().collect();
        tensors.sort_by(|a, b| a.name().cmp(b.name()));
        let parts: Vec<Vec<f64>> = tensors
            .par_iter()
            .map(|t| -> Result<Vec<f64>> {
                let key = tensor_key(t.name());
                let mut acc = vec![0.0f64; SKETCH_DIM];
                let mut add = |i: u64, v: f32| {
                    let (bucket, sign) = slot(key, i);
                    acc[bucket] += sign * f64::from(v);
                };
                if t.is_sparse() {
                    t.for_each_sparse(&mut add)?;
                } else {
                    for (i, v) in t.decode()?.into_iter().enumerate() {
                        if v != 0.0 {
                            add(i as u64, v);
                        }
                    }
                }
                Ok(acc)
            })
            .collect::<Result<_>>()?;
        let mut total = vec![0.0f64; SKETCH_DIM];
        for part in parts {
            for (t, p) in total.iter_mut().zip(part) {
                *t += p;
            }
        }
        Ok(Sketch(total.into_iter().map(|v| v as f32).collect()))
    }

    /// `self += alpha * other`.
    pub fn add_scaled(&mut self, other: &Sketch, alpha: f32) {
        for (a, b) in self.0.iter_mut().zip(&other.0) {
            *a += alpha * b;
        }
    }

    fn norm2(&self) -> f64 {
        dot(&self.0, &self.0)
    }
}

fn dot(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| f64::from(*x) * f64::from(*y))
        .sum()
}

/// What an earlier sketch was of.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum SketchSource {
    /// A miner's delta judged at `deadline`.
    Delta {
        /// The uid.
        uid: u16,
        /// Its hotkey then.
        hotkey: PublicKey,
    },
    /// The change a merge made to the master at `deadline` (written by
    /// earlier versions; a master change is a combination of the merged
    /// deltas' sketches, which are kept themselves, so it is not compared).
    Master,
}

/// One earlier sketch.
#[derive(Clone, Debug, PartialEq)]
pub struct SketchEntry {
    /// The deadline of the round it belongs to.
    pub deadline: u64,
    /// Whose it was.
    pub source: SketchSource,
    /// The sketch.
    pub sketch: Sketch,
}

/// How much of a sketch earlier sketches explain.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Explanation {
    /// `1 - |residual|² / |s|²`, in `[0, 1]` (0 for an all-zero sketch).
    pub explained: f64,
    /// The earlier sketches used, most aligned first: (deadline, source).
    pub used: Vec<(u64, SketchSource)>,
}

/// Earlier sketches, in the order they were recorded.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SketchHistory {
    /// The entries.
    pub entries: Vec<SketchEntry>,
}

impl SketchHistory {
    /// The earlier deltas of every hotkey but `hotkey`: what a delta of
    /// `hotkey` is compared with. A miner's own earlier deltas are left out
    /// (honest training keeps its direction from round to round, more so
    /// with the optimizer state kept across masters: an honest delta is
    /// 95–99.4 % explained by its own previous ones), and so are master
    /// changes, which hold the miner's own merged deltas.
    pub fn others_than(&self, hotkey: &PublicKey) -> SketchHistory {
        SketchHistory {
            entries: self
                .entries
                .iter()
                .filter(
                    |e| matches!(e.source, SketchSource::Delta { hotkey: h, .. } if h != *hotkey),
                )
                .cloned()
                .collect(),
        }
    }

    /// How much of `s` the entries explain, by orthogonal matching pursuit:
    /// stops once the explained share reaches `stop_at` or [`MAX_ATOMS`]
    /// entries are used.
    pub fn explain(&self, s: &Sketch, stop_at: f64) -> Explanation {
        let total = s.norm2();
        let mut out = Explanation {
            explained: 0.0,
            used: Vec::new(),
        };
        if total <= 0.0 || !total.is_finite() {
            return out;
        }
        let norms: Vec<f64> = self.entries.iter().map(|e| e.sketch.norm2()).collect();
        let mut residual: Vec<f64> = s.0.iter().map(|&v| f64::from(v)).collect();
        let mut basis: Vec<Vec<f64>> = Vec::new();
        let mut taken = vec![false; self.entries.len()];
        while basis.len() < MAX_ATOMS {
            // The entry most aligned with the residual (cosine).
            let best = self
                .entries
                .iter()
                .enumerate()
                .filter(|(i, _)| !taken[*i] && norms[*i] > 0.0 && norms[*i].is_finite())
                .map(|(i, e)| {
                    let c: f64 = e
                        .sketch
                        .0
                        .iter()
                        .zip(&residual)
                        .map(|(a, r)| f64::from(*a) * r)
                        .sum();
                    (i, c * c / norms[i])
                })
                .max_by(|a, b| a.1.total_cmp(&b.1));
            let Some((i, _)) = best else { break };
            taken[i] = true;
            // Orthonormalise it against the basis (twice, for stability).
            let mut q: Vec<f64> = self.entries[i]
                .sketch
                .0
                .iter()
                .map(|&v| f64::from(v))
                .collect();
            for _ in 0..2 {
                for b in &basis {
                    let c: f64 = q.iter().zip(b).map(|(x, y)| x * y).sum();
                    for (x, y) in q.iter_mut().zip(b) {
                        *x -= c * y;
                    }
                }
            }
            let n: f64 = q.iter().map(|x| x * x).sum::<f64>().sqrt();
            if n.is_nan() || n <= 1e-9 * norms[i].sqrt() {
                continue; // already in the span
            }
            q.iter_mut().for_each(|x| *x /= n);
            let c: f64 = q.iter().zip(&residual).map(|(x, r)| x * r).sum();
            for (r, x) in residual.iter_mut().zip(&q) {
                *r -= c * x;
            }
            basis.push(q);
            out.used
                .push((self.entries[i].deadline, self.entries[i].source));
            let left: f64 = residual.iter().map(|r| r * r).sum();
            out.explained = (1.0 - left / total).clamp(0.0, 1.0);
            if out.explained >= stop_at {
                break;
            }
        }
        out
    }
}

/// Sketches on disk: one append-only file of fixed-size records per
/// deadline (`<deadline, 20 digits>.sketches`), so an evaluation's sketch
/// is stored as soon as it is made and a torn last record (a crash mid-write)
/// is simply not read.
pub struct SketchStore {
    dir: PathBuf,
}

/// Magic of a sketch record.
const RECORD_MAGIC: &[u8; 4] = b"BSK1";
/// magic, deadline u64, kind u8 (0 delta, 1 master), uid u16, hotkey 32,
/// values f32 × SKETCH_DIM, checksum (8 bytes of BLAKE3 of what precedes).
const RECORD_LEN: usize = 4 + 8 + 1 + 2 + 32 + 4 * SKETCH_DIM + 8;

impl SketchStore {
    /// Opens (creating) the folder `dir`.
    pub fn open(dir: impl AsRef<Path>) -> Result<SketchStore> {
        let dir = dir.as_ref().to_path_buf();
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        Ok(SketchStore { dir })
    }

    fn path(&self, deadline: u64) -> PathBuf {
        self.dir.join(format!("{deadline:020}.sketches"))
    }

    /// Appends `entry` to its deadline's file (synced before returning).
    pub fn append(&self, entry: &SketchEntry) -> Result<()> {
        let mut rec = Vec::with_capacity(RECORD_LEN);
        rec.extend_from_slice(RECORD_MAGIC);
        rec.extend_from_slice(&entry.deadline.to_le_bytes());
        let (kind, uid, hotkey) = match entry.source {
            SketchSource::Delta { uid, hotkey } => (0u8, uid, hotkey.0),
            SketchSource::Master => (1u8, 0, [0u8; 32]),
        };
        rec.push(kind);
        rec.extend_from_slice(&uid.to_le_bytes());
        rec.extend_from_slice(&hotkey);
        if entry.sketch.0.len() != SKETCH_DIM {
            return Err(Error::InvalidArgument(format!(
                "a sketch has {SKETCH_DIM} values, not {}",
                entry.sketch.0.len()
            )));
        }
        for v in &entry.sketch.0 {
            rec.extend_from_slice(&v.to_le_bytes());
        }
        let check = crate::digest::Digest::of(&rec);
        rec.extend_from_slice(&check.0[..8]);
        let path = self.path(entry.deadline);
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        // A torn record from an earlier crash would misalign what follows:
        // cut the file back to whole records first.
        let len = file.metadata().map_err(|e| Error::io(&path, e))?.len();
        let whole = len - len % RECORD_LEN as u64;
        if whole != len {
            file.set_len(whole).map_err(|e| Error::io(&path, e))?;
        }
        file.write_all(&rec)
            .and_then(|_| file.sync_data())
            .map_err(|e| Error::io(&path, e))
    }

    /// Every stored entry with a deadline in `deadlines`, oldest first, each
    /// (deadline, source) once (a resumed round appends again the sketches
    /// of the uids it fetches again). A record whose checksum fails is
    /// [`Error::Corrupt`] (the validator's own disk); a torn last record is
    /// ignored.
    pub fn load(&self, deadlines: std::ops::Range<u64>) -> Result<SketchHistory> {
        let mut files: Vec<(u64, PathBuf)> = self
            .list()?
            .into_iter()
            .filter(|(d, _)| deadlines.contains(d))
            .collect();
        files.sort();
        let mut history = SketchHistory::default();
        for (_, path) in files {
            let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
            for rec in bytes.chunks_exact(RECORD_LEN) {
                let entry = parse_record(rec).map_err(|why| {
                    Error::corrupt("sketch store", path.display().to_string(), why)
                })?;
                let again = history
                    .entries
                    .iter()
                    .any(|e| e.deadline == entry.deadline && e.source == entry.source);
                if !again {
                    history.entries.push(entry);
                }
            }
        }
        Ok(history)
    }

    /// Removes the files of deadlines before `oldest`.
    pub fn prune(&self, oldest: u64) -> Result<()> {
        for (deadline, path) in self.list()? {
            if deadline < oldest {
                std::fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
            }
        }
        Ok(())
    }

    fn list(&self) -> Result<Vec<(u64, PathBuf)>> {
        let entries = std::fs::read_dir(&self.dir).map_err(|e| Error::io(&self.dir, e))?;
        Ok(entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter_map(|p| {
                let stem = p.file_name()?.to_str()?.strip_suffix(".sketches")?;
                Some((stem.parse().ok()?, p.clone()))
            })
            .collect())
    }
}

fn parse_record(rec: &[u8]) -> std::result::Result<SketchEntry, String> {
    let body = rec.get(..RECORD_LEN - 8).ok_or("short record")?;
    let check = crate::digest::Digest::of(body);
    if rec.get(RECORD_LEN - 8..) != Some(&check.0[..8]) || !body.starts_with(RECORD_MAGIC) {
        return Err("record checksum or magic mismatch".into());
    }
    let u64_at = |at: usize| -> std::result::Result<u64, String> {
        body.get(at..at + 8)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_le_bytes)
            .ok_or_else(|| "short record".to_string())
    };
    let deadline = u64_at(4)?;
    let kind = body[12];
    let uid = u16::from_le_bytes([body[13], body[14]]);
    let mut hotkey = [0u8; 32];
    hotkey.copy_from_slice(&body[15..47]);
    let source = match kind {
        0 => SketchSource::Delta {
            uid,
            hotkey: PublicKey(hotkey),
        },
        1 => SketchSource::Master,
        k => return Err(format!("unknown record kind {k}")),
    };
    let values = body[47..]
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    Ok(SketchEntry {
        deadline,
        source,
        sketch: Sketch(values),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{DType, DeltaHeader, DeltaWriter, Encoding, Limits};

    fn delta(values: &[f32], encoding: Encoding) -> Vec<u8> {
        let limits = Limits::for_model(values.len() as u64);
        let mut w = DeltaWriter::new(Vec::new(), &DeltaHeader::default(), &limits).unwrap();
        let half = values.len() / 2;
        w.add_tensor("a", &[half as u64], &values[..half], encoding, None)
            .unwrap();
        w.add_tensor(
            "b",
            &[(values.len() - half) as u64],
            &values[half..],
            encoding,
            None,
        )
        .unwrap();
        w.finish().unwrap().0
    }

    fn sketch_of(values: &[f32]) -> Sketch {
        let bytes = delta(values, Encoding::Dense(DType::F32));
        let limits = Limits::for_model(values.len() as u64);
        Sketch::of_delta(&DeltaReader::open(&bytes, &limits).unwrap()).unwrap()
    }

    fn noise(seed: u64, n: usize) -> Vec<f32> {
        (0..n)
            .map(|i| {
                ((mix64(seed ^ mix64(i as u64)) >> 11) as f64 / (1u64 << 53) as f64 - 0.5) as f32
            })
            .collect()
    }

    fn history(sketches: &[Sketch]) -> SketchHistory {
        SketchHistory {
            entries: sketches
                .iter()
                .enumerate()
                .map(|(i, s)| SketchEntry {
                    deadline: i as u64,
                    source: SketchSource::Delta {
                        uid: i as u16,
                        hotkey: PublicKey([i as u8; 32]),
                    },
                    sketch: s.clone(),
                })
                .collect(),
        }
    }

    #[test]
    fn the_sketch_is_linear() {
        let (x, y) = (noise(1, 50_000), noise(2, 50_000));
        let combo: Vec<f32> = x.iter().zip(&y).map(|(a, b)| 2.0 * a - 0.5 * b).collect();
        let mut expect = sketch_of(&x);
        expect.0.iter_mut().for_each(|v| *v *= 2.0);
        expect.add_scaled(&sketch_of(&y), -0.5);
        let got = sketch_of(&combo);
        for (a, b) in got.0.iter().zip(&expect.0) {
            assert!((a - b).abs() < 1e-3, "{a} vs {b}");
        }
    }

    #[test]
    fn sparse_and_dense_encodings_of_the_same_values_sketch_alike() {
        let mut v = noise(3, 20_000);
        for (i, x) in v.iter_mut().enumerate() {
            if i % 7 != 0 {
                *x = 0.0;
            }
        }
        let limits = Limits::for_model(v.len() as u64);
        let nonzero = |xs: &[f32]| xs.iter().filter(|x| **x != 0.0).count() as u64;
        let half = v.len() / 2;
        let k = nonzero(&v[..half]).max(nonzero(&v[half..]));
        let sparse = delta(
            &v,
            Encoding::TopK {
                k,
                values: DType::F32,
            },
        );
        let s = Sketch::of_delta(&DeltaReader::open(&sparse, &limits).unwrap()).unwrap();
        let d = sketch_of(&v);
        for (a, b) in s.0.iter().zip(&d.0) {
            assert!((a - b).abs() < 1e-5);
        }
    }

    #[test]
    fn scaled_perturbed_and_summed_copies_are_explained_independent_deltas_are_not() {
        let n = 200_000;
        let earlier: Vec<Vec<f32>> = (0..6).map(|i| noise(10 + i, n)).collect();
        let h = history(&earlier.iter().map(|v| sketch_of(v)).collect::<Vec<_>>());
        // Scaled (2x, 0.5x) and perturbed (x (1 + 1e-3) plus 5 % noise).
        for scale in [2.0f32, 0.5, 1.001] {
            let p = noise(99, n);
            let copy: Vec<f32> = earlier[2]
                .iter()
                .zip(&p)
                .map(|(a, e)| scale * a + 0.05 * e)
                .collect();
            let e = h.explain(&sketch_of(&copy), 0.99);
            assert!(e.explained > 0.95, "{scale}: {e:?}");
            assert_eq!(e.used[0].0, 2);
        }
        // Own work plus two earlier deltas.
        let own = noise(77, n);
        let rider: Vec<f32> = (0..n)
            .map(|i| own[i] + earlier[0][i] + earlier[4][i])
            .collect();
        let e = h.explain(&sketch_of(&rider), 0.99);
        assert!((e.explained - 2.0 / 3.0).abs() < 0.05, "{e:?}");
        // Independent work.
        let e = h.explain(&sketch_of(&noise(1234, n)), 0.99);
        assert!(e.explained < 0.05, "{e:?}");
        // Nothing to explain.
        assert_eq!(h.explain(&Sketch::zero(), 0.5).explained, 0.0);
        assert_eq!(
            SketchHistory::default()
                .explain(&sketch_of(&own), 0.5)
                .explained,
            0.0
        );
    }

    #[test]
    fn the_store_keeps_whole_records_and_ignores_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let store = SketchStore::open(dir.path()).unwrap();
        let e = |deadline, uid: u16| SketchEntry {
            deadline,
            source: SketchSource::Delta {
                uid,
                hotkey: PublicKey([uid as u8; 32]),
            },
            sketch: Sketch(noise(uid as u64, SKETCH_DIM)),
        };
        store.append(&e(10, 1)).unwrap();
        store.append(&e(20, 2)).unwrap();
        store
            .append(&SketchEntry {
                deadline: 20,
                source: SketchSource::Master,
                sketch: Sketch::zero(),
            })
            .unwrap();
        // A crash mid-record.
        let path = dir.path().join(format!("{:020}.sketches", 20));
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(&[1, 2, 3]).unwrap();
        let all = store.load(0..100).unwrap();
        assert_eq!(all.entries.len(), 3);
        assert_eq!(all.entries[0], e(10, 1));
        assert_eq!(all.entries[2].source, SketchSource::Master);
        assert_eq!(store.load(15..100).unwrap().entries.len(), 2);
        // The next append repairs the tail.
        store.append(&e(20, 3)).unwrap();
        assert_eq!(store.load(20..21).unwrap().entries.len(), 3);
        // A flipped bit is the store's corruption, not a silent skip.
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[100] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        assert!(matches!(store.load(20..21), Err(Error::Corrupt { .. })));
        store.prune(20).unwrap();
        assert!(store.load(0..20).unwrap().entries.is_empty());
    }

    #[test]
    fn a_delta_is_compared_with_other_hotkeys_deltas_only() {
        let (me, other) = (PublicKey([1; 32]), PublicKey([2; 32]));
        let entry = |hotkey, seed: u64| SketchEntry {
            deadline: 10,
            source: SketchSource::Delta { uid: 1, hotkey },
            sketch: Sketch(
                (0..SKETCH_DIM)
                    .map(|i| ((i as u64 * seed) % 7) as f32)
                    .collect(),
            ),
        };
        let history = SketchHistory {
            entries: vec![
                entry(me, 3),
                entry(other, 5),
                SketchEntry {
                    deadline: 10,
                    source: SketchSource::Master,
                    sketch: entry(me, 3).sketch,
                },
            ],
        };
        let mine = history.others_than(&me);
        assert_eq!(mine.entries.len(), 1);
        assert_eq!(mine.entries[0].source, entry(other, 5).source);
        // My own earlier delta again is not explained by others' deltas...
        assert!(mine.explain(&entry(me, 3).sketch, 0.99).explained < 0.99);
        // ...but it is a copy for anyone else.
        let theirs = history.others_than(&other);
        assert!(theirs.explain(&entry(me, 3).sketch, 0.99).explained > 0.99);
    }
}
