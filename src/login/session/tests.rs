//! Transcripts of the login session, byte by byte, without a network.
extern crate std;

use std::string::String;
use std::vec::Vec;

use smoltcp::wire::Ipv4Address;

use super::*;
use crate::chat::AutoResponder;
use crate::config::Limits;
use crate::login::hash::pbkdf2_sha256;
use crate::login::{Lockout, Record, Store, store::DEMO};

fn ip(n: u8) -> IpAddress {
    IpAddress::Ipv4(Ipv4Address::new(192, 168, 69, n))
}

/// Plays the binding: feeds input in chunks, drains the outbox, polls
/// while a check runs, and counts hash iterations spent.
struct Bench {
    limits: Limits,
    store: Store<'static>,
    lockout: Lockout,
    responder: AutoResponder,
    session: LoginSession,
    out: Outbox,
    now: Instant,
    peer: IpAddress,
    transcript: Vec<u8>,
    iterations: u32,
}

impl Bench {
    fn new(store: Store<'static>) -> Self {
        let mut b = Bench {
            limits: Limits::DEFAULT,
            store,
            lockout: Lockout::new(),
            responder: AutoResponder::new(),
            session: LoginSession::new(),
            out: Outbox::new(),
            now: Instant::from_secs(1000),
            peer: ip(2),
            transcript: Vec::new(),
            iterations: 0,
        };
        b.reconnect(ip(2));
        b
    }

    /// Runs `f` with a fresh per-poll budget, like one binding poll.
    fn with<R>(
        &mut self,
        f: impl FnOnce(&mut LoginSession, &mut Shared<'_, '_>, Instant, &mut Outbox) -> R,
    ) -> R {
        let budget = self.limits.hash_iterations_per_poll;
        let mut cx = Shared {
            limits: &self.limits,
            store: &self.store,
            lockout: &mut self.lockout,
            hash_budget: budget,
            responder: &mut self.responder,
        };
        let r = f(&mut self.session, &mut cx, self.now, &mut self.out);
        assert!(cx.hash_budget <= budget);
        self.iterations += budget - cx.hash_budget;
        r
    }

    fn reconnect(&mut self, peer: IpAddress) {
        self.peer = peer;
        self.transcript.clear();
        self.with(|s, cx, now, out| s.open(cx, now, peer, out));
        assert!(self.out.is_empty(), "no greeting");
        self.iterations = 0;
    }

    fn drain(&mut self) {
        self.transcript.extend_from_slice(self.out.pending());
        let n = self.out.pending().len();
        self.out.advance(n);
    }

    /// Sends `input` in pieces of `chunk` bytes and runs until the
    /// session waits for more input or is finished.
    fn send_chunked(&mut self, input: &[u8], chunk: usize) -> usize {
        let mut rest = input;
        for _ in 0..100_000 {
            self.drain();
            if self.session.finished() {
                break;
            }
            if let Some(at) = self.session.poll_at() {
                assert!(at <= self.now);
                self.with(|s, cx, now, out| s.poll(cx, now, out));
                continue;
            }
            if rest.is_empty() {
                break;
            }
            let piece = &rest[..rest.len().min(chunk)];
            let n = self.with(|s, cx, now, out| s.recv(cx, now, piece, out));
            assert!(n <= piece.len());
            rest = &rest[n..];
        }
        self.drain();
        input.len() - rest.len()
    }

    fn send(&mut self, input: &str) -> usize {
        self.send_chunked(input.as_bytes(), usize::MAX)
    }

    fn close(&mut self) {
        self.with(|s, cx, now, out| s.peer_closed(cx, now, out));
        self.send_chunked(b"", 1);
    }

    /// Everything said since the last call.
    fn said(&mut self) -> String {
        let s = String::from_utf8(self.transcript.clone()).expect("replies are UTF-8");
        self.transcript.clear();
        s
    }
}

fn demo() -> Bench {
    Bench::new(DEMO)
}

/// A store with cheap hashes for tests that log in many times.
fn cheap() -> Bench {
    let salt = [7u8; 16];
    let hash = pbkdf2_sha256(b"pw", &salt, 3);
    let records = std::vec![Record {
        user: "u",
        iterations: 3,
        salt,
        hash
    }];
    Bench::new(Store::new(std::vec::Vec::leak(records)))
}

