//! One connection to the login service, as a sans-IO state machine.
//!
//! The session says nothing until it has a complete request: the tutorial
//! client's first `recv` must be the verdict. Each request's form is decided
//! by its first non-whitespace byte:
//!
//! - `{`: the tutorial's dict, complete at its closing brace (the tutorial
//!   client sends no newline) or at a line feed. It gets exactly one verdict,
//!   `登录成功!` or `用户名或密码错误!`, without a newline, and the session
//!   ends. Errors get `请求格式错误!` (malformed, not UTF-8), `请求过长!`
//!   (over [`MAX_MESSAGE`] bytes) or `登录失败次数过多,请稍后再试!` (locked out),
//!   and the session ends too.
//! - anything else: the line protocol of [`super::request`], one LF- or
//!   CRLF-terminated command per line and one `OK …`/`ERR …` line per
//!   command. The connection stays open until `QUIT`. Blank lines are
//!   ignored; a line over [`MAX_MESSAGE`] bytes gets `ERR message too long`
//!   at once and the rest of it, up to the next LF, is skipped.
//!
//! A login first asks the shared [`Lockout`](super::Lockout) table (a locked
//! address costs no hash work), then runs PBKDF2 in slices out of the
//! node-wide `hash_budget`. An unknown user is checked against
//! [`Store::dummy`](super::Store::dummy), so it costs the same iterations and
//! gets the same reply as a wrong password. The session reads no input while
//! a check runs or a reply is waiting, and wipes request bytes once used.
//! Logs carry the peer address and the outcome, never a name or password.

use core::fmt::Write as _;

use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{IpAddress, Ipv4Address};
use subtle::Choice;

use super::dict::Scanner;
use super::hash::{self, HASH_LEN, Pbkdf2Job};
use super::request::{self, Form, Request, RequestError};
use super::store::MAX_USER;
use crate::config::MAX_MESSAGE;
use crate::outbox::Outbox;
use crate::session::{Protocol, Shared};

/// Dict-form verdict: the login succeeded.
pub const DICT_OK: &str = "登录成功!";
/// Dict-form verdict: unknown user or wrong password.
pub const DICT_FAILED: &str = "用户名或密码错误!";
/// Dict-form reply to a locked-out address.
pub const DICT_LOCKED: &str = "登录失败次数过多,请稍后再试!";
/// Dict-form reply to a malformed request.
pub const DICT_MALFORMED: &str = "请求格式错误!";
/// Dict-form reply to a request over [`MAX_MESSAGE`] bytes.
pub const DICT_TOO_LONG: &str = "请求过长!";
/// The line-protocol reply to `HELP`.
pub const HELP: &str = "OK commands: LOGIN <user> <password> | WHOAMI | LOGOUT | QUIT | HELP\n";

/// A user name as the session remembers it.
type UserName = heapless::String<MAX_USER>;

/// The login service's [`Protocol`].
pub struct LoginSession {
    reader: Reader,
    core: Core,
}

/// Everything but the request being read, so that a parsed request can
/// borrow the reader's buffer while the rest of the session changes.
struct Core {
    peer: IpAddress,
    /// The latest time the binding told us; `poll_at` while hashing.
    now: Instant,
    /// The password check under way.
    pending: Option<Pending>,
    /// Who logged in on this connection (line form).
    user: Option<UserName>,
    /// The client sent FIN: finish once the current request is answered.
    peer_closed: bool,
    finished: bool,
}

/// A password check under way.
struct Pending {
    job: Pbkdf2Job,
    expected: [u8; HASH_LEN],
    /// Whether the user exists: a dummy record's hash never counts.
    known: bool,
    form: Form,
    user: UserName,
}

/// Collects one request's bytes and finds where it ends.
struct Reader {
    buf: heapless::Vec<u8, MAX_MESSAGE>,
    state: ReadState,
}

#[derive(Clone, Copy)]
enum ReadState {
    /// Before a request: whitespace is skipped.
    Between,
    /// In a line; `cr`: the last byte was a CR, held back in case an LF
    /// follows.
    Line { cr: bool },
    /// In a dict.
    Dict(Scanner),
    /// Skipping the rest of an over-long line.
    Discard,
}

