//! The `Content-Range` header of a ranged response (RFC 9110, 14.4), as
//! servers send it for `206 Partial Content`.

/// Parses `bytes START-END/TOTAL` (TOTAL `None` for `*`); `None` for
/// anything else. Whether the range is the one asked for is the caller's
/// check.
pub(crate) fn parse_content_range(value: &str) -> Option<(u64, u64, Option<u64>)> {
    let rest = value.trim().strip_prefix("bytes ")?;
    let (range, total) = rest.split_once('/')?;
    let (start, end) = range.split_once('-')?;
    let total = if total == "*" {
        None
    } else {
        Some(total.parse().ok()?)
    };
    Some((start.parse().ok()?, end.parse().ok()?, total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_content_range() {
        assert_eq!(
            parse_content_range("bytes 0-127/4096"),
            Some((0, 127, Some(4096)))
        );
        assert_eq!(parse_content_range("bytes 5-9/*"), Some((5, 9, None)));
        assert_eq!(parse_content_range("bytes 5-x/10"), None);
        assert_eq!(parse_content_range("items 0-1/2"), None);
        assert_eq!(parse_content_range("bytes 1-2/99999999999999999999"), None);
    }
}