#[test]
fn dict_success_is_one_verdict_then_close() {
    let mut b = demo();
    let sent = "{'张三': '123'}";
    assert_eq!(b.send(sent), sent.len());
    assert_eq!(b.said(), "登录成功!");
    assert!(b.session.finished());
    assert_eq!(b.iterations, 4096);
}

#[test]
fn dict_wrong_password_and_unknown_user_get_the_same_verdict() {
    for req in ["{'张三': '124'}", "{'李四': '123'}", "{\"赵四\": \"123\"}"] {
        let mut b = demo();
        b.send(req);
        assert_eq!(b.said(), "用户名或密码错误!", "{req}");
        assert!(b.session.finished());
    }
}

#[test]
fn unknown_user_costs_the_same_iterations_as_a_wrong_password() {
    let mut costs = Vec::new();
    for req in [
        "{'张三': 'x'}",
        "{'nobody': 'x'}",
        "LOGIN 王八 x\n",
        "LOGIN nobody x\n",
    ] {
        let mut b = demo();
        b.send(req);
        costs.push(b.iterations);
    }
    assert_eq!(costs, [4096; 4]);
}

#[test]
fn dict_byte_by_byte_with_escapes() {
    let mut b = demo();
    // Python: str({'王八': '567'}) with the name spelt as escapes.
    let sent = r"{'\u738b\u516b': '567'}";
    assert_eq!(b.send_chunked(sent.as_bytes(), 1), sent.len());
    assert_eq!(b.said(), "登录成功!");
}

#[test]
fn dict_ends_at_brace_and_leaves_the_rest_unread() {
    let mut b = demo();
    assert_eq!(
        b.send("{'张三': '123'}\nLOGIN x y\n"),
        "{'张三': '123'}".len()
    );
    assert_eq!(b.said(), "登录成功!");
}

#[test]
fn dict_errors_close_the_session() {
    let long = std::format!("{{'a': '{}'}}", "x".repeat(MAX_MESSAGE));
    let cases: [(&[u8], &str); 7] = [
        (b"{'a': __import__('os').system('x')}", DICT_MALFORMED),
        (b"{'a': 'b', 'c': 'd'}", DICT_MALFORMED),
        (b"{'a': 1}", DICT_MALFORMED),
        (b"{'a': 'b'\n", DICT_MALFORMED),
        (b"{'a': '\xff\xfe'}", DICT_MALFORMED),
        (b"{'a': 'b\0'}", DICT_MALFORMED),
        (long.as_bytes(), DICT_TOO_LONG),
    ];
    for (req, reply) in cases {
        let mut b = demo();
        b.send_chunked(req, 7);
        assert_eq!(b.said(), reply, "{req:?}");
        assert!(b.session.finished());
        assert_eq!(b.iterations, 0);
    }
}

#[test]
fn dict_at_exactly_the_limit_is_accepted() {
    let mut b = demo();
    let pad = MAX_MESSAGE - "{'张三': '123'}".len();
    let req = std::format!("{{'张三':{}'123'}}", " ".repeat(pad + 1));
    assert_eq!(req.len(), MAX_MESSAGE);
    b.send(&req);
    assert_eq!(b.said(), "登录成功!");
}

#[test]
fn line_protocol_transcript() {
    let mut b = demo();
    b.send("WHOAMI\n");
    assert_eq!(b.said(), "ERR not logged in\n");
    b.send("LOGIN 张三 123\n");
    assert_eq!(b.said(), "OK 张三\n");
    assert_eq!(b.session.user(), Some("张三"));
    b.send("whoami\n");
    assert_eq!(b.said(), "OK 张三\n");
    b.send("HELP\n");
    assert_eq!(b.said(), HELP);
    b.send("dance\n");
    assert_eq!(b.said(), "ERR unknown command, try HELP\n");
    b.send("LOGIN 张三\n");
    assert_eq!(b.said(), "ERR usage: LOGIN <user> <password>\n");
    b.send("LOGOUT\n");
    assert_eq!(b.said(), "OK logged out\n");
    b.send("WHOAMI\n");
    assert_eq!(b.said(), "ERR not logged in\n");
    b.send("LOGIN 张三 124\n");
    assert_eq!(b.said(), "ERR invalid user name or password\n");
    b.send("LOGIN nobody 123\n");
    assert_eq!(b.said(), "ERR invalid user name or password\n");
    assert!(!b.session.finished());
    b.send("QUIT\n");
    assert_eq!(b.said(), "OK bye\n");
    assert!(b.session.finished());
}

