//! Target `chat_framing`: the TCP chat's message framing, and the chat
//! session on top of it.
//!
//! The input is one client's byte stream, in data steps, with pauses and
//! events between them. It drives two things:
//!
//! 1. a [`Framer`], compared with a model of the framing rule written
//!    straight from its documentation (unbounded buffer, no early
//!    reporting): both must find the same messages, with the same
//!    terminators, and the same over-long ones; no message is ever over
//!    [`MAX_MESSAGE`] or holds a line feed;
//! 2. a [`ChatSession`] run as the node runs it: it greets first; every
//!    call gives at most one reply, in valid UTF-8; a reply to a line ends
//!    with the line's terminator, and one to a quiet-gap message with none;
//!    once the client has closed, the session finishes (unless an operator
//!    owes a reply).

use smoltalk::chat::ChatSession;
use smoltalk::chat::framing::{Event, Framer, Terminator};
use smoltalk::config::{Limits, MAX_MESSAGE};
use smoltalk::session::{SessionId, Transport};
use smoltcp::time::{Duration, Instant};

use crate::binding::{Binding, Call};
use crate::fixture::{Services, client_ip};
use crate::script::{Script, Step};

/// Runs one input.
pub fn run(input: &[u8]) {
    framing(input);
    session(input);
}

/// What a framer reports, in owned form.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Found {
    Message(Vec<u8>, Terminator),
    TooLong,
}

/// The framing rule as documented in `chat::framing`: a message ends at LF
/// (a CR before it is dropped), or at a quiet gap or the end of the stream
/// when bytes are waiting; one longer than `MAX_MESSAGE` is reported once,
/// as too long.
#[derive(Default)]
struct Model {
    buf: Vec<u8>,
    last_rx: Option<Instant>,
    found: Vec<Found>,
}

impl Model {
    fn byte(&mut self, now: Instant, b: u8) {
        self.last_rx = Some(now);
        if b != b'\n' {
            self.buf.push(b);
            return;
        }
        let term = if self.buf.last() == Some(&b'\r') {
            self.buf.pop();
            Terminator::CrLf
        } else {
            Terminator::Lf
        };
        self.end(term);
    }

    fn end(&mut self, term: Terminator) {
        let msg = std::mem::take(&mut self.buf);
        self.found.push(if msg.len() > MAX_MESSAGE {
            Found::TooLong
        } else {
            Found::Message(msg, term)
        });
    }

    fn quiet(&mut self, now: Instant, quiet: Duration) {
        if matches!(self.last_rx, Some(t) if now >= t + quiet) {
            self.flush();
        }
    }

    fn flush(&mut self) {
        self.last_rx = None;
        if !self.buf.is_empty() {
            self.end(Terminator::None);
        }
    }
}

/// Part 1: the framer against the model.
fn framing(input: &[u8]) {
    let quiet = Limits::DEFAULT.quiet_flush;
    let mut framer = Framer::new();
    let mut model = Model::default();
    let mut found = Vec::new();
    let mut now = Instant::ZERO;
    let record = |framer: &mut Framer, event: Event, found: &mut Vec<Found>| match event {
        Event::Pending => {}
        Event::TooLong(_) => found.push(Found::TooLong),
        Event::Message(term) => {
            let msg = framer.message();
            assert!(msg.len() <= MAX_MESSAGE, "a message of {} bytes", msg.len());
            assert!(!msg.contains(&b'\n'));
            found.push(Found::Message(msg.to_vec(), term));
            framer.clear();
        }
    };
    for step in Script::new(input) {
        match step {
            Step::Data { bytes, .. } => {
                for &b in bytes {
                    model.byte(now, b);
                }
                let mut rest = bytes;
                while !rest.is_empty() {
                    let (n, event) = framer.push(now, rest);
                    assert!(
                        n >= 1 && n <= rest.len(),
                        "push consumed {n} of {}",
                        rest.len()
                    );
                    assert!(
                        n == rest.len() || event != Event::Pending,
                        "push stopped early without an event"
                    );
                    record(&mut framer, event, &mut found);
                    rest = &rest[n..];
                }
            }
            Step::Wait(d) => {
                now += d;
                model.quiet(now, quiet);
                let event = framer.poll(now, quiet);
                record(&mut framer, event, &mut found);
            }
            Step::Event { .. } => {
                model.flush();
                let event = framer.flush();
                record(&mut framer, event, &mut found);
            }
        }
    }
    model.flush();
    let event = framer.flush();
    record(&mut framer, event, &mut found);
    assert_eq!(
        found, model.found,
        "the framer and the framing rule disagree"
    );
}

