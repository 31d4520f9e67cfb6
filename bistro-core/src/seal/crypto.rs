//! Sealing and opening envelopes (feature `timelock`): AES-256-GCM over
//! chunks, in parallel, with the content key timelock-encrypted to a round.

use std::io::Write as _;
use std::path::Path;

use rayon::prelude::*;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, Tag, UnboundKey};

use super::{
    DEFAULT_CHUNK_SIZE, HEADER_LEN, INPUT, MAX_CHUNK_SIZE, MAX_KEY_CIPHERTEXT_LEN, MIN_CHUNK_SIZE,
    SealedHeader, TAG_LEN, VERSION, read_header,
};
use crate::chain::beacon::{BeaconKey, Pulse};
use crate::error::{Error, Result, TimelockError};
use crate::timelock;
use crate::util::atomic::TempFile;

/// How [`seal_with_options`] seals.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SealOptions {
    /// The content key that encrypts the payload. Must be fresh and secret
    /// for every envelope: the chunk nonces repeat between envelopes.
    pub content_key: [u8; 32],
    /// Seeds the timelock encryption's randomness (fresh random bytes).
    pub rng_seed: [u8; 32],
    /// Plaintext bytes per chunk (a power of two, 1 KiB to 16 MiB).
    pub chunk_size: u32,
}

/// Seals `plain` to round `round` of `beacon`, with a fresh content key and
/// timelock randomness from the operating system's RNG.
pub fn seal(plain: &[u8], beacon: &BeaconKey, round: u64) -> Result<Vec<u8>> {
    let content_key = timelock::random_seed()?;
    let rng_seed = timelock::random_seed()?;
    seal_with_key(plain, beacon, round, content_key, rng_seed)
}

/// Seals `plain` with the given content key and timelock seed (what tests
/// use for reproducible envelopes; [`seal`] draws both from the OS).
pub fn seal_with_key(
    plain: &[u8],
    beacon: &BeaconKey,
    round: u64,
    content_key: [u8; 32],
    rng_seed: [u8; 32],
) -> Result<Vec<u8>> {
    seal_with_options(
        plain,
        beacon,
        round,
        &SealOptions {
            content_key,
            rng_seed,
            chunk_size: DEFAULT_CHUNK_SIZE,
        },
    )
}

/// Seals `plain` as `options` say. [`Error::InvalidArgument`] for a chunk
/// size a reader would refuse; the errors of [`timelock::encrypt`] for a bad
/// beacon key.
pub fn seal_with_options(
    plain: &[u8],
    beacon: &BeaconKey,
    round: u64,
    options: &SealOptions,
) -> Result<Vec<u8>> {
    let chunk_size = options.chunk_size;
    if !chunk_size.is_power_of_two() || !(MIN_CHUNK_SIZE..=MAX_CHUNK_SIZE).contains(&chunk_size) {
        return Err(Error::InvalidArgument(format!(
            "chunk size {chunk_size} is not a power of two from {MIN_CHUNK_SIZE} to {MAX_CHUNK_SIZE}"
        )));
    }
    let key_ct = timelock::encrypt(beacon, round, &options.content_key, options.rng_seed)?;
    let key_len = u32::try_from(key_ct.len())
        .ok()
        .filter(|&n| n <= MAX_KEY_CIPHERTEXT_LEN)
        .ok_or_else(|| Error::InvalidArgument("key ciphertext too long".into()))?;
    let header = SealedHeader {
        version: VERSION,
        chunk_size,
        round,
        beacon_id: beacon.id(),
        plain_len: plain.len() as u64,
        key_len,
    };
    let total = header
        .sealed_len()
        .and_then(|n| usize::try_from(n).ok())
        .ok_or_else(|| Error::InvalidArgument("plaintext too large to seal".into()))?;
    let mut out = vec![0u8; total];
    let offset = HEADER_LEN + key_ct.len();
    out[..HEADER_LEN].copy_from_slice(&header.to_bytes());
    out[HEADER_LEN..offset].copy_from_slice(&key_ct);
    let (aad, payload) = out.split_at_mut(offset);
    let aad: &[u8] = aad;
    let cipher = cipher(&options.content_key)?;
    let count = header.chunk_count();
    let stride = chunk_size as usize + TAG_LEN;
    if plain.is_empty() {
        let tag = encrypt_chunk(&cipher, aad, 0, count, &mut [])?;
        payload.copy_from_slice(&tag);
    } else {
        payload
            .par_chunks_mut(stride)
            .zip(plain.par_chunks(chunk_size as usize))
            .enumerate()
            .try_for_each(|(index, (sealed, plain))| {
                let (body, tag) = sealed.split_at_mut(plain.len());
                body.copy_from_slice(plain);
                tag.copy_from_slice(&encrypt_chunk(&cipher, aad, index as u64, count, body)?);
                Ok::<(), Error>(())
            })?;
    }
    Ok(out)
}

