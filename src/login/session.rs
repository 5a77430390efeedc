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
mod tests;