/// What one byte did to the request being read.
enum Framed {
    More,
    /// A request of this form is complete in the buffer.
    Complete(Form),
    /// The request outgrew [`MAX_MESSAGE`].
    TooLong(Form),
}

impl Reader {
    const fn new() -> Self {
        Reader {
            buf: heapless::Vec::new(),
            state: ReadState::Between,
        }
    }

    fn feed(&mut self, b: u8) -> Framed {
        if let ReadState::Between = self.state {
            if b.is_ascii_whitespace() {
                return Framed::More;
            }
            self.state = match Form::of(b) {
                Form::Dict => ReadState::Dict(Scanner::new()),
                Form::Line => ReadState::Line { cr: false },
            };
        }
        match &mut self.state {
            ReadState::Between => Framed::More,
            ReadState::Discard => {
                if b == b'\n' {
                    self.state = ReadState::Between;
                }
                Framed::More
            }
            ReadState::Line { cr } => {
                if b == b'\n' {
                    self.state = ReadState::Between;
                    return Framed::Complete(Form::Line);
                }
                // A CR not followed by LF is part of the line.
                let held = core::mem::replace(cr, b == b'\r');
                if held && self.buf.push(b'\r').is_err() {
                    return self.too_long(Form::Line);
                }
                if b != b'\r' && self.buf.push(b).is_err() {
                    return self.too_long(Form::Line);
                }
                Framed::More
            }
            ReadState::Dict(scanner) => {
                if b == b'\n' {
                    self.state = ReadState::Between;
                    return Framed::Complete(Form::Dict);
                }
                let closed = scanner.feed(b);
                if self.buf.push(b).is_err() {
                    return self.too_long(Form::Dict);
                }
                if closed {
                    self.state = ReadState::Between;
                    return Framed::Complete(Form::Dict);
                }
                Framed::More
            }
        }
    }

    fn too_long(&mut self, form: Form) -> Framed {
        self.wipe();
        self.state = ReadState::Discard;
        Framed::TooLong(form)
    }

    /// The input ended: a request still being read is complete now.
    fn end_of_input(&mut self) -> Option<Form> {
        let form = match self.state {
            ReadState::Line { .. } => Some(Form::Line),
            ReadState::Dict(_) => Some(Form::Dict),
            ReadState::Between | ReadState::Discard => None,
        };
        self.state = ReadState::Between;
        form
    }

    /// Overwrites the request bytes (they may hold a password).
    fn wipe(&mut self) {
        hash::wipe(&mut self.buf);
        self.buf.clear();
    }
}

impl Default for LoginSession {
    fn default() -> Self {
        LoginSession::new()
    }
}

impl LoginSession {
    /// A session waiting for [`Protocol::open`].
    pub const fn new() -> Self {
        LoginSession {
            reader: Reader::new(),
            core: Core {
                peer: IpAddress::Ipv4(Ipv4Address::UNSPECIFIED),
                now: Instant::ZERO,
                pending: None,
                user: None,
                peer_closed: false,
                finished: false,
            },
        }
    }

    /// The user logged in on this connection (line form), if any.
    pub fn user(&self) -> Option<&str> {
        self.core.user.as_deref()
    }

    /// Parses and answers the request in the reader's buffer, then wipes it.
    fn handle(&mut self, cx: &mut Shared<'_, '_>, form: Form, out: &mut Outbox) {
        let parsed = request::parse(&self.reader.buf);
        self.core.answer(cx, form, parsed, out);
        self.reader.wipe();
    }
}

