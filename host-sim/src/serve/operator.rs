//! `serve --operator`: a person answers the chats.
//!
//! The [`Operator`] responder prints each client message with its session
//! id (`[t3.1] 你好`) and answers `Later`; the TCP chat then waits for the
//! operator's turn, as in the tutorial, where the server's user types every
//! reply. The [`Console`] reads the operator's lines on a thread (stdin
//! blocks; the network must not) and hands them to the main loop, which
//! delivers them with `Node::operator_reply`:
//!
//! ```text
//! t3.1 hello there      reply to session t3.1
//! hello there           reply to the session that spoke last and waits
//! /who                  list the sessions waiting for a reply
//! ```
//!
//! Greetings stay automatic, so a client is never left waiting for the
//! operator before it may speak.

use std::sync::mpsc::{self, Receiver, TryRecvError};
use std::thread;

use smoltalk::Node;
use smoltalk::chat::responder::Reply;
use smoltalk::chat::{Answer, AutoResponder, Responder};
use smoltalk::config::MAX_MESSAGE;
use smoltalk::session::{SessionId, Transport};

/// Operator lines queued between the reader thread and the main loop. The
/// reader blocks when it is full, so a paste cannot grow memory.
const QUEUE: usize = 64;
/// How many operator lines one turn of the main loop delivers, so the
/// network keeps being polled during a long paste.
const LINES_PER_TURN: usize = 16;

/// The responder that defers every answer to the person at the console.
pub struct Operator {
    /// Writes the greetings.
    auto: AutoResponder,
    /// Sessions owed a reply, oldest first: the last one is "the session
    /// that spoke last", the target of a reply without an id.
    waiting: Vec<SessionId>,
}

impl Operator {
    /// A responder with nobody waiting.
    pub fn new() -> Self {
        Operator {
            auto: AutoResponder::new(),
            waiting: Vec::new(),
        }
    }

    fn forget(&mut self, id: SessionId) {
        self.waiting.retain(|w| *w != id);
    }
}

impl Responder for Operator {
    fn greeting(&mut self, id: SessionId, out: &mut Reply) {
        self.auto.greeting(id, out);
        println!("[{id}] connected (greeted automatically)");
    }

    fn answer(
        &mut self,
        id: SessionId,
        text: &str,
        rewritten: Option<&str>,
        _: &mut Reply,
    ) -> Answer {
        // The operator sees the message as the keyword rules left it.
        println!("[{id}] {}", printable(rewritten.unwrap_or(text)));
        self.forget(id);
        self.waiting.push(id);
        Answer::Later
    }

    fn ended(&mut self, id: SessionId) {
        self.forget(id);
        println!("[{id}] left");
    }
}

/// The operator's side: lines from stdin, delivered to the node.
pub struct Console {
    lines: Receiver<String>,
    /// Stdin reached its end; said once.
    closed: bool,
}

impl Console {
    /// Starts the stdin reader thread.
    pub fn start() -> Self {
        let (tx, rx) = mpsc::sync_channel(QUEUE);
        // Detached: it blocks in read_line until the process exits.
        thread::spawn(move || {
            for line in std::io::stdin().lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        println!(
            "operator: type `ID text` (e.g. t3.1 hello), or just text for the last speaker; /who lists who waits"
        );
        Console {
            lines: rx,
            closed: false,
        }
    }

    /// Delivers the operator's queued lines.
    pub fn deliver(&mut self, node: &mut Node<'_, Operator>) {
        for _ in 0..LINES_PER_TURN {
            match self.lines.try_recv() {
                Ok(line) => self.handle(node, line.trim()),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    if !self.closed {
                        self.closed = true;
                        println!(
                            "operator: stdin closed; chats now wait for replies that cannot come"
                        );
                    }
                    break;
                }
            }
        }
    }

    fn handle(&mut self, node: &mut Node<'_, Operator>, line: &str) {
        if line.is_empty() {
            return;
        }
        if line == "/who" {
            let waiting = &node.responder_mut().waiting;
            if waiting.is_empty() {
                println!("operator: nobody is waiting for a reply");
            } else {
                let ids: Vec<String> = waiting.iter().map(SessionId::to_string).collect();
                println!("operator: waiting for a reply: {}", ids.join(" "));
            }
            return;
        }
        if parse_id(line).is_some() {
            println!("operator: say something after the id, e.g. `{line} hello`");
            return;
        }
        let (id, text) = match line
            .split_once(' ')
            .and_then(|(first, rest)| Some((parse_id(first)?, rest.trim())))
        {
            Some((id, text)) => (id, text),
            None => match node.responder_mut().waiting.last() {
                Some(&id) => (id, line),
                None => {
                    println!(
                        "operator: nobody is waiting for a reply; start the line with a session id (e.g. t3.1)"
                    );
                    return;
                }
            },
        };
        if text.len() > MAX_MESSAGE {
            println!("operator: not sent: longer than {MAX_MESSAGE} bytes");
            return;
        }
        match node.operator_reply(id, text) {
            Ok(()) => node.responder_mut().forget(id),
            Err(e) => println!("[{id}] not sent: {e}"),
        }
    }
}

/// Reads a session id as it is printed: `t3.1` (TCP slot 3, generation 1)
/// or `u0.7` (hotline).
fn parse_id(s: &str) -> Option<SessionId> {
    let transport = match s.as_bytes().first()? {
        b't' => Transport::Tcp,
        b'u' => Transport::Udp,
        _ => return None,
    };
    let (index, generation) = s.get(1..)?.split_once('.')?;
    Some(SessionId {
        transport,
        index: index.parse().ok()?,
        generation: generation.parse().ok()?,
    })
}

/// `text` with control characters escaped, so a client cannot send escape
/// sequences to the operator's terminal.
fn printable(text: &str) -> String {
    text.chars()
        .flat_map(|c| {
            if c.is_control() {
                c.escape_default().collect()
            } else {
                vec![c]
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_parse_as_printed() {
        let id = SessionId {
            transport: Transport::Tcp,
            index: 3,
            generation: 1,
        };
        assert_eq!(parse_id(&id.to_string()), Some(id));
        assert_eq!(parse_id("u0.7").map(|i| i.transport), Some(Transport::Udp));
        for bad in ["", "t", "t3", "x3.1", "t3.", "t.1", "t300.1", "hello"] {
            assert_eq!(parse_id(bad), None, "{bad}");
        }
    }

    #[test]
    fn terminal_escapes_are_shown_not_obeyed() {
        assert_eq!(printable("hi\x1b[2J\n你好"), "hi\\u{1b}[2J\\n你好");
    }

    #[test]
    fn answers_later_and_tracks_who_waits() {
        let mut op = Operator::new();
        let a = SessionId {
            transport: Transport::Tcp,
            index: 1,
            generation: 1,
        };
        let b = SessionId {
            transport: Transport::Udp,
            index: 0,
            generation: 2,
        };
        let mut out = Reply::new();
        assert_eq!(op.answer(a, "hi", None, &mut out), Answer::Later);
        assert_eq!(op.answer(b, "yo", None, &mut out), Answer::Later);
        assert!(out.is_empty());
        assert_eq!(op.waiting, [a, b]);
        op.answer(a, "again", None, &mut out);
        assert_eq!(
            op.waiting.last(),
            Some(&a),
            "the last speaker is the default target"
        );
        op.ended(a);
        assert_eq!(op.waiting, [b]);
    }
}
