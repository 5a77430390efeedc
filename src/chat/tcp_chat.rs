//! The turn-taking chat on TCP (tutorial port 8081).
//!
//! The server speaks first (a greeting). After that the turns alternate:
//! each client message gets exactly one reply, and the session reads
//! nothing more from the client until that reply is written. `byebye` from
//! the client is answered with `byebye` and the server closes; an operator's
//! `byebye` ends the session too.

use heapless::String;
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::IpAddress;

use crate::chat::framing::{Event, Framer, Terminator};
use crate::chat::responder::{Answer, Reply};
use crate::chat::{BYEBYE, rules};
use crate::config::{Limits, MAX_MESSAGE, MAX_REPLY};
use crate::outbox::Outbox;
use crate::session::{Protocol, SessionId, Shared};

/// Whose turn it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Turn {
    /// Waiting for the client's next message.
    Client,
    /// The responder answered `Later`: an operator owes a reply, which will
    /// end with this terminator.
    Operator(Terminator),
    /// `byebye` was said, or the session timed out.
    Over,
}

/// One TCP chat connection.
#[derive(Debug, Clone)]
pub struct ChatSession {
    /// Which session this is, for the responder and the operator.
    id: SessionId,
    /// Splits the byte stream into messages.
    framer: Framer,
    /// Whose turn it is.
    turn: Turn,
    /// The terminator of the client's last message: errors and timeouts
    /// that are not answers to a message use it too.
    last_term: Terminator,
    /// Copied from [`Limits::quiet_flush`] at open, so `poll_at` needs no context.
    quiet: Duration,
    /// The client closed its sending half: no more messages will come.
    peer_gone: bool,
}

/// An operator reply arrived when the session was not waiting for one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotYourTurn;

impl ChatSession {
    /// A session that will greet its client when opened.
    pub const fn new(id: SessionId) -> Self {
        ChatSession {
            id,
            framer: Framer::new(),
            turn: Turn::Client,
            last_term: Terminator::Lf,
            quiet: Limits::DEFAULT.quiet_flush,
            peer_gone: false,
        }
    }

    /// This session's id.
    pub fn id(&self) -> SessionId {
        self.id
    }

    /// Whether the session waits for an operator's reply.
    pub fn awaiting_operator(&self) -> bool {
        matches!(self.turn, Turn::Operator(_))
    }

    /// Delivers an operator's reply. `byebye` ends the session; anything
    /// else hands the turn back to the client.
    pub fn operator_reply(&mut self, text: &str, out: &mut Outbox) -> Result<(), NotYourTurn> {
        let term = match self.turn {
            Turn::Operator(term) => term,
            Turn::Client if text.trim() == BYEBYE => self.last_term,
            _ => return Err(NotYourTurn),
        };
        let _ = out.push_partial(text.as_bytes());
        let _ = out.push(term.as_bytes());
        self.turn = if text.trim() == BYEBYE {
            Turn::Over
        } else {
            Turn::Client
        };
        Ok(())
    }

    fn handle(&mut self, cx: &mut Shared<'_, '_>, event: Event, out: &mut Outbox) {
        match event {
            Event::Pending => return,
            Event::TooLong(end) => {
                info!("chat {}: message over {} bytes", self.id, MAX_MESSAGE);
                // Known once the message has ended; before that, the error
                // goes out the way the client's last message ended.
                if let Some(term) = end {
                    self.last_term = term;
                }
                say(
                    out,
                    "error: message too long (max 256 bytes)",
                    self.last_term,
                );
                return;
            }
            Event::Message(term) => self.last_term = term,
        }
        let term = self.last_term;
        let Ok(text) = core::str::from_utf8(self.framer.message()) else {
            say(out, "error: invalid UTF-8", term);
            self.framer.clear();
            return;
        };
        if text.trim() == BYEBYE {
            info!("chat {}: client said byebye", self.id);
            say(out, BYEBYE, term);
            self.turn = Turn::Over;
        } else {
            let mut rewritten: String<MAX_REPLY> = String::new();
            // A rewrite that does not fit is quoted truncated rather than lost.
            let matched =
                rules::rewrite(text, cx.responder.rules(), &mut rewritten).unwrap_or(true);
            let mut reply = Reply::new();
            let quote = matched.then_some(rewritten.as_str());
            match cx.responder.answer(self.id, text, quote, &mut reply) {
                Answer::Now => say(out, &reply, term),
                Answer::Later => self.turn = Turn::Operator(term),
            }
        }
        self.framer.clear();
    }
}