impl Core {
    fn answer(
        &mut self,
        cx: &mut Shared<'_, '_>,
        form: Form,
        parsed: Result<Request<'_>, RequestError>,
        out: &mut Outbox,
    ) {
        let request = match (form, parsed) {
            (_, Ok(r)) => r,
            (_, Err(RequestError::Empty)) => return,
            (Form::Dict, Err(_)) => {
                debug!("login {}: malformed request", self.peer);
                return self.finish_with(DICT_MALFORMED, out);
            }
            (Form::Line, Err(RequestError::InvalidUtf8)) => {
                return reply(out, "ERR invalid UTF-8\n");
            }
            (Form::Line, Err(RequestError::LoginUsage)) => {
                return reply(out, "ERR usage: LOGIN <user> <password>\n");
            }
            (Form::Line, Err(RequestError::UnknownCommand | RequestError::Dict(_))) => {
                return reply(out, "ERR unknown command, try HELP\n");
            }
        };
        match request {
            Request::Login { user, password } => {
                self.login(cx, Form::Line, user, password.as_bytes(), out)
            }
            Request::DictLogin(entry) => {
                self.login(cx, Form::Dict, entry.key(), entry.value().as_bytes(), out)
            }
            Request::WhoAmI => match &self.user {
                Some(user) => {
                    let _ = writeln!(out, "OK {user}");
                }
                None => reply(out, "ERR not logged in\n"),
            },
            Request::Logout => {
                self.user = None;
                reply(out, "OK logged out\n");
            }
            Request::Quit => {
                self.user = None;
                reply(out, "OK bye\n");
                self.finished = true;
            }
            Request::Help => reply(out, HELP),
        }
    }

    /// Starts checking a password (or refuses a locked-out address).
    fn login(
        &mut self,
        cx: &mut Shared<'_, '_>,
        form: Form,
        user: &str,
        password: &[u8],
        out: &mut Outbox,
    ) {
        // A new attempt replaces any earlier login on this connection.
        self.user = None;
        if let Some(left) = cx.lockout.locked_for(self.peer, self.now) {
            warn!("login {}: refused, address locked out", self.peer);
            return match form {
                Form::Line => {
                    let _ = writeln!(
                        out,
                        "ERR locked out: too many failed logins, try again in {} s",
                        ceil_secs(left)
                    );
                }
                Form::Dict => self.finish_with(DICT_LOCKED, out),
            };
        }
        let (record, known) = match cx.store.find(user) {
            Some(r) => (*r, true),
            None => (cx.store.dummy(), false),
        };
        // Copied whether or not the user exists, so both paths do the same
        // work; `find` only finds names that fit.
        let mut name = UserName::new();
        let known = name.push_str(user).is_ok() && known;
        let job = Pbkdf2Job::new(password, &record.salt, record.iterations);
        // `new` did the first iteration.
        cx.hash_budget = cx.hash_budget.saturating_sub(1);
        self.pending = Some(Pending {
            job,
            expected: record.hash,
            known,
            form,
            user: name,
        });
        self.work(cx, out);
    }

    /// Advances the password check by what the budget allows, and gives the
    /// verdict once it is done.
    fn work(&mut self, cx: &mut Shared<'_, '_>, out: &mut Outbox) {
        let Some(p) = &mut self.pending else { return };
        let used = p.job.step(cx.hash_budget);
        cx.hash_budget -= used;
        if !p.job.is_done() {
            return;
        }
        let Some(p) = self.pending.take() else { return };
        let ok: bool = (p.job.matches(&p.expected) & Choice::from(p.known as u8)).into();
        if ok {
            cx.lockout.record_success(self.peer);
            info!("login {}: ok", self.peer);
        } else {
            warn!("login {}: failed", self.peer);
            if cx.lockout.record_failure(self.peer, self.now, cx.limits) {
                warn!("login {}: too many failures, address locked out", self.peer);
            }
        }
        match (p.form, ok) {
            (Form::Line, true) => {
                let _ = writeln!(out, "OK {}", p.user);
                self.user = Some(p.user.clone());
            }
            (Form::Line, false) => reply(out, "ERR invalid user name or password\n"),
            (Form::Dict, true) => self.finish_with(DICT_OK, out),
            (Form::Dict, false) => self.finish_with(DICT_FAILED, out),
        }
        if self.peer_closed {
            self.finished = true;
        }
    }

