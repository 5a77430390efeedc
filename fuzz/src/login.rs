//! Target `login_request`: the login request parsers, both forms, and the
//! session that frames and answers them.
//!
//! Every data step is given to the parsers on its own (in the seeds it is
//! usually one whole request) and is also a chunk of one client's byte
//! stream to a [`LoginSession`] run the way the node runs it.
//!
//! Checked, besides "never panics":
//! - the parsers: a request parses the same with leading whitespace; a
//!   parsed dict's strings, written back as a Python literal, parse to the
//!   same strings; the decoded strings are shorter than the literal; the
//!   end-of-dict scanner ends a valid dict at its closing brace; a parsed
//!   `LOGIN` line written back parses the same;
//! - the session: no greeting; every reply is one whole answer (one
//!   `OK …`/`ERR …` line, or one of the dict verdicts); after a dict
//!   verdict the session is finished and says nothing more; `OK <user>`
//!   names a real user, who is then the session's user; never more replies
//!   than the client sent request terminators (plus one per over-long
//!   request, the close and the idle timeout); once the client has closed,
//!   the session finishes.

use smoltalk::config::MAX_MESSAGE;
use smoltalk::login::LoginSession;
use smoltalk::login::dict::{self, DictError};
use smoltalk::login::request::{self, Request, RequestError};
use smoltalk::login::session::{
    DICT_FAILED, DICT_LOCKED, DICT_MALFORMED, DICT_OK, DICT_TOO_LONG, HELP,
};
use smoltalk::session::Protocol;
use smoltcp::time::{Duration, Instant};

use crate::binding::{Binding, Call};
use crate::fixture::{Services, USERS, client_ip};
use crate::script::{Script, Step};

