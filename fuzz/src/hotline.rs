//! Target `hotline`: the UDP chat's message path, datagram by datagram,
//! from up to 64 callers.
//!
//! The [`Hotline`] table is compared with a model of its documented rules
//! (one line per caller address; `byebye` or `hotline_idle` of silence
//! frees it; a new caller finds the table full after `HOTLINE_SESSIONS`):
//! every datagram gets exactly one reply, or is deferred to an operator;
//! the reply is the one the model expects (too long, invalid UTF-8, busy,
//! byebye, or an answer); `active()` never exceeds `HOTLINE_SESSIONS` and
//! matches the model; the responder hears `ended` exactly once per session
//! that ends, and an ended session's id never reaches a caller again.

use smoltalk::chat::hotline::{Hotline, Outcome};
use smoltalk::chat::responder::{Reply, Responder};
use smoltalk::chat::rules::Rule;
use smoltalk::chat::{Answer, AutoResponder, BYEBYE};
use smoltalk::config::{HOTLINE_SESSIONS, Limits, MAX_MESSAGE};
use smoltalk::session::{SessionId, Transport};
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{IpAddress, IpEndpoint, Ipv4Address};

use crate::fixture::Deferring;
use crate::script::{Script, Step};

/// Caller `tag` of 64: eight hosts, eight ports each.
pub fn caller(tag: u8) -> IpEndpoint {
    IpEndpoint::new(
        IpAddress::Ipv4(Ipv4Address::new(192, 168, 69, 100 + tag % 8)),
        40000 + u16::from(tag / 8 % 8),
    )
}

/// A responder that records what the hotline tells it.
struct Recorder {
    auto: AutoResponder,
    deferring: Deferring,
    operator: bool,
    /// The session of the last `answer`.
    answered: Option<SessionId>,
    /// Sessions reported ended, since last looked at.
    ended: Vec<SessionId>,
}

impl Responder for Recorder {
    fn rules(&self) -> &[Rule] {
        self.auto.rules
    }
    fn greeting(&mut self, session: SessionId, out: &mut Reply) {
        self.auto.greeting(session, out)
    }
    fn answer(
        &mut self,
        session: SessionId,
        text: &str,
        rewritten: Option<&str>,
        out: &mut Reply,
    ) -> Answer {
        self.answered = Some(session);
        if self.operator {
            self.deferring.answer(session, text, rewritten, out)
        } else {
            self.auto.answer(session, text, rewritten, out)
        }
    }
    fn ended(&mut self, session: SessionId) {
        self.ended.push(session);
    }
}

/// One line of the model: who, since when, and (once answered) its id.
struct Line {
    peer: IpEndpoint,
    last_seen: Instant,
    id: Option<SessionId>,
}

/// What the model expects for one datagram.
#[derive(Debug, PartialEq, Eq)]
enum Expect {
    TooLong,
    BadUtf8,
    Busy,
    Bye,
    Answer,
}

#[derive(Default)]
struct Model {
    lines: Vec<Line>,
    /// Ids of sessions that ended: never handed out again.
    dead: Vec<SessionId>,
}

impl Model {
    /// Forgets silent callers; returns the ids that ended.
    fn expire(&mut self, now: Instant, idle: Duration) -> Vec<Option<SessionId>> {
        let mut gone = Vec::new();
        self.lines.retain(|l| {
            let keep = now < l.last_seen + idle;
            if !keep {
                gone.push(l.id);
            }
            keep
        });
        gone
    }

    /// What a datagram gets, which line it lands on, and (for a known
    /// caller's byebye) the session that ends.
    fn datagram(
        &mut self,
        now: Instant,
        from: IpEndpoint,
        data: &[u8],
    ) -> (Expect, Option<usize>, Option<Option<SessionId>>) {
        let (expect, line) = self.classify(now, from, data);
        match expect {
            Expect::Bye => match self.lines.iter().position(|l| l.peer == from) {
                Some(i) => (expect, None, Some(self.lines.remove(i).id)),
                None => (expect, None, None),
            },
            _ => (expect, line, None),
        }
    }

    fn classify(&mut self, now: Instant, from: IpEndpoint, data: &[u8]) -> (Expect, Option<usize>) {
        if data.len() > MAX_MESSAGE {
            return (Expect::TooLong, None);
        }
        let Ok(text) = std::str::from_utf8(data) else {
            return (Expect::BadUtf8, None);
        };
        let bye = text.trim() == BYEBYE;
        match self.lines.iter().position(|l| l.peer == from) {
            Some(_) if bye => (Expect::Bye, None),
            Some(i) => {
                self.lines[i].last_seen = now;
                (Expect::Answer, Some(i))
            }
            None if bye => (Expect::Bye, None),
            None if self.lines.len() < HOTLINE_SESSIONS => {
                self.lines.push(Line {
                    peer: from,
                    last_seen: now,
                    id: None,
                });
                (Expect::Answer, Some(self.lines.len() - 1))
            }
            None => (Expect::Busy, None),
        }
    }
}

