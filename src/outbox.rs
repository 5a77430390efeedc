//! The bounded reply buffer of one TCP session.
//!
//! A protocol never writes to a socket: it writes its reply here, and the
//! binding ([`crate::net`]) moves the bytes into the socket's send buffer as
//! space allows. A protocol takes no new input while its outbox is not empty,
//! so a client that sends faster than it reads is slowed down by TCP flow
//! control instead of having replies dropped.

use core::fmt;

use crate::config::MAX_REPLY;

/// Replies waiting to be sent, in order.
#[derive(Debug, Clone, Default)]
pub struct Outbox {
    /// The bytes queued so far.
    buf: heapless::Vec<u8, MAX_REPLY>,
    /// How many of `buf` have already gone to the socket. Kept instead of
    /// shifting the buffer on every partial send.
    sent: usize,
}

/// The outbox cannot take the whole write; nothing was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Full;

impl Outbox {
    /// An empty outbox.
    pub const fn new() -> Self {
        Outbox {
            buf: heapless::Vec::new(),
            sent: 0,
        }
    }

    /// Bytes not yet handed to the socket.
    pub fn pending(&self) -> &[u8] {
        &self.buf[self.sent..]
    }

    /// Whether everything has been handed to the socket.
    pub fn is_empty(&self) -> bool {
        self.sent == self.buf.len()
    }

    /// Marks `n` pending bytes as sent.
    pub fn advance(&mut self, n: usize) {
        self.sent = (self.sent + n).min(self.buf.len());
        if self.sent == self.buf.len() {
            self.clear();
        }
    }

    /// Room left for new bytes.
    pub fn space(&self) -> usize {
        MAX_REPLY - self.buf.len()
    }

    /// Appends `bytes` whole, or nothing at all.
    pub fn push(&mut self, bytes: &[u8]) -> Result<(), Full> {
        self.buf.extend_from_slice(bytes).map_err(|_| Full)
    }

    /// Appends as much of `bytes` as fits and returns how much that was.
    pub fn push_partial(&mut self, bytes: &[u8]) -> usize {
        let n = bytes.len().min(self.space());
        // Cannot fail: `n` fits by construction.
        let _ = self.buf.extend_from_slice(&bytes[..n]);
        n
    }

    /// Drops everything, sent or not.
    pub fn clear(&mut self) {
        self.buf.clear();
        self.sent = 0;
    }
}

impl fmt::Write for Outbox {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.push(s.as_bytes()).map_err(|_| fmt::Error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::fmt::Write;

    #[test]
    fn partial_sends_keep_order() {
        let mut o = Outbox::new();
        write!(o, "hello {}", 42).unwrap();
        assert_eq!(o.pending(), b"hello 42");
        o.advance(3);
        assert_eq!(o.pending(), b"lo 42");
        o.advance(5);
        assert!(o.is_empty());
        assert_eq!(o.space(), MAX_REPLY);
    }

    #[test]
    fn push_is_all_or_nothing() {
        let mut o = Outbox::new();
        let big = [b'x'; MAX_REPLY + 1];
        assert_eq!(o.push(&big), Err(Full));
        assert!(o.is_empty());
        assert_eq!(o.push_partial(&big), MAX_REPLY);
        assert_eq!(o.space(), 0);
    }
}
