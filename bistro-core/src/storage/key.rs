//! The one rule for object keys, shared by every backend.
//!
//! A key is one or more components separated by `/`. Each component is 1 to
//! [`MAX_COMPONENT_BYTES`] bytes of `A-Z a-z 0-9 . _ - =` and does not start
//! with `.`. The whole key is at most [`MAX_KEY_BYTES`] bytes.
//!
//! So a key can never be absolute (`/x`), climb out (`..`), name the current
//! directory (`.`), hold NUL, a backslash or a control character, or collide
//! with a [`LocalBucket`](super::LocalBucket) temp file (those start with
//! `.`). The same key means the same object on a file system and on S3.

use crate::error::{Error, Result};

/// The longest key accepted, in bytes (S3's own limit is 1024).
pub const MAX_KEY_BYTES: usize = 1024;

/// The longest path component accepted, in bytes (the usual file-name limit).
pub const MAX_COMPONENT_BYTES: usize = 255;

fn allowed(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b'-' | b'=')
}

fn bad_key(key: &str, why: &str) -> Error {
    // Keys can come from strangers: show a bounded, escaped form.
    let shown: String = key.chars().take(80).collect();
    Error::InvalidArgument(format!("bad object key {shown:?}: {why}"))
}

/// Checks `key` against the key rule (see the module docs).
pub fn validate_key(key: &str) -> Result<()> {
    if key.is_empty() {
        return Err(bad_key(key, "empty"));
    }
    check_chars(key)?;
    for component in key.split('/') {
        check_component(key, component)?;
    }
    Ok(())
}

/// Checks a listing prefix: empty, or a key whose last component may be
/// partial or empty (`"deltas/"`, `"deltas/5Grw"`).
pub fn validate_prefix(prefix: &str) -> Result<()> {
    if prefix.is_empty() {
        return Ok(());
    }
    check_chars(prefix)?;
    let mut components: Vec<&str> = prefix.split('/').collect();
    // The last component may be partial (empty after a trailing `/`).
    let last = components.pop().unwrap_or_default();
    for component in components {
        check_component(prefix, component)?;
    }
    if last.starts_with('.') {
        return Err(bad_key(prefix, "a component starts with '.'"));
    }
    Ok(())
}

fn check_chars(key: &str) -> Result<()> {
    if key.len() > MAX_KEY_BYTES {
        return Err(bad_key(
            key,
            &format!("{} bytes, over the limit of {MAX_KEY_BYTES}", key.len()),
        ));
    }
    if key.bytes().any(|b| b == 0) {
        return Err(bad_key(key, "contains NUL"));
    }
    if let Some(b) = key.bytes().find(|&b| b != b'/' && !allowed(b)) {
        return Err(bad_key(
            key,
            &format!("byte 0x{b:02x} is not one of A-Z a-z 0-9 . _ - = /"),
        ));
    }
    Ok(())
}

fn check_component(key: &str, component: &str) -> Result<()> {
    if component.is_empty() {
        return Err(bad_key(
            key,
            "empty path component (leading, trailing or double '/')",
        ));
    }
    if component.starts_with('.') {
        return Err(bad_key(
            key,
            "a component starts with '.' ('.', '..' and hidden names are reserved)",
        ));
    }
    if component.len() > MAX_COMPONENT_BYTES {
        return Err(bad_key(
            key,
            &format!("a component is over {MAX_COMPONENT_BYTES} bytes"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_layout_keys() {
        for key in [
            "a",
            "deltas/5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY/00000000000000000042.delta",
            "master/LATEST.json",
            "x=1/y_2/z-3.bin",
        ] {
            validate_key(key).unwrap();
        }
    }

    #[test]
    fn rejects_escapes_and_odd_bytes() {
        let long = "a".repeat(MAX_KEY_BYTES + 1);
        let long_component = format!("a/{}", "b".repeat(MAX_COMPONENT_BYTES + 1));
        for key in [
            "",
            "/abs",
            "..",
            "../x",
            "a/../b",
            "a/./b",
            ".",
            "a/",
            "a//b",
            "a\0b",
            "a\\b",
            "C:x",
            "a b",
            "a\nb",
            ".hidden",
            "a/.tmp",
            "é",
            long.as_str(),
            long_component.as_str(),
        ] {
            let err = validate_key(key).unwrap_err();
            assert!(matches!(err, Error::InvalidArgument(_)), "{key:?}: {err}");
        }
    }

    #[test]
    fn prefixes_may_end_partially() {
        for prefix in ["", "deltas/", "deltas/5Grw", "a/b/c"] {
            validate_prefix(prefix).unwrap();
        }
        for prefix in ["/", "../", "a//", "a/..", "a/.", "a\0", "a/../b/"] {
            assert!(validate_prefix(prefix).is_err(), "{prefix:?}");
        }
    }
}
