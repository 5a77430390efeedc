//! Transcripts of the login session, byte by byte, without a network.
extern crate std;

use std::string::String;
use std::vec::Vec;

use smoltcp::wire::Ipv4Address;

use super::*;
use crate::chat::AutoResponder;
use crate::config::Limits;
use crate::login::hash::pbkdf2_sha256;
use crate::login::scram::tests::{ClientExchange, client_first};
use crate::login::{Challenges, Lockout, Record, Store, store::DEMO};

fn ip(n: u8) -> IpAddress {
    IpAddress::Ipv4(Ipv4Address::new(192, 168, 69, n))
}

/// Plays the binding: feeds input in chunks, drains the outbox, polls
/// while a check runs, and counts hash iterations spent.
struct Bench {
    limits: Limits,
    store: Store<'static>,
    lockout: Lockout,
    challenges: Challenges,
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
            challenges: Challenges::new(42, &store),
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
            challenges: &mut self.challenges,
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
    let salted = pbkdf2_sha256(b"pw", &salt, 3);
    let records = std::vec![Record::from_salted_password("u", 3, salt, &salted)];
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

/// Polls (each one simulated time step on a node) from the request to
/// its verdict, and hash work spent, for one request on a fresh session.
fn polls_and_work(b: &mut Bench, req: &str) -> (u32, u32, String) {
    b.iterations = 0;
    let mut polls = 1;
    b.with(|s, cx, now, out| s.recv(cx, now, req.as_bytes(), out));
    while b.session.poll_at().is_some() {
        b.with(|s, cx, now, out| s.poll(cx, now, out));
        polls += 1;
        assert!(polls < 100_000);
    }
    b.drain();
    (polls, b.iterations, b.said())
}

#[test]
fn unknown_user_and_wrong_password_take_the_same_polls_and_work() {
    let mut seen = Vec::new();
    for req in [
        "LOGIN 张三 nope\n",
        "LOGIN nobody nope\n",
        "{'张三': 'x'}",
        "{'nobody': 'x'}",
    ] {
        let mut b = demo();
        seen.push(polls_and_work(&mut b, req));
    }
    // 4096 iterations at 16 per poll: 256 polls, the first inside `recv`.
    assert_eq!(
        seen[0],
        (256, 4096, "ERR invalid user name or password\n".into())
    );
    assert_eq!(seen[0], seen[1]);
    assert_eq!(seen[2], (256, 4096, DICT_FAILED.into()));
    assert_eq!(seen[2], seen[3]);

    // The control: a user with another iteration count *is* told apart, by
    // the same measurement. (So the equalities above can fail.)
    let salt = [1u8; 16];
    let records = std::vec![
        DEMO.records()[0],
        Record::from_salted_password("slow", 4112, salt, &[0; 32]),
    ];
    let mut b = Bench::new(Store::new(std::vec::Vec::leak(records)));
    let slow = polls_and_work(&mut b, "LOGIN slow nope\n");
    assert_eq!((slow.0, slow.1), (257, 4112));
    assert_ne!(slow.0, seen[0].0);
}

#[test]
fn scram_unknown_user_and_wrong_password_take_the_same_polls_and_work() {
    let mut seen = Vec::new();
    for (user, password) in [("张三", "nope"), ("nobody", "nope")] {
        let mut b = demo();
        let first = client_first(user, "abcdefgh12345678");
        let (polls, work, challenge) = polls_and_work(&mut b, &first);
        let ex = ClientExchange::new(&first, challenge.trim_end(), password);
        let (p2, w2, verdict) = polls_and_work(&mut b, &ex.proof_line());
        seen.push((polls, work, p2, w2, verdict));
    }
    assert_eq!(
        seen[0],
        (
            1,
            scram::AUTH_COST,
            1,
            scram::PROOF_COST,
            LINE_FAILED.into()
        )
    );
    assert_eq!(seen[0], seen[1]);
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

/// Found by `host-sim/tests/hostile.rs`: checks already running when other
/// connections from the same address reached the lockout still gave their
/// verdicts, so a brute force with a pool of N sockets learnt up to N - 1
/// verdicts past the limit (and one of them could have been `OK`).
#[test]
fn a_check_that_finishes_after_the_lockout_gets_no_verdict() {
    for (peer, request, refusal) in [
        (
            ip(4),
            "LOGIN 张三 123\n",
            "ERR locked out: too many failed logins, try again in 60 s\n",
        ),
        (ip(5), "{'张三': '123'}", DICT_LOCKED),
    ] {
        let mut b = demo();
        b.reconnect(peer);
        // The right password, and one poll: the check is under way.
        let n = b.with(|s, cx, now, out| s.recv(cx, now, request.as_bytes(), out));
        assert_eq!(n, request.len());
        assert!(b.session.poll_at().is_some(), "the check is under way");
        // Meanwhile five other connections from this address fail.
        for _ in 0..5 {
            b.lockout.record_failure(peer, b.now, &b.limits);
        }
        b.send("");
        assert_eq!(b.said(), refusal);
        assert!(b.session.user().is_none());
    }
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
fn success_does_not_reset_the_failure_count() {
    // Guess 4 times, log in with a valid account, guess again: the fifth
    // failure in the window still locks the address.
    let mut b = cheap();
    for _ in 0..4 {
        b.send("LOGIN u wrong\n");
    }
    b.send("LOGIN u pw\n");
    b.send("LOGIN u wrong\n");
    b.said();
    b.send("LOGIN u pw\n");
    assert!(b.said().starts_with("ERR locked out"));
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
    // One per TCP socket slot (the login session is the largest protocol):
    // keep it within a few hundred bytes. The challenge shares its memory
    // with the password check, so challenge-response costs nothing here.
    let size = core::mem::size_of::<LoginSession>();
    assert!(size <= 640, "{size}");
}

// ---- challenge-response (AUTH / PROOF) ----

const NONCE: &str = "client-nonce-0123";

/// Runs AUTH for `user`, returns the exchange as the client sees it.
fn auth(b: &mut Bench, user: &str, password: &str) -> ClientExchange {
    let first = client_first(user, NONCE);
    b.send(&first);
    let challenge = b.said();
    assert!(challenge.starts_with("CHALLENGE "), "{challenge}");
    ClientExchange::new(&first, challenge.trim_end(), password)
}

#[test]
fn scram_good_login_and_server_signature() {
    let mut b = demo();
    let ex = auth(&mut b, "张三", "123");
    assert_eq!(ex.salt, DEMO.records()[0].salt);
    assert_eq!(ex.iterations, 4096);
    assert!(ex.nonce.starts_with(NONCE) && ex.nonce.len() == NONCE.len() + 32);
    b.send(&ex.proof_line());
    let ok = b.said();
    assert_eq!(
        ok,
        ex.expected_ok("张三"),
        "the server proves it knows the keys"
    );
    assert_eq!(b.session.user(), Some("张三"));
    b.send("WHOAMI\n");
    assert_eq!(b.said(), "OK 张三\n");
    // The proof is spent: sending it again is not a login.
    b.send(&ex.proof_line());
    assert_eq!(b.said(), "ERR no challenge: send AUTH first\n");
    assert_eq!(
        b.session.user(),
        Some("张三"),
        "a stray PROOF changes nothing"
    );
}

#[test]
fn scram_wrong_password_fails_like_login() {
    let mut b = demo();
    let ex = auth(&mut b, "赵四", "346");
    b.send(&ex.proof_line());
    assert_eq!(b.said(), LINE_FAILED);
    assert_eq!(b.session.user(), None);
}

#[test]
fn scram_unknown_user_gets_a_consistent_fake_challenge() {
    let challenge_of = |seed: u64, user: &str| {
        let mut b = demo();
        b.challenges = Challenges::new(seed, &DEMO);
        let ex = auth(&mut b, user, "x");
        b.send(&ex.proof_line());
        assert_eq!(b.said(), LINE_FAILED);
        ex
    };
    let a = challenge_of(1, "nobody");
    // The same fake salt on every asking, across reboots (other seeds)...
    let again = challenge_of(2, "nobody");
    assert_eq!(a.salt, again.salt);
    assert_eq!(a.iterations, 4096);
    // ...while the server nonces differ.
    assert_ne!(a.nonce, again.nonce);
    // Each unknown name has its own salt, and none is a demo user's.
    let other = challenge_of(1, "somebody");
    assert_ne!(a.salt, other.salt);
    for r in DEMO.records() {
        assert_ne!(a.salt, r.salt);
    }
    // A real user's challenge has the same shape.
    let real = challenge_of(1, "王八");
    assert_eq!(real.challenge_line.len(), a.challenge_line.len());
    // Even the right password of some other user does not open an unknown
    // name.
    let mut b = demo();
    let ex = auth(&mut b, "nobody", "123");
    b.send(&ex.proof_line());
    assert_eq!(b.said(), LINE_FAILED);
}

#[test]
fn scram_replayed_proof_is_rejected() {
    // An eavesdropper records a good exchange...
    let mut b = demo();
    let recorded = auth(&mut b, "王八", "567");
    b.send(&recorded.proof_line());
    assert!(b.said().starts_with("OK 王八 "));
    // ...and replays it on a new connection, with the same client nonce.
    for peer in [ip(2), ip(7)] {
        b.reconnect(peer);
        b.send(&client_first("王八", NONCE));
        let fresh = b.said();
        assert_ne!(
            fresh.trim_end(),
            recorded.challenge_line,
            "a new server nonce"
        );
        b.send(&recorded.proof_line());
        assert_eq!(b.said(), LINE_FAILED);
        assert_eq!(b.session.user(), None);
    }
}

#[test]
fn scram_malformed_lines_get_clear_errors() {
    let mut b = demo();
    let cases = [
        ("AUTH\n", "ERR usage: AUTH <user> <client-nonce>\n"),
        ("AUTH 张三\n", "ERR usage: AUTH <user> <client-nonce>\n"),
        (
            "AUTH 张三 abcdefgh extra\n",
            "ERR usage: AUTH <user> <client-nonce>\n",
        ),
        (
            "AUTH 张三 short\n",
            "ERR client nonce must be 8 to 64 printable ASCII characters\n",
        ),
        (
            "AUTH 张三 nonce\u{e9}nonce\n",
            "ERR client nonce must be 8 to 64 printable ASCII characters\n",
        ),
        ("PROOF\n", "ERR usage: PROOF <client-proof-hex>\n"),
        ("PROOF 12\n", "ERR usage: PROOF <client-proof-hex>\n"),
        ("PROOF 00 00\n", "ERR usage: PROOF <client-proof-hex>\n"),
    ];
    for (line, reply) in cases {
        b.send(line);
        assert_eq!(b.said(), reply, "{line:?}");
    }
    let long = std::format!("AUTH {} abcdefgh\n", "x".repeat(33));
    b.send(&long);
    assert_eq!(b.said(), "ERR user name too long (max 32 bytes)\n");
    let nonce = std::format!("AUTH u {}\n", "n".repeat(65));
    b.send(&nonce);
    assert!(b.said().starts_with("ERR client nonce must be"));
    // A proof without a challenge, with a good shape.
    b.send(&std::format!("PROOF {}\n", "00".repeat(32)));
    assert_eq!(b.said(), "ERR no challenge: send AUTH first\n");
    // A malformed PROOF uses the challenge up, as does any other line.
    for between in ["PROOF nothex\n", "WHOAMI\n", "HELP\n", "LOGIN 张三 123\n"] {
        let ex = auth(&mut b, "张三", "123");
        b.send(between);
        b.said();
        b.send(&ex.proof_line());
        assert_eq!(
            b.said(),
            "ERR no challenge: send AUTH first\n",
            "{between:?}"
        );
    }
    // A blank line does not.
    let ex = auth(&mut b, "张三", "123");
    b.send("\r\n\n");
    b.send(&ex.proof_line());
    assert!(b.said().starts_with("OK 张三 "));
    assert!(!b.session.finished());
    // The over-long line rule holds for the new commands too.
    b.send(&std::format!("AUTH {}\n", "x".repeat(MAX_MESSAGE)));
    assert_eq!(b.said(), "ERR message too long (max 256 bytes)\n");
}

#[test]
fn scram_failures_lock_the_address_out() {
    let mut b = cheap();
    for i in 0..5 {
        // Mixed with plaintext failures: they all count together.
        if i == 2 {
            b.send("LOGIN u wrong\n");
            assert_eq!(b.said(), LINE_FAILED);
            continue;
        }
        let ex = auth(&mut b, "u", "wrong");
        b.send(&ex.proof_line());
        assert_eq!(b.said(), LINE_FAILED);
    }
    b.iterations = 0;
    b.send(&client_first("u", NONCE));
    assert_eq!(
        b.said(),
        "ERR locked out: too many failed logins, try again in 60 s\n",
        "no challenge while locked"
    );
    assert_eq!(b.iterations, 0, "a locked address costs no work");
    b.send(&std::format!("PROOF {}\n", "00".repeat(32)));
    assert_eq!(b.said(), "ERR no challenge: send AUTH first\n");
    // Another address is unaffected.
    b.reconnect(ip(3));
    let ex = auth(&mut b, "u", "pw");
    b.send(&ex.proof_line());
    assert!(b.said().starts_with("OK u "));
    // The lock expires.
    b.reconnect(ip(2));
    b.now += Duration::from_secs(61);
    let ex = auth(&mut b, "u", "pw");
    b.send(&ex.proof_line());
    assert!(b.said().starts_with("OK u "));
}

#[test]
fn a_lock_that_starts_during_an_exchange_refuses_the_proof() {
    let mut b = cheap();
    let ex = auth(&mut b, "u", "pw");
    for _ in 0..5 {
        b.lockout.record_failure(b.peer, b.now, &b.limits);
    }
    b.send(&ex.proof_line());
    assert!(b.said().starts_with("ERR locked out"));
    assert_eq!(b.session.user(), None);
}

#[test]
fn scram_success_keeps_the_failure_count_and_auth_logs_out() {
    let mut b = cheap();
    for _ in 0..3 {
        b.send("LOGIN u wrong\n");
    }
    b.said();
    let ex = auth(&mut b, "u", "pw");
    b.send(&ex.proof_line());
    assert!(b.said().contains("OK u "));
    b.send("LOGIN u wrong\n");
    b.said();
    b.send("LOGIN u pw\n");
    assert_eq!(b.said(), "OK u\n", "four failures so far: not locked yet");
    // A new AUTH replaces the login, whatever comes of it.
    b.send(&client_first("u", NONCE));
    b.said();
    b.send("WHOAMI\n");
    assert_eq!(b.said(), "ERR not logged in\n");
}

#[test]
fn idle_during_an_exchange_says_so() {
    let mut b = demo();
    auth(&mut b, "张三", "123");
    b.session.idle(&mut b.out);
    b.drain();
    assert_eq!(b.said(), "ERR idle timeout\n");
    assert!(b.session.finished());
}

#[test]
fn help_lists_the_challenge_response_commands() {
    let mut b = demo();
    b.send("HELP\n");
    let help = b.said();
    assert!(
        help.contains("AUTH <user> <client-nonce>") && help.contains("PROOF"),
        "{help}"
    );
    assert!(help.len() <= crate::config::MAX_REPLY);
}
