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
//!   CRLF-terminated command per line and one reply line per command
//!   (`OK …`, `ERR …`, or `CHALLENGE …` to `AUTH`). The connection stays
//!   open until `QUIT`. Blank lines are ignored; a line over
//!   [`MAX_MESSAGE`] bytes gets `ERR message too long` at once and the rest
//!   of it, up to the next LF, is skipped.
//!
//! Every login first asks the shared [`Lockout`](super::Lockout) table (a
//! locked address costs no hash work), and a password check asks again
//! when it finishes: a lock that began meanwhile withholds the verdict. The plaintext forms (`LOGIN` and the
//! dict) then run PBKDF2 in slices out of the node-wide `hash_budget` and
//! compare the resulting `StoredKey`; `AUTH`/`PROOF` is the
//! challenge-response exchange of [`super::scram`], where the client does
//! the PBKDF2. An unknown user is checked against
//! [`Store::dummy`](super::Store::dummy) (or gets a fake challenge), so it
//! costs the same work and gets the same reply as a wrong password. The
//! session reads no input while a check runs or a reply is waiting, and
//! wipes request bytes once used. Logs carry the peer address and the
//! outcome, never a name, password, salt, nonce or proof.

use core::fmt::Write as _;

use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{IpAddress, Ipv4Address};
use subtle::{Choice, ConstantTimeEq};

use super::dict::Scanner;
use super::hash::{self, HASH_LEN, Pbkdf2Job};
use super::request::{self, Form, Request, RequestError};
use super::scram::{self, Challenge};
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
pub const HELP: &str = "OK commands: AUTH <user> <client-nonce> | PROOF <client-proof-hex> | \
                        LOGIN <user> <password> | WHOAMI | LOGOUT | QUIT | HELP\n";
/// The line-protocol reply to a failed login, any form, any reason.
pub const LINE_FAILED: &str = "ERR invalid user name or password\n";

// The error replies spell these limits out as constant text.
const _: () = assert!(MAX_USER == 32);
const _: () = assert!(scram::CLIENT_NONCE_MIN == 8 && scram::CLIENT_NONCE_MAX == 64);

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
    /// A password check or a challenge under way.
    work: Work,
    /// Who logged in on this connection (line form).
    user: Option<UserName>,
    /// The client sent FIN: finish once the current request is answered.
    peer_closed: bool,
    finished: bool,
}

/// What a session is in the middle of, besides reading. The two never
/// overlap, so they share memory: a session is one per TCP socket slot.
enum Work {
    Idle,
    /// A plaintext password being hashed.
    Hashing(Pending),
    /// A `CHALLENGE` sent; the next line must be its `PROOF`.
    Challenged(Challenge),
}

/// A password check under way.
struct Pending {
    job: Pbkdf2Job,
    /// The record's `StoredKey`.
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
                work: Work::Idle,
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
    fn hashing(&self) -> Option<&Pending> {
        match &self.work {
            Work::Hashing(p) => Some(p),
            _ => None,
        }
    }

