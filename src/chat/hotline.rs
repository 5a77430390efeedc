//! The UDP "hotline" chat (tutorial exercise 2, port 8086).
//!
//! Each datagram is one message and gets one reply, sent to the address it
//! came from. Unlike the tutorial's server, which served whoever wrote last,
//! the hotline keeps one session per client address (IP and port) in a
//! bounded table, so many clients talk at once and an operator can tell them
//! apart. A session ends with `byebye` or after
//! [`Limits::hotline_idle`](crate::config::Limits::hotline_idle) of silence.
//! When the table is full, a new client is told the line is busy; the
//! clients already in it are unaffected.

use heapless::String;
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::IpEndpoint;

use crate::chat::responder::{Answer, Reply, Responder};
use crate::chat::{BYEBYE, rules};
use crate::config::{HOTLINE_SESSIONS, MAX_MESSAGE, MAX_REPLY};
use crate::session::{SessionId, Transport};

/// One row of the session table.
#[derive(Debug, Clone, Copy)]
struct Line {
    /// Who is calling.
    peer: IpEndpoint,
    /// Last datagram from them: drives idle expiry.
    last_seen: Instant,
    /// Bumped on every reuse of the row, so an operator's late reply to a
    /// caller who left never reaches the next caller.
    generation: u16,
    /// Whether the row is taken.
    busy: bool,
}

const FREE: Line = Line {
    peer: IpEndpoint {
        addr: smoltcp::wire::IpAddress::Ipv4(smoltcp::wire::Ipv4Address::UNSPECIFIED),
        port: 0,
    },
    last_seen: Instant::ZERO,
    generation: 0,
    busy: false,
};

/// What to do after a datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Send the reply in `out` to the sender.
    Reply,
    /// An operator will answer later, through [`Hotline::peer`].
    Deferred(SessionId),
}

/// The session table.
#[derive(Debug, Clone)]
pub struct Hotline {
    lines: [Line; HOTLINE_SESSIONS],
}

impl Default for Hotline {
    fn default() -> Self {
        Self::new()
    }
}

impl Hotline {
    /// An empty table.
    pub const fn new() -> Self {
        Hotline {
            lines: [FREE; HOTLINE_SESSIONS],
        }
    }

    /// Handles one datagram from `from`, writing the reply to `out`.
    pub fn on_datagram(
        &mut self,
        responder: &mut dyn Responder,
        now: Instant,
        idle: Duration,
        from: IpEndpoint,
        data: &[u8],
        out: &mut Reply,
    ) -> Outcome {
        out.clear();
        self.expire(responder, now, idle);
        let text = match core::str::from_utf8(data) {
            _ if data.len() > MAX_MESSAGE => {
                let _ = out.push_str("error: message too long (max 256 bytes)");
                return Outcome::Reply;
            }
            Ok(text) => text,
            Err(_) => {
                let _ = out.push_str("error: invalid UTF-8");
                return Outcome::Reply;
            }
        };
        let bye = text.trim() == BYEBYE;
        let index = match self.find(from) {
            Some(i) => i,
            None if bye => {
                let _ = out.push_str(BYEBYE);
                return Outcome::Reply;
            }
            None => match self.lines.iter().position(|l| !l.busy) {
                Some(i) => {
                    let line = &mut self.lines[i];
                    *line = Line {
                        peer: from,
                        last_seen: now,
                        generation: line.generation.wrapping_add(1),
                        busy: true,
                    };
                    info!("hotline {}: new caller {}", self.id(i), from);
                    i
                }
                None => {
                    warn!("hotline: full, {} told busy", from);
                    let _ = out.push_str("busy: all hotline lines are taken, try again later");
                    return Outcome::Reply;
                }
            },
        };
        self.lines[index].last_seen = now;
        let id = self.id(index);
        if bye {
            info!("hotline {}: byebye", id);
            self.lines[index].busy = false;
            responder.ended(id);
            let _ = out.push_str(BYEBYE);
            return Outcome::Reply;
        }
        let mut rewritten: String<MAX_REPLY> = String::new();
        let matched = rules::rewrite(text, responder.rules(), &mut rewritten).unwrap_or(true);
        match responder.answer(id, text, matched.then_some(rewritten.as_str()), out) {
            Answer::Now => Outcome::Reply,
            Answer::Later => Outcome::Deferred(id),
        }
    }

    /// Forgets callers silent for `idle`.
    pub fn expire(&mut self, responder: &mut dyn Responder, now: Instant, idle: Duration) {
        for i in 0..self.lines.len() {
            let line = &mut self.lines[i];
            if line.busy && now >= line.last_seen + idle {
                line.busy = false;
                let id = self.id(i);
                info!("hotline {}: idle, forgotten", id);
                responder.ended(id);
            }
        }
    }