/// Writes one reply line. The outbox holds a whole reply by construction
/// (`MAX_REPLY`), so nothing is cut unless a responder overfills its reply.
fn say(out: &mut Outbox, text: &str, term: Terminator) {
    let _ = out.push_partial(text.as_bytes());
    let _ = out.push(term.as_bytes());
}

impl Protocol for ChatSession {
    fn open(&mut self, cx: &mut Shared<'_, '_>, _: Instant, peer: IpAddress, out: &mut Outbox) {
        self.quiet = cx.limits.quiet_flush;
        info!("chat {}: {} connected", self.id, peer);
        let mut greeting = Reply::new();
        cx.responder.greeting(self.id, &mut greeting);
        say(out, &greeting, Terminator::Lf);
    }

    fn recv(
        &mut self,
        cx: &mut Shared<'_, '_>,
        now: Instant,
        data: &[u8],
        out: &mut Outbox,
    ) -> usize {
        if self.turn != Turn::Client {
            return 0;
        }
        let (n, event) = self.framer.push(now, data);
        self.handle(cx, event, out);
        n
    }

    fn peer_closed(&mut self, cx: &mut Shared<'_, '_>, _: Instant, out: &mut Outbox) {
        self.peer_gone = true;
        if self.turn == Turn::Client {
            let event = self.framer.flush();
            self.handle(cx, event, out);
        }
    }

    fn poll(&mut self, cx: &mut Shared<'_, '_>, now: Instant, out: &mut Outbox) {
        if self.turn == Turn::Client && out.is_empty() {
            let event = self.framer.poll(now, self.quiet);
            self.handle(cx, event, out);
        }
    }

    fn poll_at(&self) -> Option<Instant> {
        match self.turn {
            Turn::Client => self.framer.deadline(self.quiet),
            _ => None,
        }
    }

    fn idle(&mut self, out: &mut Outbox) {
        say(out, "error: idle timeout, closing", self.last_term);
        self.turn = Turn::Over;
    }