/// Operator replies: multi-byte, and two that end the session.
const OPERATOR: [&str; 4] = ["ok, one moment", "好的", "byebye", " byebye\r"];

/// Part 2: the session, driven as the node drives it.
fn session(input: &[u8]) {
    let mut services = Services::default();
    let limits = services.limits;
    let mut now = Instant::ZERO;
    let id = SessionId {
        transport: Transport::Tcp,
        index: 0,
        generation: 1,
    };
    let mut check = |s: &ChatSession, call: Call<'_>, out: &[u8]| check_reply(s, call, out);
    let mut conn = Binding::open(
        ChatSession::new(id),
        &mut services.shared(0),
        now,
        client_ip(0),
        &mut check,
    );
    for step in Script::new(input) {
        match step {
            Step::Data { bytes, .. } => conn.receive(bytes),
            Step::Wait(d) => now += d,
            Step::Event { tag, arg } => match tag % 4 {
                0 => conn.fin(),
                1 => {
                    // An operator types a reply: refused unless the session
                    // waits for one (or it is a byebye).
                    let text = OPERATOR[usize::from(arg % 4)];
                    let waiting = conn.proto.awaiting_operator();
                    let before = conn.out.pending().len();
                    match conn.proto.operator_reply(text, &mut conn.out) {
                        Ok(()) => {
                            let said = &conn.out.pending()[before..];
                            assert!(said.starts_with(text.as_bytes()));
                        }
                        Err(_) => {
                            assert!(!waiting);
                            assert_eq!(conn.out.pending().len(), before);
                        }
                    }
                }
                2 => {
                    services.operator = arg & 1 == 1;
                    let id = SessionId {
                        generation: id.generation.wrapping_add(u16::from(arg)),
                        ..id
                    };
                    conn = Binding::open(
                        ChatSession::new(id),
                        &mut services.shared(0),
                        now,
                        client_ip(arg),
                        &mut check,
                    );
                }
                _ => {
                    conn.tx_window = match arg {
                        0 => usize::MAX,
                        n => usize::from(n),
                    }
                }
            },
        }
        conn.drive(&mut services.shared(0), &limits, now, &mut check);
    }
    // The client closes: unless an operator still owes a reply, the
    // session ends.
    conn.fin();
    conn.tx_window = usize::MAX;
    // Each drive answers at most 64 messages (the binding's bound per
    // poll); the node polls again while the client acknowledges replies.
    for _ in 0..64 {
        // Waiting for an operator is a state of rest: driving on would only
        // run the clock into the idle timeout (whose reply the last drive
        // would then leave unflushed).
        if conn.closed || conn.proto.awaiting_operator() {
            break;
        }
        now += Duration::from_millis(100);
        conn.drive(&mut services.shared(0), &limits, now, &mut check);
    }
    assert!(
        conn.closed || conn.proto.awaiting_operator(),
        "the chat did not finish after the client closed"
    );
}

fn check_reply(s: &ChatSession, call: Call<'_>, out: &[u8]) {
    if out.is_empty() {
        return;
    }
    let text =
        std::str::from_utf8(out).unwrap_or_else(|_| panic!("a reply that is not UTF-8: {out:?}"));
    assert!(
        text.matches('\n').count() <= 1,
        "more than one reply in one call: {text:?}"
    );
    match call {
        Call::Open => assert!(text.starts_with("Welcome"), "{text:?}"),
        Call::Recv(bytes) => {
            assert!(!s.awaiting_operator());
            if bytes.last() == Some(&b'\n') {
                let crlf = bytes.len() >= 2 && bytes[bytes.len() - 2] == b'\r';
                let term = if crlf { "\r\n" } else { "\n" };
                assert!(text.ends_with(term), "{bytes:?} answered {text:?}");
            }
        }
        // A quiet-gap message is answered without a terminator (the
        // tutorial client compares the reply exactly).
        Call::Poll => assert!(!text.ends_with('\n'), "{text:?}"),
        Call::PeerClosed | Call::Idle => {}
    }
}