/// Runs one input.
pub fn run(input: &[u8]) {
    let idle = Limits::DEFAULT.hotline_idle;
    let mut hotline = Hotline::new();
    let mut model = Model::default();
    let mut responder = Recorder {
        auto: AutoResponder::new(),
        deferring: Deferring,
        operator: false,
        answered: None,
        ended: Vec::new(),
    };
    let mut now = Instant::ZERO;
    let mut deferred: Vec<SessionId> = Vec::new();
    for step in Script::new(input) {
        match step {
            Step::Data { tag, bytes } => {
                let from = caller(tag);
                let mut gone = model.expire(now, idle);
                let (expect, line, bye) = model.datagram(now, from, bytes);
                gone.extend(bye);
                let mut out = Reply::new();
                responder.answered = None;
                let outcome = hotline.on_datagram(&mut responder, now, idle, from, bytes, &mut out);
                check_ended(&mut responder, &mut model, &hotline, gone);
                let text = out.as_str();
                match expect {
                    Expect::TooLong => assert!(text.starts_with("error: message too long")),
                    Expect::BadUtf8 => assert_eq!(text, "error: invalid UTF-8"),
                    Expect::Busy => assert!(text.starts_with("busy:"), "{text:?}"),
                    Expect::Bye => assert_eq!(text, BYEBYE),
                    Expect::Answer => {
                        let id = responder.answered.expect("an answer was asked for");
                        assert_eq!(id.transport, Transport::Udp);
                        assert_eq!(hotline.peer(id), Some(from));
                        assert!(!model.dead.contains(&id), "{id} reused");
                        let line = &mut model.lines[line.expect("a line")];
                        assert!(
                            line.id.is_none_or(|known| known == id),
                            "a caller's id changed"
                        );
                        line.id = Some(id);
                        match outcome {
                            Outcome::Reply => {
                                assert!(!responder.operator);
                                assert!(!text.is_empty() && !text.starts_with("busy:"));
                            }
                            Outcome::Deferred(d) => {
                                assert!(responder.operator);
                                assert_eq!(d, id);
                                deferred.push(d);
                            }
                        }
                    }
                }
                if expect != Expect::Answer {
                    assert_eq!(outcome, Outcome::Reply);
                }
            }
            Step::Wait(d) => {
                now += d;
                let gone = model.expire(now, idle);
                hotline.expire(&mut responder, now, idle);
                check_ended(&mut responder, &mut model, &hotline, gone);
            }
            Step::Event { tag, arg } => match tag % 2 {
                0 => responder.operator = arg & 1 == 1,
                _ => {
                    // The operator says byebye to a deferred caller, maybe
                    // one long gone (then nothing happens).
                    if let Some(&id) = deferred.get(usize::from(arg) % deferred.len().max(1)) {
                        let live = hotline.peer(id);
                        hotline.end(id);
                        assert_eq!(hotline.peer(id), None);
                        if let Some(peer) = live {
                            let i = model.lines.iter().position(|l| l.peer == peer).unwrap();
                            let line = model.lines.remove(i);
                            assert_eq!(line.id, Some(id));
                            model.dead.push(id);
                        }
                    }
                }
            },
        }
        assert!(hotline.active() <= HOTLINE_SESSIONS);
        assert_eq!(
            hotline.active(),
            model.lines.len(),
            "the table and the model disagree"
        );
        if let Some(at) = hotline.poll_at(idle) {
            let first = model.lines.iter().map(|l| l.last_seen + idle).min();
            assert_eq!(Some(at), first);
        }
    }
}

/// The responder heard `ended` for exactly the sessions that ended.
fn check_ended(
    responder: &mut Recorder,
    model: &mut Model,
    hotline: &Hotline,
    gone: Vec<Option<SessionId>>,
) {
    let mut heard: Vec<SessionId> = responder.ended.drain(..).collect();
    let mut expected: Vec<SessionId> = gone.iter().flatten().copied().collect();
    // A line that expired before ever being answered has no known id.
    let unknown = gone.iter().filter(|g| g.is_none()).count();
    heard.sort_by_key(|id| (id.index, id.generation));
    expected.sort_by_key(|id| (id.index, id.generation));
    assert_eq!(heard.len(), expected.len() + unknown, "ended() calls");
    for id in &expected {
        assert!(heard.contains(id), "{id} ended without ended()");
    }
    for id in &heard {
        assert_eq!(hotline.peer(*id), None, "{id} ended but still reachable");
    }
    model.dead.extend(heard);
}