#[test]
fn line_protocol_pipelined_crlf_and_byte_by_byte() {
    let mut b = demo();
    let input = "\r\n  login 赵四 345\r\nWHOAMI\r\n\r\nquit\r\nHELP\r\n";
    let consumed = b.send_chunked(input.as_bytes(), 1);
    assert_eq!(b.said(), "OK 赵四\nOK 赵四\nOK bye\n");
    assert!(b.session.finished());
    assert_eq!(&input[consumed..], "HELP\r\n");
}

#[test]
fn a_lone_cr_is_part_of_the_line() {
    let mut b = cheap();
    b.send("LOGIN u pw\r\r\n");
    assert_eq!(b.said(), "OK u\n");
    b.send("WHOAMI\rx\n");
    assert_eq!(b.said(), "ERR unknown command, try HELP\n");
}

#[test]
fn no_input_is_consumed_while_hashing() {
    let mut b = demo();
    let n = b.with(|s, cx, now, out| s.recv(cx, now, "LOGIN 张三 123\nWHOAMI\n".as_bytes(), out));
    assert_eq!(n, "LOGIN 张三 123\n".len());
    assert_eq!(b.session.poll_at(), Some(b.now));
    assert_eq!(b.iterations, 16);
    let n = b.with(|s, cx, now, out| s.recv(cx, now, b"WHOAMI\n", out));
    assert_eq!(n, 0);
    assert_eq!(b.iterations, 32, "recv still advances the check");
    assert!(b.out.is_empty());
    b.send("WHOAMI\n");
    assert_eq!(b.said(), "OK 张三\nOK 张三\n");
    assert_eq!(b.session.poll_at(), None);
}

#[test]
fn no_input_is_consumed_while_a_reply_waits() {
    let mut b = demo();
    b.with(|s, cx, now, out| s.recv(cx, now, b"HELP\n", out));
    assert!(!b.out.is_empty());
    let n = b.with(|s, cx, now, out| s.recv(cx, now, b"HELP\n", out));
    assert_eq!(n, 0);
}

#[test]
fn zero_budget_makes_no_progress_but_poll_continues() {
    let mut b = cheap();
    b.limits.hash_iterations_per_poll = 0;
    b.send("LOGIN u pw\n");
    assert!(b.session.poll_at().is_some());
    b.limits.hash_iterations_per_poll = 1;
    b.send("");
    assert_eq!(b.said(), "OK u\n");
}

#[test]
fn too_long_line_resyncs_at_the_next_lf() {
    let mut b = cheap();
    let long = "x".repeat(MAX_MESSAGE + 10);
    b.send_chunked(std::format!("{long}\nLOGIN u pw\n").as_bytes(), 13);
    assert_eq!(b.said(), "ERR message too long (max 256 bytes)\nOK u\n");
    assert!(!b.session.finished());
}

#[test]
fn line_at_exactly_the_limit_with_crlf_is_accepted() {
    let mut b = cheap();
    let line = std::format!("LOGIN u{} pw", " ".repeat(MAX_MESSAGE - 10));
    assert_eq!(line.len(), MAX_MESSAGE);
    b.send(&std::format!("{line}\r\n"));
    assert_eq!(b.said(), "OK u\n");
    b.send(&std::format!("{line}x\r\n"));
    assert_eq!(b.said(), "ERR message too long (max 256 bytes)\n");
}

#[test]
fn invalid_utf8_line_gets_an_error_and_the_session_goes_on() {
    let mut b = cheap();
    b.send_chunked(b"LOGIN u \xff\xfe\nLOGIN u pw\n", 3);
    assert_eq!(b.said(), "ERR invalid UTF-8\nOK u\n");
}

#[test]
fn idle_says_so_in_the_line_form_only() {
    let mut b = demo();
    b.send("LOGIN 张");
    b.session.idle(&mut b.out);
    b.drain();
    assert_eq!(b.said(), "ERR idle timeout\n");
    assert!(b.session.finished());

    let mut b = demo();
    b.session.idle(&mut b.out);
    b.drain();
    assert_eq!(b.said(), "ERR idle timeout\n");

    let mut b = demo();
    b.send("{'张三': ");
    b.session.idle(&mut b.out);
    assert!(b.out.is_empty());
    assert!(b.session.finished());
}