    fn finished(&self) -> bool {
        self.turn == Turn::Over || (self.peer_gone && self.turn == Turn::Client)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::Transport;
    use crate::testing::{Fixture, t};

    const ID: SessionId = SessionId {
        transport: Transport::Tcp,
        index: 1,
        generation: 2,
    };

    fn opened(fx: &mut Fixture) -> (ChatSession, Outbox) {
        let mut s = ChatSession::new(ID);
        let mut out = Outbox::new();
        let peer = fx.peer();
        s.open(&mut fx.shared(), t(0), peer, &mut out);
        assert!(out.pending().starts_with(b"Welcome"), "server speaks first");
        out.clear();
        (s, out)
    }

    #[test]
    fn line_client_gets_lines_and_byebye_ends() {
        let mut fx = Fixture::new();
        let (mut s, mut out) = opened(&mut fx);
        assert_eq!(s.recv(&mut fx.shared(), t(1), b"help\r\n", &mut out), 6);
        assert!(out.pending().starts_with(b"Topics:"));
        assert!(out.pending().ends_with(b"\r\n"));
        out.clear();
        s.recv(&mut fx.shared(), t(2), b"byebye\n", &mut out);
        assert_eq!(out.pending(), b"byebye\n");
        assert!(s.finished());
    }

    #[test]
    fn tutorial_client_message_completes_after_quiet_gap() {
        let mut fx = Fixture::new();
        let (mut s, mut out) = opened(&mut fx);
        s.recv(&mut fx.shared(), t(100), b"byebye", &mut out);
        assert!(out.is_empty());
        assert_eq!(s.poll_at(), Some(t(130)));
        s.poll(&mut fx.shared(), t(130), &mut out);
        assert_eq!(
            out.pending(),
            b"byebye",
            "no terminator: the tutorial compares exactly"
        );
        assert!(s.finished());
    }

    #[test]
    fn one_reply_per_message_and_turns_alternate() {
        let mut fx = Fixture::new();
        let (mut s, mut out) = opened(&mut fx);
        let n = s.recv(&mut fx.shared(), t(1), b"hi\nhours\n", &mut out);
        assert_eq!(n, 3, "stops after the first message");
        assert!(out.pending().starts_with(b"Hello!"));
    }

    #[test]
    fn rewritten_insult_is_quoted_masked() {
        let mut fx = Fixture::new();
        let (mut s, mut out) = opened(&mut fx);
        s.recv(&mut fx.shared(), t(1), b"you sb\n", &mut out);
        let reply = core::str::from_utf8(out.pending()).unwrap();
        assert!(reply.contains("You said: you **"), "{reply}");
        assert!(!reply.contains("sb"));
    }

    #[test]
    fn bad_input_gets_clear_errors_and_session_continues() {
        let mut fx = Fixture::new();
        let (mut s, mut out) = opened(&mut fx);
        s.recv(&mut fx.shared(), t(1), b"\xff\xfe\n", &mut out);
        assert_eq!(out.pending(), b"error: invalid UTF-8\n");
        out.clear();
        let long = [b'a'; MAX_MESSAGE + 2];
        let n = s.recv(&mut fx.shared(), t(2), &long, &mut out);
        assert!(out.pending().starts_with(b"error: message too long"));
        out.clear();
        let rest = s.recv(&mut fx.shared(), t(2), &long[n..], &mut out);
        assert_eq!(rest, long.len() - n);
        s.recv(&mut fx.shared(), t(2), b"more of it\n", &mut out);
        assert!(out.is_empty(), "the tail of the long message is skipped");
        s.recv(&mut fx.shared(), t(2), b"hi\n", &mut out);
        assert!(out.pending().starts_with(b"Hello!"));
        assert!(!s.finished());
    }

    /// Found by the `chat_framing` fuzz target: a message of exactly
    /// `MAX_MESSAGE + 1` bytes is only found too long when it ends, and its
    /// error went out with the previous message's terminator: a newline to
    /// the tutorial client (no newline, quiet gap), none to a line client
    /// whose previous message ended with a quiet gap.
    #[test]
    fn too_long_at_its_end_is_answered_the_way_it_ended() {
        let mut fx = Fixture::new();
        let (mut s, mut out) = opened(&mut fx);
        s.recv(&mut fx.shared(), t(1), &[b'a'; MAX_MESSAGE + 1], &mut out);
        assert!(out.is_empty());
        s.poll(&mut fx.shared(), t(100), &mut out);
        assert_eq!(out.pending(), b"error: message too long (max 256 bytes)");

        let (mut s, mut out) = opened(&mut fx);
        s.recv(&mut fx.shared(), t(1), b"hi", &mut out);
        s.poll(&mut fx.shared(), t(100), &mut out);
        assert!(!out.pending().ends_with(b"\n"));
        out.clear();
        let mut line = [b'b'; MAX_MESSAGE + 2];
        line[MAX_MESSAGE + 1] = b'\n';
        assert_eq!(
            s.recv(&mut fx.shared(), t(200), &line, &mut out),
            line.len()
        );
        assert_eq!(out.pending(), b"error: message too long (max 256 bytes)\n");
    }

    #[test]
    fn peer_close_completes_pending_message() {
        let mut fx = Fixture::new();
        let (mut s, mut out) = opened(&mut fx);
        s.recv(&mut fx.shared(), t(1), b"byebye", &mut out);
        s.peer_closed(&mut fx.shared(), t(2), &mut out);
        assert_eq!(out.pending(), b"byebye");
        assert!(s.finished());
    }

    #[test]
    fn idle_says_why() {
        let mut fx = Fixture::new();
        let (mut s, mut out) = opened(&mut fx);
        s.idle(&mut out);
        assert!(out.pending().starts_with(b"error: idle timeout"));
        assert!(s.finished());
    }

    #[test]
    fn operator_turns() {
        let mut fx = Fixture::new();
        fx.operator = true;
        let (mut s, mut out) = opened(&mut fx);
        s.recv(&mut fx.shared(), t(1), b"anyone?\n", &mut out);
        assert!(out.is_empty() && s.awaiting_operator());
        assert_eq!(
            s.recv(&mut fx.shared(), t(1), b"more\n", &mut out),
            0,
            "client waits its turn"
        );
        s.operator_reply("yes, me", &mut out).unwrap();
        assert_eq!(out.pending(), b"yes, me\n");
        assert_eq!(s.operator_reply("again", &mut out), Err(NotYourTurn));
        out.clear();
        s.operator_reply("byebye", &mut out).unwrap();
        assert_eq!(out.pending(), b"byebye\n");
        assert!(s.finished());
    }
}