    fn finish_with(&mut self, text: &str, out: &mut Outbox) {
        reply(out, text);
        self.finished = true;
    }
}

/// Queues a reply. The outbox holds [`crate::config::MAX_REPLY`] bytes and
/// the session only answers into an empty one, so every reply fits.
fn reply(out: &mut Outbox, text: &str) {
    let _ = out.push(text.as_bytes());
}

/// Whole seconds, rounded up, so that "try again in 0 s" never happens.
fn ceil_secs(d: Duration) -> u64 {
    d.total_micros().div_ceil(1_000_000)
}

impl Protocol for LoginSession {
    /// Resets the session for a new client. No greeting: the tutorial client
    /// reads the verdict first.
    fn open(&mut self, _cx: &mut Shared<'_, '_>, now: Instant, peer: IpAddress, _out: &mut Outbox) {
        *self = LoginSession::new();
        self.core.peer = peer;
        self.core.now = now;
        debug!("login {}: connected", peer);
    }

    /// Reads up to the end of one request and answers or starts checking it.
    /// Consumes nothing while a check runs, a reply waits or the session is
    /// finished.
    fn recv(
        &mut self,
        cx: &mut Shared<'_, '_>,
        now: Instant,
        data: &[u8],
        out: &mut Outbox,
    ) -> usize {
        self.core.now = now;
        self.core.work(cx, out);
        if self.core.finished || self.core.pending.is_some() || !out.is_empty() {
            return 0;
        }
        for (i, &b) in data.iter().enumerate() {
            match self.reader.feed(b) {
                Framed::More => {}
                Framed::Complete(form) => {
                    self.handle(cx, form, out);
                    return i + 1;
                }
                Framed::TooLong(Form::Line) => {
                    debug!("login {}: line too long", self.core.peer);
                    let _ = writeln!(out, "ERR message too long (max {MAX_MESSAGE} bytes)");
                    return i + 1;
                }
                Framed::TooLong(Form::Dict) => {
                    debug!("login {}: request too long", self.core.peer);
                    self.core.finish_with(DICT_TOO_LONG, out);
                    return i + 1;
                }
            }
        }
        data.len()
    }

    /// An unterminated request is complete now; the session finishes once
    /// it is answered. The binding must call this only after `recv` has
    /// consumed every received byte.
    fn peer_closed(&mut self, cx: &mut Shared<'_, '_>, now: Instant, out: &mut Outbox) {
        self.core.now = now;
        self.core.peer_closed = true;
        if self.core.finished {
            return;
        }
        if self.core.pending.is_none()
            && let Some(form) = self.reader.end_of_input()
        {
            self.handle(cx, form, out);
        }
        if self.core.pending.is_none() {
            self.core.finished = true;
        }
    }

    /// Continues a password check.
    fn poll(&mut self, cx: &mut Shared<'_, '_>, now: Instant, out: &mut Outbox) {
        self.core.now = now;
        self.core.work(cx, out);
    }

    /// While a password check runs: at once (the last `now` seen), so the
    /// binding polls again as soon as it has budget.
    fn poll_at(&self) -> Option<Instant> {
        self.core.pending.as_ref().map(|_| self.core.now)
    }

    /// Says `ERR idle timeout` to a line-protocol client (a half-sent dict
    /// gets no reply: its client expects only a verdict) and finishes.
    fn idle(&mut self, out: &mut Outbox) {
        let dict = matches!(self.reader.state, ReadState::Dict(_))
            || matches!(&self.core.pending, Some(p) if p.form == Form::Dict);
        self.core.pending = None;
        self.reader.wipe();
        self.reader.state = ReadState::Between;
        if !self.core.finished && !dict {
            reply(out, "ERR idle timeout\n");
        }
        self.core.finished = true;
    }

    fn finished(&self) -> bool {
        self.core.finished
    }
}

#[cfg(test)]
mod tests {
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
        let n =
            b.with(|s, cx, now, out| s.recv(cx, now, "LOGIN 张三 123\nWHOAMI\n".as_bytes(), out));
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
}