#[test]
fn peer_close_completes_an_unterminated_request() {
    let mut b = demo();
    b.send("LOGIN 张三 123");
    assert_eq!(b.said(), "");
    b.close();
    assert_eq!(b.said(), "OK 张三\n");
    assert!(b.session.finished());

    let mut b = demo();
    b.send("{'张三': '123'");
    b.close();
    assert_eq!(b.said(), DICT_MALFORMED);
    assert!(b.session.finished());

    let mut b = demo();
    b.send("HELP\n");
    b.said();
    b.close();
    assert_eq!(b.said(), "");
    assert!(b.session.finished());
}

#[test]
fn peer_close_during_a_check_finishes_after_the_verdict() {
    let mut b = demo();
    b.with(|s, cx, now, out| s.recv(cx, now, "LOGIN 张三 123\n".as_bytes(), out));
    b.with(|s, cx, now, out| s.peer_closed(cx, now, out));
    assert!(!b.session.finished());
    b.send("");
    assert_eq!(b.said(), "OK 张三\n");
    assert!(b.session.finished());
}

#[test]
fn lockout_after_five_failures_costs_no_hash_work() {
    let mut b = cheap();
    for _ in 0..5 {
        b.send("LOGIN u wrong\n");
        assert_eq!(b.said(), "ERR invalid user name or password\n");
    }
    b.iterations = 0;
    b.send("LOGIN u pw\n");
    assert_eq!(
        b.said(),
        "ERR locked out: too many failed logins, try again in 60 s\n"
    );
    assert_eq!(b.iterations, 0);
    b.now += Duration::from_millis(30_500);
    b.send("LOGIN u pw\n");
    assert_eq!(
        b.said(),
        "ERR locked out: too many failed logins, try again in 30 s\n"
    );
    // The dict form from the same address is refused too.
    b.reconnect(b.peer);
    b.send("{'u': 'pw'}");
    assert_eq!(b.said(), DICT_LOCKED);
    assert!(b.session.finished());
    assert_eq!(b.iterations, 0);
    // Another address is unaffected.
    b.reconnect(ip(3));
    b.send("LOGIN u pw\n");
    assert_eq!(b.said(), "OK u\n");
    // The lock expires.
    b.reconnect(ip(2));
    b.now += Duration::from_secs(30);
    b.send("LOGIN u pw\n");
    assert_eq!(b.said(), "OK u\n");
}

#[test]
fn dict_failures_count_towards_the_lockout() {
    let mut b = cheap();
    for _ in 0..5 {
        b.reconnect(ip(9));
        b.send("{'u': 'nope'}");
        assert_eq!(b.said(), DICT_FAILED);
    }
    b.reconnect(ip(9));
    b.send("{'u': 'pw'}");
    assert_eq!(b.said(), DICT_LOCKED);
}

#[test]
fn success_resets_the_failure_count() {
    let mut b = cheap();
    for _ in 0..4 {
        b.send("LOGIN u wrong\n");
    }
    b.send("LOGIN u pw\n");
    for _ in 0..4 {
        b.send("LOGIN u wrong\n");
    }
    b.said();
    b.send("LOGIN u pw\n");
    assert_eq!(b.said(), "OK u\n");
}

#[test]
fn a_failed_login_logs_out() {
    let mut b = cheap();
    b.send("LOGIN u pw\nLOGIN u bad\nWHOAMI\n");
    assert_eq!(
        b.said(),
        "OK u\nERR invalid user name or password\nERR not logged in\n"
    );
}

#[test]
fn request_buffer_is_wiped_after_use() {
    let mut b = cheap();
    b.send("LOGIN u pw\n");
    assert!(b.session.reader.buf.is_empty());
    b.send("LOGIN u p");
    assert_eq!(&b.session.reader.buf[..], b"LOGIN u p");
}

#[test]
fn session_is_small() {
    // One per login socket: keep it within a few hundred bytes.
    assert!(core::mem::size_of::<LoginSession>() < 1024);
}