    fn answer(
        &mut self,
        cx: &mut Shared<'_, '_>,
        form: Form,
        parsed: Result<Request<'_>, RequestError>,
        out: &mut Outbox,
    ) {
        if let Err(RequestError::Empty) = parsed {
            return;
        }
        // A challenge answers the very next line only: whatever this line
        // is, the challenge is used up.
        let challenge = match core::mem::replace(&mut self.work, Work::Idle) {
            Work::Challenged(c) => Some(c),
            other => {
                self.work = other;
                None
            }
        };
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
            (Form::Line, Err(RequestError::AuthUsage)) => {
                return reply(out, "ERR usage: AUTH <user> <client-nonce>\n");
            }
            (Form::Line, Err(RequestError::AuthUserTooLong)) => {
                return reply(out, "ERR user name too long (max 32 bytes)\n");
            }
            (Form::Line, Err(RequestError::AuthNonce)) => {
                return reply(
                    out,
                    "ERR client nonce must be 8 to 64 printable ASCII characters\n",
                );
            }
            (Form::Line, Err(RequestError::ProofUsage)) => {
                return reply(out, "ERR usage: PROOF <client-proof-hex>\n");
            }
            (Form::Line, Err(RequestError::UnknownCommand | RequestError::Dict(_))) => {
                return reply(out, "ERR unknown command, try HELP\n");
            }
        };
        match request {
            Request::Auth { user, client_nonce } => self.auth(cx, user, client_nonce, out),
            Request::Proof(proof) => self.proof(cx, challenge, &proof, out),
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

    /// Refuses a locked-out address: returns `true` if it did.
    fn refuse_if_locked(&mut self, cx: &mut Shared<'_, '_>, form: Form, out: &mut Outbox) -> bool {
        let Some(left) = cx.lockout.locked_for(self.peer, self.now) else {
            return false;
        };
        warn!("login {}: refused, address locked out", self.peer);
        match form {
            Form::Line => {
                let _ = writeln!(
                    out,
                    "ERR locked out: too many failed logins, try again in {} s",
                    ceil_secs(left)
                );
            }
            Form::Dict => self.finish_with(DICT_LOCKED, out),
        }
        true
    }

    /// Counts a verdict in the lockout table and logs it (without a name).
    fn record(&mut self, cx: &mut Shared<'_, '_>, ok: bool) {
        if ok {
            // A success does not clear the address's failures: otherwise one
            // valid account would let an attacker guess 4 times, log in,
            // and start over, never reaching the lockout.
            info!("login {}: ok", self.peer);
        } else {
            warn!("login {}: failed", self.peer);
            if cx.lockout.record_failure(self.peer, self.now, cx.limits) {
                warn!("login {}: too many failures, address locked out", self.peer);
            }
        }
    }

    /// `AUTH`: sends a challenge, real or fake (or refuses a locked-out
    /// address).
    fn auth(&mut self, cx: &mut Shared<'_, '_>, user: &str, client_nonce: &str, out: &mut Outbox) {
        // A new attempt replaces any earlier login on this connection.
        self.user = None;
        if self.refuse_if_locked(cx, Form::Line, out) {
            return;
        }
        let challenge = Challenge::start(
            cx.store,
            cx.challenges,
            user,
            client_nonce,
            self.now,
            self.peer,
            out,
        );
        cx.hash_budget = cx.hash_budget.saturating_sub(scram::AUTH_COST);
        debug!("login {}: challenge sent", self.peer);
        self.work = Work::Challenged(challenge);
    }

    /// `PROOF`: the verdict on the challenge this line answers.
    fn proof(
        &mut self,
        cx: &mut Shared<'_, '_>,
        challenge: Option<Challenge>,
        proof: &[u8; HASH_LEN],
        out: &mut Outbox,
    ) {
        let Some(mut challenge) = challenge else {
            return reply(out, "ERR no challenge: send AUTH first\n");
        };
        if self.refuse_if_locked(cx, Form::Line, out) {
            return;
        }
        let ok: bool = challenge.verify(proof).into();
        cx.hash_budget = cx.hash_budget.saturating_sub(scram::PROOF_COST);
        self.record(cx, ok);
        if ok {
            challenge.write_ok(out);
            self.user = Some(challenge.take_user());
        } else {
            reply(out, LINE_FAILED);
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
        if self.refuse_if_locked(cx, form, out) {
            return;
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
        self.work = Work::Hashing(Pending {
            job,
            expected: record.stored_key,
            known,
            form,
            user: name,
        });
        self.work(cx, out);
    }

    /// Advances the password check by what the budget allows, and gives the
    /// verdict once it is done.
    fn work(&mut self, cx: &mut Shared<'_, '_>, out: &mut Outbox) {
        let Work::Hashing(p) = &mut self.work else {
            return;
        };
        let used = p.job.step(cx.hash_budget);
        cx.hash_budget -= used;
        let Some(salted) = p.job.result() else {
            return;
        };
        // SaltedPassword → StoredKey, the same two steps for every user.
        let ok: bool =
            (scram::stored_key_of(salted).ct_eq(&p.expected) & Choice::from(p.known as u8)).into();
        let Work::Hashing(p) = core::mem::replace(&mut self.work, Work::Idle) else {
            return;
        };
        // Other connections from this address may have locked it out while
        // this check ran. Its verdict is withheld then: otherwise every
        // socket of the pool could carry one more guess past the limit.
        if self.refuse_if_locked(cx, p.form, out) {
            if self.peer_closed {
                self.finished = true;
            }
            return;
        }
        self.record(cx, ok);
        match (p.form, ok) {
            (Form::Line, true) => {
                let _ = writeln!(out, "OK {}", p.user);
                self.user = Some(p.user.clone());
            }
            (Form::Line, false) => reply(out, LINE_FAILED),
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
        if self.core.finished || self.core.hashing().is_some() || !out.is_empty() {
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
        if self.core.hashing().is_none()
            && let Some(form) = self.reader.end_of_input()
        {
            self.handle(cx, form, out);
        }
        if self.core.hashing().is_none() {
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
        self.core.hashing().map(|_| self.core.now)
    }

    /// Says `ERR idle timeout` to a line-protocol client (a half-sent dict
    /// gets no reply: its client expects only a verdict) and finishes.
    fn idle(&mut self, out: &mut Outbox) {
        let dict = matches!(self.reader.state, ReadState::Dict(_))
            || matches!(self.core.hashing(), Some(p) if p.form == Form::Dict);
        self.core.work = Work::Idle;
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
mod tests;