/// Runs one input.
pub fn run(input: &[u8]) {
    let mut services = Services::default();
    let limits = services.limits;
    let mut now = Instant::ZERO;
    let mut budget = limits.hash_iterations_per_poll;
    let mut state = Replies::default();
    let mut conn = Binding::open(
        LoginSession::new(),
        &mut services.shared(budget),
        now,
        client_ip(0),
        &mut |s, call, out| state.check(s, call, out),
    );
    for step in Script::new(input) {
        match step {
            Step::Data { bytes, .. } => {
                check_parsers(bytes);
                conn.receive(bytes);
            }
            Step::Wait(d) => now += d,
            Step::Event { tag, arg } => match tag % 4 {
                0 => {
                    conn.fin();
                    state.fin = true;
                }
                1 => budget = [1, 2, 16, u32::MAX][usize::from(arg % 4)],
                2 => {
                    // The next client: a new connection to the same node, so
                    // the lockout table carries over.
                    state = Replies::default();
                    conn = Binding::open(
                        LoginSession::new(),
                        &mut services.shared(budget),
                        now,
                        client_ip(arg),
                        &mut |s, call, out| state.check(s, call, out),
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
        conn.drive(
            &mut services.shared(budget),
            &limits,
            now,
            &mut |s, call, out| state.check(s, call, out),
        );
    }
    // The client closes and waits: what it sent is answered, and the
    // session ends (long before an idle timeout would end it).
    conn.fin();
    state.fin = true;
    conn.tx_window = usize::MAX;
    // Each drive answers at most 64 requests (the binding's bound per
    // poll); the node polls again while the client acknowledges replies.
    for _ in 0..64 {
        if conn.closed {
            break;
        }
        now += Duration::from_millis(100);
        conn.drive(
            &mut services.shared(u32::MAX),
            &limits,
            now,
            &mut |s, call, out| state.check(s, call, out),
        );
    }
    assert!(
        conn.closed,
        "the session did not finish after the client closed"
    );
}

/// What one connection has been told so far.
#[derive(Default)]
struct Replies {
    /// Replies given.
    count: usize,
    /// Request ends seen in consumed bytes: LF and `}`.
    terminators: usize,
    /// Bytes consumed.
    consumed: usize,
    /// The client closed.
    fin: bool,
    /// The idle timeout fired.
    idle: bool,
    /// A dict verdict was given.
    verdict: bool,
}

impl Replies {
    fn check(&mut self, s: &LoginSession, call: Call<'_>, out: &[u8]) {
        match call {
            Call::Open => assert!(out.is_empty(), "the login service has no greeting"),
            Call::Recv(bytes) => {
                self.consumed += bytes.len();
                self.terminators += bytes.iter().filter(|&&b| b == b'\n' || b == b'}').count();
            }
            Call::Idle => self.idle = true,
            Call::PeerClosed | Call::Poll => {}
        }
        if out.is_empty() {
            return;
        }
        assert!(
            !self.verdict,
            "a reply after the dict verdict: {:?}",
            show(out)
        );
        self.count += 1;
        let allowed = self.terminators
            + self.consumed / (MAX_MESSAGE + 1)
            + usize::from(self.fin)
            + usize::from(self.idle);
        assert!(
            self.count <= allowed,
            "reply {} to at most {allowed} requests: {:?}",
            self.count,
            show(out)
        );
        let dict_replies = [
            DICT_OK,
            DICT_FAILED,
            DICT_LOCKED,
            DICT_MALFORMED,
            DICT_TOO_LONG,
        ];
        if dict_replies.iter().any(|r| r.as_bytes() == out) {
            assert!(s.finished(), "a dict verdict leaves the session open");
            self.verdict = true;
            return;
        }
        let text = std::str::from_utf8(out).expect("replies are UTF-8");
        assert!(
            text.ends_with('\n') && text.matches('\n').count() == 1,
            "not one reply line: {text:?}"
        );
        assert!(
            ["OK ", "ERR ", "CHALLENGE "]
                .iter()
                .any(|p| text.starts_with(p)),
            "{text:?}"
        );
        match text.trim_end_matches('\n') {
            "OK bye" => assert!(s.finished()),
            "OK logged out" => assert_eq!(s.user(), None),
            _ if text == HELP => {}
            line => {
                if let Some(rest) = line.strip_prefix("OK ") {
                    // WHOAMI, or a login that succeeded (`OK <user>`, or
                    // `OK <user> <server-signature>` after a PROOF).
                    let user = rest.split(' ').next().unwrap_or_default();
                    assert!(USERS.iter().any(|(u, _)| *u == user), "{text:?}");
                    assert_eq!(s.user(), Some(user));
                }
            }
        }
    }
}

fn show(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A request in owned form, to compare two parses.
#[derive(Debug, PartialEq, Eq)]
enum Parsed {
    Login(String, String),
    Dict(String, String),
    /// Any other command, by its `Debug` form (which shows no secret, and
    /// is all a comparison needs).
    Other(String),
    Error(RequestError),
}

fn parse(bytes: &[u8]) -> Parsed {
    match request::parse(bytes) {
        Ok(Request::Login { user, password }) => Parsed::Login(user.into(), password.into()),
        Ok(Request::DictLogin(e)) => Parsed::Dict(e.key().into(), e.value().into()),
        Ok(other) => Parsed::Other(format!("{other:?}")),
        Err(e) => Parsed::Error(e),
    }
}

/// Whitespace both forms skip before a request.
const LEADING: &[u8] = b"\x0c \t\r\n";

/// The parser checks on one request's bytes.
pub fn check_parsers(bytes: &[u8]) {
    let parsed = parse(bytes);
    let padded = [LEADING, bytes].concat();
    assert_eq!(
        parse(&padded),
        parsed,
        "leading whitespace changes the parse"
    );
    match &parsed {
        Parsed::Dict(key, value) => {
            assert!(
                key.len() + value.len() + "{'':''}".len() <= bytes.len(),
                "decoded strings longer than their literal"
            );
            for literal in [repr_dict(key, value), repr_dict_spaced(key, value)] {
                let again = dict::parse(&literal)
                    .unwrap_or_else(|e| panic!("{literal:?} written back does not parse: {e}"));
                assert_eq!(
                    (again.key(), again.value()),
                    (&key[..], &value[..]),
                    "{literal:?}"
                );
            }
            // Where a session sees the request end: at its closing brace,
            // unless a line feed comes first (the session's other end
            // marker).
            let text = std::str::from_utf8(bytes).unwrap();
            if !text.contains('\n') {
                let end = text.trim_end_matches([' ', '\t', '\r', '\x0c']).len();
                assert_eq!(dict::dict_end(bytes), Some(end), "{text:?}");
            }
        }
        Parsed::Login(user, password) => {
            let line = format!("login {user}\t{password}");
            assert_eq!(parse(line.as_bytes()), parsed);
        }
        Parsed::Error(RequestError::Dict(DictError::TooLong)) => {
            assert!(bytes.len() > MAX_MESSAGE, "a short request is too long");
        }
        _ => {}
    }
    if let Ok(text) = std::str::from_utf8(bytes) {
        // The dict parser on its own, also for texts the request parser
        // sends to the line form.
        if let Ok(entry) = dict::parse(text) {
            assert!(entry.key().len() <= MAX_MESSAGE && entry.value().len() <= MAX_MESSAGE);
        }
    }
}

/// `str({key: value})` as Python 3 writes it.
fn repr_dict(key: &str, value: &str) -> String {
    format!("{{{}: {}}}", repr(key), repr(value))
}

/// The same with the extra whitespace and trailing comma the parser allows.
fn repr_dict_spaced(key: &str, value: &str) -> String {
    format!(" {{\t{} :\r\n{} , }} \n", repr(key), repr(value))
}

/// Python 3's `repr` of a `str`: single quotes unless the text has a single
/// quote and no double quote; backslash, the quote, `\t \n \r` and
/// non-printable characters escaped.
fn repr(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::new();
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            // Python escapes what it deems unprintable: controls, and
            // format and separator characters such as U+200B.
            c if c.is_control()
                || matches!(c as u32, 0x200b..=0x200f | 0x2028..=0x202e | 0xe0000..=0xe007f) =>
            {
                match c as u32 {
                    v @ 0..=0xff => out.push_str(&format!("\\x{v:02x}")),
                    v @ 0x100..=0xffff => out.push_str(&format!("\\u{v:04x}")),
                    v => out.push_str(&format!("\\U{v:08x}")),
                }
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repr_matches_python() {
        assert_eq!(repr_dict("张三", "123"), "{'张三': '123'}");
        assert_eq!(repr("it's"), "\"it's\"");
        assert_eq!(repr("a'b\"c"), r#"'a\'b"c'"#);
        assert_eq!(
            repr("t\tn\n\0\u{7f}\u{85}\u{200b}"),
            r"'t\tn\n\x00\x7f\x85\u200b'"
        );
    }

    #[test]
    fn parsers_on_tutorial_requests() {
        for req in [
            "{'张三': '123'}",
            "LOGIN 张三 123",
            "{'a': __import__('os').system('x')}",
            "{'\\x41\\u5f20': '\\U0001f600\\777'}",
            "whoami",
        ] {
            check_parsers(req.as_bytes());
        }
    }
}
