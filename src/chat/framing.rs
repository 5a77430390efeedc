//! Where one chat message ends on a TCP byte stream.
//!
//! Two kinds of clients must both work:
//! - line clients (`nc`, `telnet`, `socat`) end each message with LF or CRLF;
//! - the tutorial's Python client sends one message per `send()` with no
//!   terminator at all, and then waits for the reply.
//!
//! **The rule:** a message ends at LF (a CR before it is dropped). Bytes with
//! no LF after them become a message once the client has been quiet for
//! [`Limits::quiet_flush`](crate::config::Limits::quiet_flush) (30 ms by
//! default) or closes its sending half. A message longer than
//! [`MAX_MESSAGE`] bytes is reported as [`Event::TooLong`] once, and the
//! rest of it is skipped up to the next LF (or quiet gap): the session
//! resynchronises on the next line instead of being closed.
//!
//! The reply mirrors the terminator of the message it answers, so a line
//! client gets lines, and the tutorial client gets exactly `byebye` (which
//! it compares without stripping anything).

use smoltcp::time::{Duration, Instant};

use crate::config::MAX_MESSAGE;

/// How a message was terminated; the reply uses the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Terminator {
    /// `\n`
    Lf,
    /// `\r\n`
    CrLf,
    /// Quiet gap or end of stream: no terminator.
    None,
}

impl Terminator {
    /// The bytes to append to a reply.
    pub fn as_bytes(self) -> &'static [u8] {
        match self {
            Terminator::Lf => b"\n",
            Terminator::CrLf => b"\r\n",
            Terminator::None => b"",
        }
    }
}

/// What the framer found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// Nothing complete yet.
    Pending,
    /// [`Framer::message`] holds a complete message.
    Message(Terminator),
    /// A message exceeded [`MAX_MESSAGE`]. `None`: it is still arriving, and
    /// the rest of it will be skipped. `Some`: it has ended, this way (a
    /// message of exactly `MAX_MESSAGE + 1` bytes is only found too long at
    /// its end); the reply ends the same way.
    TooLong(Option<Terminator>),
}

/// Splits a byte stream into messages.
#[derive(Debug, Clone, Default)]
pub struct Framer {
    /// The message so far. One spare byte holds a CR that may turn out to
    /// be half of a CRLF.
    buf: heapless::Vec<u8, { MAX_MESSAGE + 1 }>,
    /// When the last byte arrived: the quiet-flush timer starts here.
    last_rx: Option<Instant>,
    /// Skipping the tail of an over-long message.
    discarding: bool,
}

impl Framer {
    /// An empty framer.
    pub const fn new() -> Self {
        Framer {
            buf: heapless::Vec::new(),
            last_rx: None,
            discarding: false,
        }
    }

    /// Feeds `data`, stopping right after the first event. Returns how many
    /// bytes were consumed and the event. After `Event::Message`, read
    /// [`Framer::message`] and call [`Framer::clear`] before feeding more.
    pub fn push(&mut self, now: Instant, data: &[u8]) -> (usize, Event) {
        for (i, &b) in data.iter().enumerate() {
            self.last_rx = Some(now);
            if b == b'\n' {
                if core::mem::take(&mut self.discarding) {
                    self.buf.clear();
                    continue;
                }
                let term = if self.buf.last() == Some(&b'\r') {
                    self.buf.pop();
                    Terminator::CrLf
                } else {
                    Terminator::Lf
                };
                return (i + 1, self.complete(term));
            }
            if self.discarding {
                continue;
            }
            if self.buf.push(b).is_err() {
                self.buf.clear();
                self.discarding = true;
                return (i + 1, Event::TooLong(None));
            }
        }
        (data.len(), Event::Pending)
    }

    /// Completes a message without terminator if the client has been quiet
    /// for `quiet`.
    pub fn poll(&mut self, now: Instant, quiet: Duration) -> Event {
        match self.deadline(quiet) {
            Some(at) if now >= at => self.flush(),
            _ => Event::Pending,
        }
    }