    /// When the next caller expires.
    pub fn poll_at(&self, idle: Duration) -> Option<Instant> {
        self.lines
            .iter()
            .filter(|l| l.busy)
            .map(|l| l.last_seen + idle)
            .min()
    }

    /// The address of a live session, for an operator's reply.
    pub fn peer(&self, id: SessionId) -> Option<IpEndpoint> {
        let line = self.lines.get(usize::from(id.index))?;
        (id.transport == Transport::Udp && line.busy && line.generation == id.generation)
            .then_some(line.peer)
    }

    /// Ends a session (an operator said byebye).
    pub fn end(&mut self, id: SessionId) {
        if self.peer(id).is_some() {
            self.lines[usize::from(id.index)].busy = false;
        }
    }

    /// How many callers are in the table.
    pub fn active(&self) -> usize {
        self.lines.iter().filter(|l| l.busy).count()
    }

    fn find(&self, peer: IpEndpoint) -> Option<usize> {
        self.lines.iter().position(|l| l.busy && l.peer == peer)
    }

    fn id(&self, index: usize) -> SessionId {
        // HOTLINE_SESSIONS is far below 256.
        SessionId {
            transport: Transport::Udp,
            index: index as u8,
            generation: self.lines[index].generation,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::AutoResponder;
    use crate::testing::{Deferring, t};
    use smoltcp::wire::{IpAddress, Ipv4Address};

    const IDLE: Duration = Duration::from_secs(120);

    fn ep(port: u16) -> IpEndpoint {
        IpEndpoint::new(IpAddress::Ipv4(Ipv4Address::new(192, 0, 2, 1)), port)
    }

    fn say(h: &mut Hotline, now: i64, port: u16, msg: &[u8]) -> (Outcome, std::string::String) {
        let mut out = Reply::new();
        let o = h.on_datagram(
            &mut AutoResponder::new(),
            t(now),
            IDLE,
            ep(port),
            msg,
            &mut out,
        );
        (o, out.as_str().into())
    }

    #[test]
    fn each_datagram_gets_one_reply_with_rewrite() {
        let mut h = Hotline::new();
        let (o, r) = say(&mut h, 0, 1000, "hello, you sb".as_bytes());
        assert_eq!(o, Outcome::Reply);
        assert!(
            r.starts_with("Hello!") && r.ends_with("You said: hello, you **"),
            "{r}"
        );
        assert_eq!(h.active(), 1);
    }

    #[test]
    fn many_callers_then_busy_without_disturbing_others() {
        let mut h = Hotline::new();
        for p in 0..HOTLINE_SESSIONS as u16 {
            say(&mut h, 0, 2000 + p, b"hi");
        }
        let (_, r) = say(&mut h, 1, 9999, b"hi");
        assert!(r.starts_with("busy:"));
        let (_, r) = say(&mut h, 1, 2000, b"hours");
        assert!(r.contains("24/7"));
        assert_eq!(h.active(), HOTLINE_SESSIONS);
    }

    #[test]
    fn byebye_and_idle_free_the_line() {
        let mut h = Hotline::new();
        say(&mut h, 0, 1, b"hi");
        say(&mut h, 0, 2, b"hi");
        assert_eq!(say(&mut h, 1, 1, b"byebye").1, "byebye");
        assert_eq!(h.active(), 1);
        assert_eq!(h.poll_at(IDLE), Some(t(120_000)));
        h.expire(&mut AutoResponder::new(), t(120_000), IDLE);
        assert_eq!(h.active(), 0);
    }

    #[test]
    fn bad_datagrams_get_errors() {
        let mut h = Hotline::new();
        assert_eq!(say(&mut h, 0, 1, b"\xff").1, "error: invalid UTF-8");
        assert!(
            say(&mut h, 0, 1, &[b'a'; MAX_MESSAGE + 1])
                .1
                .starts_with("error: message too long")
        );
        assert!(say(&mut h, 0, 1, b"").1.contains("empty"));
    }

    #[test]
    fn operator_reply_finds_only_the_live_generation() {
        let mut h = Hotline::new();
        let mut out = Reply::new();
        let o = h.on_datagram(&mut Deferring, t(0), IDLE, ep(5), b"help me", &mut out);
        let Outcome::Deferred(id) = o else {
            panic!("{o:?}")
        };
        assert_eq!(h.peer(id), Some(ep(5)));
        say(&mut h, 1, 5, b"byebye");
        assert_eq!(h.peer(id), None);
        say(&mut h, 2, 6, b"hi");
        assert_eq!(
            h.peer(id),
            None,
            "the row's next caller is another generation"
        );
    }
}