/// Opens the sealed envelope `sealed` with `pulse` and returns the plaintext.
///
/// Checks, in order: the header ([`read_header`] with `max_plain_len`), that
/// `pulse` is for the envelope's round ([`TimelockError::WrongRound`]), that
/// the content key opens ([`TimelockError::DecryptFailed`] or `Malformed`),
/// and that every chunk authenticates ([`TimelockError::Unauthentic`]).
/// Memory: the plaintext (at most `max_plain_len` bytes). The pulse itself
/// is not checked against the beacon key: use [`timelock::verify_pulse`]
/// for a pulse from an untrusted source.
pub fn unseal(sealed: &[u8], pulse: &Pulse, max_plain_len: u64) -> Result<Vec<u8>> {
    let header = read_header(sealed, max_plain_len)?;
    let cipher = open_cipher(&header, sealed, pulse)?;
    let plain_len = usize::try_from(header.plain_len).map_err(|_| {
        Error::limit(
            "sealed plaintext bytes",
            usize::MAX as u64,
            header.plain_len,
        )
    })?;
    let mut out = vec![0u8; plain_len];
    decrypt_chunks(&header, sealed, &cipher, 0, &mut out)?;
    Ok(out)
}

/// Opens the sealed file `src` with `pulse` into `dst` (written atomically:
/// `dst` appears complete or not at all) and returns the plaintext length.
/// The same checks as [`unseal`]; `src` is memory-mapped and decrypted a few
/// chunks at a time in parallel, so memory stays at a few chunks whatever
/// the file's size. `src` must not be modified while this runs.
pub fn unseal_file(src: &Path, dst: &Path, pulse: &Pulse, max_plain_len: u64) -> Result<u64> {
    let file = std::fs::File::open(src).map_err(|e| Error::io(src, e))?;
    let len = file.metadata().map_err(|e| Error::io(src, e))?.len();
    if len < HEADER_LEN as u64 {
        // (Mapping an empty file fails on some systems.)
        return Err(Error::Truncated {
            input: INPUT,
            what: "header".into(),
            needed: HEADER_LEN as u64,
            available: len,
        });
    }
    // SAFETY: a read-only private map; the caller is told not to modify
    // `src` meanwhile, the one way the mapped bytes could change under us.
    let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| Error::io(src, e))?;
    let sealed: &[u8] = &map;
    let header = read_header(sealed, max_plain_len)?;
    let cipher = open_cipher(&header, sealed, pulse)?;

    let mut temp = TempFile::beside(dst)?;
    let temp_path = temp.path().to_path_buf();
    let chunk = header.chunk_size as usize;
    let batch_chunks = (2 * rayon::current_num_threads()).max(1);
    let batch_bytes = (batch_chunks as u64 * chunk as u64).min(header.plain_len);
    let mut buffer = vec![0u8; batch_bytes as usize];
    if header.plain_len == 0 {
        decrypt_chunks(&header, sealed, &cipher, 0, &mut [])?;
    }
    let mut first = 0u64;
    let mut done = 0u64;
    while done < header.plain_len {
        let n = (header.plain_len - done).min(batch_bytes) as usize;
        decrypt_chunks(&header, sealed, &cipher, first, &mut buffer[..n])?;
        temp.file()?
            .write_all(&buffer[..n])
            .map_err(|e| Error::io(&temp_path, e))?;
        done += n as u64;
        first += n.div_ceil(chunk) as u64;
    }
    temp.commit()?;
    Ok(header.plain_len)
}