    /// The client closed its sending half: whatever is buffered is a message.
    pub fn flush(&mut self) -> Event {
        self.last_rx = None;
        if core::mem::take(&mut self.discarding) {
            self.buf.clear();
            return Event::Pending;
        }
        if self.buf.is_empty() {
            Event::Pending
        } else {
            self.complete(Terminator::None)
        }
    }

    /// When [`Framer::poll`] would complete a message.
    pub fn deadline(&self, quiet: Duration) -> Option<Instant> {
        match self.last_rx {
            Some(t) if !self.buf.is_empty() || self.discarding => Some(t + quiet),
            _ => None,
        }
    }

    /// The complete message, without its terminator.
    pub fn message(&self) -> &[u8] {
        &self.buf
    }

    /// Forgets the message just handled.
    pub fn clear(&mut self) {
        self.buf.clear();
    }

    fn complete(&mut self, term: Terminator) -> Event {
        if self.buf.len() > MAX_MESSAGE {
            self.buf.clear();
            return Event::TooLong(Some(term));
        }
        Event::Message(term)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const QUIET: Duration = Duration::from_millis(30);

    fn t(ms: u64) -> Instant {
        Instant::from_millis(ms as i64)
    }

    #[test]
    fn lf_and_crlf_lines() {
        let mut f = Framer::new();
        assert_eq!(
            f.push(t(0), b"hi\r\nyo\n"),
            (4, Event::Message(Terminator::CrLf))
        );
        assert_eq!(f.message(), b"hi");
        f.clear();
        assert_eq!(f.push(t(0), b"yo\n"), (3, Event::Message(Terminator::Lf)));
        assert_eq!(f.message(), b"yo");
    }

    #[test]
    fn unterminated_message_completes_after_quiet_gap() {
        let mut f = Framer::new();
        assert_eq!(f.push(t(0), b"hel"), (3, Event::Pending));
        assert_eq!(f.push(t(10), b"lo"), (2, Event::Pending));
        assert_eq!(f.deadline(QUIET), Some(t(40)));
        assert_eq!(f.poll(t(39), QUIET), Event::Pending);
        assert_eq!(f.poll(t(40), QUIET), Event::Message(Terminator::None));
        assert_eq!(f.message(), b"hello");
        f.clear();
        assert_eq!(f.deadline(QUIET), None);
    }

    #[test]
    fn end_of_stream_completes_the_message() {
        let mut f = Framer::new();
        f.push(t(0), b"byebye");
        assert_eq!(f.flush(), Event::Message(Terminator::None));
        assert_eq!(f.message(), b"byebye");
    }

    #[test]
    fn too_long_is_reported_once_then_resyncs_at_newline() {
        let mut f = Framer::new();
        let long = [b'x'; MAX_MESSAGE + 10];
        let (n, ev) = f.push(t(0), &long);
        assert_eq!(ev, Event::TooLong(None));
        assert_eq!(f.push(t(0), &long[n..]), (long.len() - n, Event::Pending));
        assert_eq!(
            f.push(t(0), b"tail\nok\n"),
            (8, Event::Message(Terminator::Lf))
        );
        assert_eq!(f.message(), b"ok");
    }

    #[test]
    fn exactly_max_bytes_is_fine_with_crlf() {
        let mut f = Framer::new();
        let mut line = [b'y'; MAX_MESSAGE + 2];
        line[MAX_MESSAGE] = b'\r';
        line[MAX_MESSAGE + 1] = b'\n';
        assert_eq!(f.push(t(0), &line).1, Event::Message(Terminator::CrLf));
        assert_eq!(f.message().len(), MAX_MESSAGE);
        f.clear();
        let mut over = [b'y'; MAX_MESSAGE + 2];
        over[MAX_MESSAGE + 1] = b'\n';
        assert_eq!(f.push(t(0), &over).1, Event::TooLong(Some(Terminator::Lf)));
    }

    #[test]
    fn byte_by_byte_equals_all_at_once() {
        let mut f = Framer::new();
        let mut got = None;
        for &b in b"abc\r\n" {
            if let (_, Event::Message(term)) = f.push(t(0), &[b]) {
                got = Some((f.message().to_vec(), term));
            }
        }
        assert_eq!(got, Some((b"abc".to_vec(), Terminator::CrLf)));
    }
}
