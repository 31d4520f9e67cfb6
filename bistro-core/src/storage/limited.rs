//! A writer that refuses to take more than a cap: how downloads stay bounded
//! when a server's `Content-Length` lies.

use std::io::{self, Write};

/// Wraps a writer; fails (and remembers it) when more than `cap` bytes arrive.
pub(crate) struct CappedWriter<W> {
    inner: W,
    cap: u64,
    written: u64,
    exceeded: bool,
}

impl<W: Write> CappedWriter<W> {
    /// A writer that passes at most `cap` bytes to `inner`.
    pub(crate) fn new(inner: W, cap: u64) -> Self {
        CappedWriter {
            inner,
            cap,
            written: 0,
            exceeded: false,
        }
    }

    /// Bytes passed through so far.
    #[cfg_attr(not(feature = "s3"), allow(dead_code))]
    pub(crate) fn written(&self) -> u64 {
        self.written
    }

    /// Whether a write was refused because it would pass the cap.
    pub(crate) fn exceeded(&self) -> bool {
        self.exceeded
    }

    /// The wrapped writer.
    #[cfg(test)]
    pub(crate) fn into_inner(self) -> W {
        self.inner
    }
}

impl<W: Write> Write for CappedWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let room = self.cap.saturating_sub(self.written);
        if buf.len() as u64 > room {
            self.exceeded = true;
            return Err(io::Error::other("download is larger than its byte cap"));
        }
        let n = self.inner.write(buf)?;
        self.written = self.written.saturating_add(n as u64);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stops_at_the_cap() {
        let mut w = CappedWriter::new(Vec::new(), 5);
        w.write_all(b"abc").unwrap();
        assert!(w.write_all(b"def").is_err());
        assert!(w.exceeded());
        assert_eq!(w.written(), 3);
        assert_eq!(w.into_inner(), b"abc");

        let mut w = CappedWriter::new(Vec::new(), 3);
        w.write_all(b"abc").unwrap();
        assert!(!w.exceeded());
    }
}