/// Opens the content key of the envelope `sealed` (whose header is `header`)
/// with `pulse`: the pulse must be for the header's round
/// ([`TimelockError::WrongRound`]), and the key must decrypt to 32 bytes.
pub fn open_key(header: &SealedHeader, sealed: &[u8], pulse: &Pulse) -> Result<[u8; 32]> {
    if pulse.round != header.round {
        return Err(Error::Timelock(TimelockError::WrongRound {
            sealed: header.round,
            pulse: pulse.round,
        }));
    }
    let end = header.payload_offset() as usize;
    let key_ct = sealed
        .get(HEADER_LEN..end)
        .ok_or_else(|| Error::Truncated {
            input: INPUT,
            what: "key ciphertext".into(),
            needed: end as u64,
            available: sealed.len() as u64,
        })?;
    let key = timelock::decrypt(key_ct, pulse)?;
    key.as_slice().try_into().map_err(|_| {
        Error::Timelock(TimelockError::Malformed {
            what: "content key",
            reason: format!("{} bytes, not 32", key.len()),
        })
    })
}

fn open_cipher(header: &SealedHeader, sealed: &[u8], pulse: &Pulse) -> Result<LessSafeKey> {
    cipher(&open_key(header, sealed, pulse)?)
}

/// AES-256-GCM with `key` (ring's: AES-NI/VAES and carry-less multiplication).
fn cipher(key: &[u8; 32]) -> Result<LessSafeKey> {
    UnboundKey::new(&AES_256_GCM, key)
        .map(LessSafeKey::new)
        .map_err(|_| Error::Unavailable("AES-256-GCM is not available".into()))
}

/// The nonce of chunk `index` of `count`: the index (u64 LE), a last-chunk
/// flag byte, three zero bytes.
fn nonce(index: u64, count: u64) -> [u8; 12] {
    let mut n = [0u8; 12];
    n[..8].copy_from_slice(&index.to_le_bytes());
    n[8] = u8::from(index + 1 == count);
    n
}

fn encrypt_chunk(
    cipher: &LessSafeKey,
    aad: &[u8],
    index: u64,
    count: u64,
    body: &mut [u8],
) -> Result<[u8; TAG_LEN]> {
    let nonce = Nonce::assume_unique_for_key(nonce(index, count));
    let tag = cipher
        .seal_in_place_separate_tag(nonce, Aad::from(aad), body)
        .map_err(|_| Error::InvalidArgument("chunk too large for AES-GCM".into()))?;
    let mut out = [0u8; TAG_LEN];
    out.copy_from_slice(tag.as_ref());
    Ok(out)
}

/// Decrypts the chunks that start at chunk `first` into `out` (whose length
/// is a whole number of chunks, or reaches the end of the plaintext; empty
/// only for an empty plaintext's one chunk), in parallel.
fn decrypt_chunks(
    header: &SealedHeader,
    sealed: &[u8],
    cipher: &LessSafeKey,
    first: u64,
    out: &mut [u8],
) -> Result<()> {
    let offset = header.payload_offset() as usize;
    let aad = &sealed[..offset];
    let count = header.chunk_count();
    let chunk = header.chunk_size as usize;
    let stride = chunk + TAG_LEN;
    let one = |index: u64, body: &mut [u8]| -> Result<()> {
        let unauthentic = || Error::Timelock(TimelockError::Unauthentic { chunk: index });
        let start = usize::try_from(index)
            .ok()
            .and_then(|i| i.checked_mul(stride))
            .and_then(|s| s.checked_add(offset))
            .ok_or_else(unauthentic)?;
        let end = start + body.len();
        // `read_header` checked that the layout fills `sealed` exactly.
        let (Some(ciphertext), Some(tag)) =
            (sealed.get(start..end), sealed.get(end..end + TAG_LEN))
        else {
            return Err(unauthentic());
        };
        let tag = Tag::try_from(tag).map_err(|_| unauthentic())?;
        body.copy_from_slice(ciphertext);
        let nonce = Nonce::assume_unique_for_key(nonce(index, count));
        match cipher.open_in_place_separate_tag(nonce, Aad::from(aad), tag, body, 0..) {
            Ok(_) => Ok(()),
            Err(_) => {
                body.fill(0);
                Err(unauthentic())
            }
        }
    };
    if out.is_empty() {
        return one(first, out);
    }
    out.par_chunks_mut(chunk)
        .enumerate()
        .try_for_each(|(i, body)| one(first + i as u64, body))
}
