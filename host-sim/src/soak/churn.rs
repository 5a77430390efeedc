//! The churn: client threads that open, use and close sessions with every
//! service, at random (seeded), until the deadline.
//!
//! Each session is checked, not just run: echoes byte for byte, the login's
//! verdict (and the server's SCRAM signature), each chat and hotline reply
//! word for word (the messages carry a keyword the rules rewrite and a
//! number, so a reply to another message cannot pass), and every TCP
//! session ends with the server's close. A session that fails counts as
//! one error of its kind and the thread goes on with the next.
//!
//! All clients come from one address, and five failed logins from one
//! address within a minute lock it out. So wrong passwords are rationed,
//! one every [`BAD_LOGIN_EVERY`] across all threads, and a lockout reply is
//! an error: it means the device counted wrong.
//!
//! Bounds: every connect, read and write has a timeout; a thread starts no
//! session after the deadline, so the run ends within the deadline plus one
//! session's worst case.

use std::io::{self, ErrorKind, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpStream, UdpSocket};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use smoltalk::chat::{AutoResponder, BYEBYE};
use smoltalk::config::Ports;
use smoltalk::login::session::{DICT_FAILED, DICT_LOCKED, DICT_OK, LINE_FAILED};

use super::scram;
use super::stats::{Service, Tally};

/// How long a connection attempt may take.
const CONNECT_WAIT: Duration = Duration::from_secs(3);

/// How long any read or write may block. Generous: a plaintext login on
/// the emulated Cortex-M3 runs 4096 PBKDF2 iterations.
const IO_WAIT: Duration = Duration::from_secs(10);

/// How long a UDP request waits for its reply before it is sent again, and
/// how many times it is sent. UDP may drop; TCP may not.
const UDP_WAIT: Duration = Duration::from_secs(1);
const UDP_TRIES: u32 = 3;

/// How long a session whose connection is refused (every socket of the
/// port busy: more clients than the pool, or a slot still closing) is
/// tried again before it counts as an error.
const REFUSED_RETRY: Duration = Duration::from_secs(3);

/// At most one wrong password per this, across all threads: at most 3 in
/// any minute, under the lockout's 5.
pub const BAD_LOGIN_EVERY: Duration = Duration::from_secs(20);

/// The longest reply line accepted.
const MAX_LINE: usize = 4096;

/// The TCP echo exchange's size.
const ECHO_CHUNK: usize = 1024;

/// The demo users (the tutorial's), who exist on every target.
const USERS: [(&str, &str); 3] = [("张三", "123"), ("赵四", "345"), ("王八", "567")];

/// Chat and hotline topics: each gets its canned answer.
const TOPICS: [&str; 6] = ["help", "hours", "price", "agent", "hello", "weather"];

/// What to run.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    pub ip: IpAddr,
    pub ports: Ports,
    pub clients: usize,
    pub duration: Duration,
    pub seed: u64,
    /// Time buckets of the latency report.
    pub buckets: usize,
}

/// What all threads share.
struct Shared<'a> {
    plan: &'a Plan,
    start: Instant,
    deadline: Instant,
    /// Set on Ctrl-C: no new sessions.
    stop: &'a AtomicBool,
    /// For the progress lines.
    served: AtomicU64,
    errors: AtomicU64,
    /// When the last wrong password was sent.
    last_bad_login: Mutex<Option<Instant>>,
}

/// Runs the churn and returns what it counted. Progress lines go to stderr.
pub fn run(plan: &Plan, stop: &AtomicBool) -> Tally {
    let start = Instant::now();
    let shared = Shared {
        plan,
        start,
        deadline: start + plan.duration,
        stop,
        served: AtomicU64::new(0),
        errors: AtomicU64::new(0),
        last_bad_login: Mutex::new(None),
    };
    let mut total = Tally::new(plan.duration, plan.buckets);
    thread::scope(|s| {
        let workers: Vec<_> = (0..plan.clients)
            .map(|i| {
                let shared = &shared;
                s.spawn(move || Worker::new(shared, i).run())
            })
            .collect();
        progress(&shared, &workers);
        for w in workers {
            match w.join() {
                Ok(tally) => total.merge(&tally),
                Err(_) => total.error("client panicked", "a client thread panicked".into()),
            }
        }
    });
    total
}

/// A line on stderr at each bucket's end, until every worker is done.
fn progress<T>(shared: &Shared<'_>, workers: &[thread::ScopedJoinHandle<'_, T>]) {
    let every = shared.plan.duration / shared.plan.buckets.max(1) as u32;
    let mut next = shared.start + every.max(Duration::from_millis(100));
    while !workers.iter().all(|w| w.is_finished()) {
        thread::sleep(Duration::from_millis(20));
        let now = Instant::now();
        if now >= next {
            next += every.max(Duration::from_millis(100));
            eprintln!(
                "soak: {:>5.1} s: {} sessions served, {} errors",
                (now - shared.start).as_secs_f64(),
                shared.served.load(Ordering::Relaxed),
                shared.errors.load(Ordering::Relaxed)
            );
        }
    }
}

/// A failed session.
#[derive(Debug)]
struct Fail {
    /// The error's kind, as counted.
    kind: &'static str,
    /// What happened, in words.
    what: String,
}

/// The kind of a refused connection: retried, and an error only if it
/// lasts.
const REFUSED: &str = "refused";

impl Fail {
    fn new(kind: &'static str, what: impl Into<String>) -> Fail {
        Fail {
            kind,
            what: what.into(),
        }
    }

    /// A reply that is not the one expected.
    fn reply(service: Service, expected: &str, got: &[u8]) -> Fail {
        let got = String::from_utf8_lossy(&got[..got.len().min(120)]).into_owned();
        Fail::new(
            "wrong reply",
            format!("{}: expected {expected:?}, got {got:?}", service.name()),
        )
    }

    /// A socket error, by kind.
    fn io(service: Service, doing: &str, e: io::Error) -> Fail {
        let kind = match e.kind() {
            ErrorKind::ConnectionRefused => REFUSED,
            ErrorKind::TimedOut | ErrorKind::WouldBlock => "timeout",
            ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted => "reset",
            ErrorKind::BrokenPipe | ErrorKind::UnexpectedEof => "closed early",
            _ => "socket error",
        };
        if kind == "timeout" {
            return Fail::new(
                kind,
                format!("{}: {doing}: nothing within {IO_WAIT:?}", service.name()),
            );
        }
        Fail::new(kind, format!("{}: {doing}: {e}", service.name()))
    }
}

type Outcome<T = ()> = Result<T, Fail>;

/// Names the step of a session that failed.
trait At<T> {
    fn at(self, step: &str) -> Outcome<T>;
}

impl<T> At<T> for Outcome<T> {
    fn at(self, step: &str) -> Outcome<T> {
        self.map_err(|mut f| {
            f.what = format!("{} (at {step})", f.what);
            f
        })
    }
}

/// A small, fast, seedable generator (SplitMix64): the session mix of a
/// seed is the same on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n`.
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let r = self.next().to_le_bytes();
            chunk.copy_from_slice(&r[..chunk.len()]);
        }
    }
}

/// How often each service comes up, out of the sum.
const MIX: [(Service, usize); 7] = [
    (Service::TcpEcho, 3),
    (Service::UdpEcho, 2),
    (Service::LoginScram, 1),
    (Service::LoginLine, 1),
    (Service::LoginDict, 1),
    (Service::Chat, 2),
    (Service::Hotline, 2),
];

/// One client thread.
struct Worker<'a> {
    shared: &'a Shared<'a>,
    rng: Rng,
    tally: Tally,
    /// Numbers every chat and hotline message, so each reply is unique.
    counter: u64,
}

impl<'a> Worker<'a> {
    fn new(shared: &'a Shared<'a>, index: usize) -> Worker<'a> {
        let plan = shared.plan;
        Worker {
            shared,
            rng: Rng(plan.seed ^ (index as u64 + 1).wrapping_mul(0xa076_1d64_78bd_642f)),
            tally: Tally::new(plan.duration, plan.buckets),
            counter: (index as u64) << 40,
        }
    }

    fn run(mut self) -> Tally {
        while Instant::now() < self.shared.deadline && !self.shared.stop.load(Ordering::Relaxed) {
            let service = self.pick();
            let began = Instant::now();
            loop {
                match self.session(service) {
                    Ok(()) => {
                        self.tally.served(service);
                        self.shared.served.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(f) if f.kind == REFUSED && began.elapsed() < REFUSED_RETRY => {
                        self.tally.refusals_retried += 1;
                        thread::sleep(Duration::from_millis(50));
                        continue;
                    }
                    Err(f) => {
                        self.tally.error(f.kind, f.what);
                        self.shared.errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
                break;
            }
        }
        self.tally
    }

    fn pick(&mut self) -> Service {
        let total: usize = MIX.iter().map(|(_, w)| w).sum();
        let mut r = self.rng.below(total);
        for (service, weight) in MIX {
            if r < weight {
                return service;
            }
            r -= weight;
        }
        unreachable!("the weights add up to the total")
    }

    fn session(&mut self, service: Service) -> Outcome {
        match service {
            Service::TcpEcho => self.tcp_echo(),
            Service::UdpEcho => self.udp_echo(),
            Service::LoginScram => self.login_scram(),
            Service::LoginLine => self.login_line(),
            Service::LoginDict => self.login_dict(),
            Service::Chat => self.chat(),
            Service::Hotline => self.hotline(),
        }
    }

    fn addr(&self, port: u16) -> SocketAddr {
        SocketAddr::new(self.shared.plan.ip, port)
    }

    /// Times `f` as one exchange of `service`.
    fn timed<T>(
        &mut self,
        service: Service,
        f: impl FnOnce(&mut Self) -> Outcome<T>,
    ) -> Outcome<T> {
        let t0 = Instant::now();
        let out = f(self)?;
        let took = t0.elapsed();
        self.tally.exchange(service, t0 - self.shared.start, took);
        Ok(out)
    }

    /// Whether this login may use a wrong password: half the time, when
    /// the ration allows.
    fn bad_login_allowed(&mut self) -> bool {
        if self.rng.below(2) == 0 {
            return false;
        }
        let mut last = self
            .shared
            .last_bad_login
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        if last.is_some_and(|t| now - t < BAD_LOGIN_EVERY) {
            return false;
        }
        *last = Some(now);
        self.tally.bad_logins += 1;
        true
    }

    fn user(&mut self) -> (&'static str, &'static str) {
        USERS[self.rng.below(USERS.len())]
    }

    /// A chat or hotline message and the exact reply it must get: a topic
    /// (its canned answer), the tutorial's insult (rewritten to `**`, so
    /// the reply quotes the message) and a number unique to this message.
    fn message(&mut self) -> (String, String) {
        self.counter += 1;
        let topic = TOPICS[self.rng.below(TOPICS.len())];
        let text = format!("{topic} sb #{}", self.counter);
        let answer = AutoResponder::new()
            .lookup(&text)
            .unwrap_or("Noted. Type help for topics.");
        let reply = format!("{answer} You said: {topic} ** #{}", self.counter);
        (text, reply)
    }

    // ------------------------------------------------------------ sessions

    /// TCP echo: 2 to 6 KiB, one KiB at a time, each checked; then a
    /// half-close, and the server must close too.
    fn tcp_echo(&mut self) -> Outcome {
        const S: Service = Service::TcpEcho;
        let port = self.shared.plan.ports.tcp_echo[self.rng.below(2)];
        let mut c = Tcp::connect(S, self.addr(port))?;
        let chunks = 2 + self.rng.below(5);
        let mut data = [0u8; ECHO_CHUNK];
        for _ in 0..chunks {
            self.rng.fill(&mut data);
            let back = self.timed(S, |_| {
                c.send(&data)?;
                c.read_exact(ECHO_CHUNK)
            })?;
            if back != data {
                return Err(Fail::new(
                    "wrong reply",
                    "tcp echo: the echoed bytes differ from those sent",
                ));
            }
        }
        c.finish()
    }

    /// UDP echo: 1 to 4 datagrams of 16 B to 1 KiB, each echoed exactly.
    fn udp_echo(&mut self) -> Outcome {
        const S: Service = Service::UdpEcho;
        let port = self.shared.plan.ports.udp_echo[self.rng.below(2)];
        let sock = Udp::connect(S, self.addr(port))?;
        for _ in 0..1 + self.rng.below(4) {
            let mut msg = vec![0u8; 16 + self.rng.below(ECHO_CHUNK - 15)];
            self.rng.fill(&mut msg);
            // A number in front, so a late echo of another datagram is
            // told apart.
            self.counter += 1;
            msg[..8].copy_from_slice(&self.counter.to_le_bytes());
            self.timed(S, |w| w.ask(&sock, &msg, |r| r == msg))?;
        }
        Ok(())
    }

    /// Login, challenge-response: the proof for a demo user, the server's
    /// signature checked, then `QUIT`.
    fn login_scram(&mut self) -> Outcome {
        const S: Service = Service::LoginScram;
        let (user, password) = self.user();
        let mut c = Tcp::connect(S, self.addr(self.shared.plan.ports.login))?;
        let exchange = scram::Exchange::new(user)
            .map_err(|e| Fail::new("client error", format!("{}: {e}", S.name())))?;
        let challenge = self
            .timed(S, |_| {
                c.send(exchange.first_line().as_bytes())?;
                c.read_line()
            })
            .at("AUTH")?;
        locked_out(S, &challenge)?;
        if !challenge.starts_with("CHALLENGE ") {
            return Err(Fail::reply(S, "CHALLENGE …", challenge.as_bytes()));
        }
        let answer = exchange
            .answer(&challenge, password)
            .map_err(|e| Fail::new("wrong reply", format!("{}: {e}", S.name())))?;
        let verdict = self
            .timed(S, |_| {
                c.send(answer.proof_line.as_bytes())?;
                c.read_line()
            })
            .at("PROOF")?;
        locked_out(S, &verdict)?;
        let name = verdict
            .strip_prefix("OK ")
            .ok_or_else(|| Fail::new("login refused", format!("{}: {verdict:?}", S.name())))?;
        match answer.check_ok(name) {
            Ok(u) if u == user => {}
            Ok(u) => return Err(Fail::reply(S, user, u.as_bytes())),
            Err(e) => return Err(Fail::new("wrong reply", format!("{}: {e}", S.name()))),
        }
        c.quit().at("QUIT")
    }

    /// Login, `LOGIN user password` in clear: right, or (rationed) wrong.
    fn login_line(&mut self) -> Outcome {
        const S: Service = Service::LoginLine;
        let (user, password) = self.user();
        let bad = self.bad_login_allowed();
        let password = if bad { "wrong" } else { password };
        let mut c = Tcp::connect(S, self.addr(self.shared.plan.ports.login))?;
        let verdict = self
            .timed(S, |_| {
                c.send(format!("LOGIN {user} {password}\n").as_bytes())?;
                c.read_line()
            })
            .at(if bad {
                "LOGIN, wrong password"
            } else {
                "LOGIN"
            })?;
        locked_out(S, &verdict)?;
        let expected = if bad {
            LINE_FAILED.trim_end().to_owned()
        } else {
            format!("OK {user}")
        };
        if verdict != expected {
            let kind = if bad { "wrong reply" } else { "login refused" };
            return Err(Fail::new(kind, format!("{}: {verdict:?}", S.name())));
        }
        c.quit().at("QUIT")
    }

    /// Login, the tutorial's dict: right, or (rationed) wrong; the server
    /// answers and closes.
    fn login_dict(&mut self) -> Outcome {
        const S: Service = Service::LoginDict;
        let (user, password) = self.user();
        let bad = self.bad_login_allowed();
        let password = if bad { "wrong" } else { password };
        let mut c = Tcp::connect(S, self.addr(self.shared.plan.ports.login))?;
        let verdict = self
            .timed(S, |_| {
                c.send(format!("{{'{user}': '{password}'}}").as_bytes())?;
                c.read_to_end()
            })
            .at(if bad {
                "the dict, wrong password"
            } else {
                "the dict"
            })?;
        if verdict == DICT_LOCKED.as_bytes() {
            return Err(Fail::new("locked out", "login dict: locked out"));
        }
        let expected = if bad { DICT_FAILED } else { DICT_OK };
        if verdict != expected.as_bytes() {
            let kind = if bad || verdict != DICT_FAILED.as_bytes() {
                "wrong reply"
            } else {
                "login refused"
            };
            let mut f = Fail::reply(S, expected, &verdict);
            f.kind = kind;
            return Err(f);
        }
        Ok(())
    }

    /// The TCP chat: the greeting, 1 to 3 messages, `byebye`, the close.
    fn chat(&mut self) -> Outcome {
        const S: Service = Service::Chat;
        let addr = self.addr(self.shared.plan.ports.chat);
        let mut c = self
            .timed(S, |_| {
                let mut c = Tcp::connect(S, addr)?;
                c.read_line()?;
                Ok(c)
            })
            .at("the greeting")?;
        for _ in 0..1 + self.rng.below(3) {
            let (text, expected) = self.message();
            let reply = self
                .timed(S, |_| {
                    c.send(format!("{text}\n").as_bytes())?;
                    c.read_line()
                })
                .at("a message")?;
            if reply != expected {
                return Err(Fail::reply(S, &expected, reply.as_bytes()));
            }
        }
        let bye = self
            .timed(S, |_| {
                c.send(format!("{BYEBYE}\n").as_bytes())?;
                c.read_line()
            })
            .at("byebye")?;
        if bye != BYEBYE {
            return Err(Fail::reply(S, BYEBYE, bye.as_bytes()));
        }
        c.expect_close().at("the close after byebye")
    }

    /// The UDP hotline: 1 to 3 messages, then `byebye`.
    fn hotline(&mut self) -> Outcome {
        const S: Service = Service::Hotline;
        let sock = Udp::connect(S, self.addr(self.shared.plan.ports.hotline))?;
        for _ in 0..1 + self.rng.below(3) {
            let (text, expected) = self.message();
            let reply = self.timed(S, |w| {
                w.ask(&sock, text.as_bytes(), |r| {
                    r == expected.as_bytes() || r.starts_with(b"busy:")
                })
            })?;
            if reply.starts_with(b"busy:") {
                // Every line taken: like a refused connection. The next
                // try is a new caller on a new port.
                return Err(Fail::new(REFUSED, "hotline: busy"));
            }
        }
        self.timed(S, |w| {
            w.ask(&sock, BYEBYE.as_bytes(), |r| r == BYEBYE.as_bytes())
        })?;
        Ok(())
    }

    /// Sends `msg` and waits for the reply that `fits`, sending again up to
    /// [`UDP_TRIES`] times. Other datagrams (late replies to earlier tries)
    /// are skipped.
    fn ask(&mut self, sock: &Udp, msg: &[u8], fits: impl Fn(&[u8]) -> bool) -> Outcome<Vec<u8>> {
        let mut buf = vec![0u8; 2048];
        for attempt in 0..UDP_TRIES {
            if attempt > 0 {
                self.tally.udp_resends += 1;
            }
            sock.send(msg)?;
            let until = Instant::now() + UDP_WAIT;
            while let Some(left) = until.checked_duration_since(Instant::now()) {
                match sock.recv(&mut buf, left)? {
                    Some(n) if fits(&buf[..n]) => return Ok(buf[..n].to_vec()),
                    Some(_) => continue,
                    None => break,
                }
            }
        }
        Err(Fail::new(
            "udp no reply",
            format!(
                "{}: no reply in {UDP_TRIES} tries of {UDP_WAIT:?}",
                sock.service.name()
            ),
        ))
    }
}

/// A lockout reply is an error: the soak rations its wrong passwords.
fn locked_out(service: Service, line: &str) -> Outcome {
    if line.starts_with("ERR locked out") {
        return Err(Fail::new(
            "locked out",
            format!("{}: {line:?}", service.name()),
        ));
    }
    Ok(())
}

/// One TCP connection, with its reads buffered and every wait bounded.
struct Tcp {
    service: Service,
    stream: TcpStream,
    /// Received and not yet consumed.
    pending: Vec<u8>,
    /// Whether the server has sent anything yet. A close before its first
    /// byte is a refusal: through QEMU's user networking, a connection the
    /// guest refuses is accepted on the host and then closed.
    heard: bool,
}

impl Tcp {
    fn connect(service: Service, addr: SocketAddr) -> Outcome<Tcp> {
        let stream = TcpStream::connect_timeout(&addr, CONNECT_WAIT)
            .map_err(|e| Fail::io(service, &format!("connect to {addr}"), e))?;
        let setup = |s: &TcpStream| -> io::Result<()> {
            s.set_read_timeout(Some(IO_WAIT))?;
            s.set_write_timeout(Some(IO_WAIT))?;
            s.set_nodelay(true)
        };
        setup(&stream).map_err(|e| Fail::io(service, "socket options", e))?;
        Ok(Tcp {
            service,
            stream,
            pending: Vec::new(),
            heard: false,
        })
    }

    fn send(&mut self, data: &[u8]) -> Outcome {
        self.stream
            .write_all(data)
            .map_err(|e| self.lost(e, "send"))
    }

    /// Reads more into `pending`; `Ok(false)` at the server's close.
    fn fill(&mut self) -> Outcome<bool> {
        let mut buf = [0u8; 4096];
        loop {
            match self.stream.read(&mut buf) {
                Ok(0) => return Ok(false),
                Ok(n) => {
                    self.heard = true;
                    self.pending.extend_from_slice(&buf[..n]);
                    return Ok(true);
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(self.lost(e, "receive")),
            }
        }
    }

    /// An error while sending or receiving; a reset or close before the
    /// server said anything is a refusal.
    fn lost(&self, e: io::Error, doing: &str) -> Fail {
        let early = matches!(
            e.kind(),
            ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted | ErrorKind::BrokenPipe
        );
        if early && !self.heard {
            return Fail::new(
                REFUSED,
                format!("{}: reset before any reply", self.service.name()),
            );
        }
        Fail::io(self.service, doing, e)
    }

    fn closed(&self, what: &str) -> Fail {
        if self.heard {
            Fail::new(
                "closed early",
                format!("{}: the server closed {what}", self.service.name()),
            )
        } else {
            Fail::new(
                REFUSED,
                format!("{}: closed before any reply", self.service.name()),
            )
        }
    }

    fn read_exact(&mut self, n: usize) -> Outcome<Vec<u8>> {
        while self.pending.len() < n {
            if !self.fill()? {
                return Err(self.closed(&format!("after {} of {n} bytes", self.pending.len())));
            }
        }
        Ok(self.pending.drain(..n).collect())
    }

    /// One line, without its LF (or CRLF).
    fn read_line(&mut self) -> Outcome<String> {
        loop {
            if let Some(i) = self.pending.iter().position(|&b| b == b'\n') {
                let mut line: Vec<u8> = self.pending.drain(..=i).collect();
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                return String::from_utf8(line)
                    .map_err(|e| Fail::reply(self.service, "a UTF-8 line", e.as_bytes()));
            }
            if self.pending.len() > MAX_LINE {
                return Err(Fail::reply(self.service, "a line", &self.pending));
            }
            if !self.fill()? {
                return Err(self.closed("in the middle of a reply"));
            }
        }
    }

    /// Everything until the server closes.
    fn read_to_end(&mut self) -> Outcome<Vec<u8>> {
        while self.fill()? {
            if self.pending.len() > MAX_LINE {
                return Err(Fail::reply(self.service, "a short reply", &self.pending));
            }
        }
        if !self.heard {
            return Err(self.closed("without a reply"));
        }
        Ok(std::mem::take(&mut self.pending))
    }

    /// The server must close now, with nothing more to say.
    fn expect_close(&mut self) -> Outcome {
        let _ = self.stream.shutdown(Shutdown::Write);
        while self.fill()? {}
        if !self.pending.is_empty() {
            return Err(Fail::reply(self.service, "the close", &self.pending));
        }
        Ok(())
    }

    /// Ends a login line session: `QUIT` → `OK bye` and the close.
    fn quit(mut self) -> Outcome {
        self.send(b"QUIT\n")?;
        let bye = self.read_line()?;
        if bye != "OK bye" {
            return Err(Fail::reply(self.service, "OK bye", bye.as_bytes()));
        }
        self.expect_close()
    }

    /// Ends an echo session: our half-close, then the server's.
    fn finish(mut self) -> Outcome {
        self.expect_close()
    }
}

/// A connected UDP socket: it hears only the server, and an ICMP "port
/// unreachable" comes back as an error instead of as silence.
struct Udp {
    service: Service,
    socket: UdpSocket,
}

impl Udp {
    fn connect(service: Service, addr: SocketAddr) -> Outcome<Udp> {
        let any: IpAddr = if addr.is_ipv4() {
            Ipv4Addr::UNSPECIFIED.into()
        } else {
            Ipv6Addr::UNSPECIFIED.into()
        };
        let socket = UdpSocket::bind((any, 0))
            .and_then(|s| s.connect(addr).map(|()| s))
            .map_err(|e| Fail::io(service, &format!("UDP socket for {addr}"), e))?;
        Ok(Udp { service, socket })
    }

    fn send(&self, msg: &[u8]) -> Outcome {
        self.socket
            .send(msg)
            .map(|_| ())
            .map_err(|e| self.unreachable(e, "send"))
    }

    /// One datagram, or `None` when `wait` passes first.
    fn recv(&self, buf: &mut [u8], wait: Duration) -> Outcome<Option<usize>> {
        let wait = wait.max(Duration::from_millis(1));
        self.socket
            .set_read_timeout(Some(wait))
            .map_err(|e| Fail::io(self.service, "socket options", e))?;
        match self.socket.recv(buf) {
            Ok(n) => Ok(Some(n)),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => Ok(None),
            Err(e) if e.kind() == ErrorKind::Interrupted => Ok(None),
            Err(e) => Err(self.unreachable(e, "receive")),
        }
    }

    /// A refused UDP port is not a full pool: nothing listens there.
    fn unreachable(&self, e: io::Error, doing: &str) -> Fail {
        if e.kind() == ErrorKind::ConnectionRefused {
            return Fail::new(
                "udp unreachable",
                format!("{}: {doing}: port unreachable", self.service.name()),
            );
        }
        Fail::io(self.service, doing, e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mix_is_seeded() {
        let mut a = Rng(7);
        let mut b = Rng(7);
        let xs: Vec<u64> = (0..5).map(|_| a.next()).collect();
        let ys: Vec<u64> = (0..5).map(|_| b.next()).collect();
        assert_eq!(xs, ys);
        assert_ne!(Rng(8).next(), xs[0]);
    }

    #[test]
    fn messages_expect_the_canned_answer_and_the_rewritten_quote() {
        let plan = Plan {
            ip: Ipv4Addr::LOCALHOST.into(),
            ports: Ports::TUTORIAL,
            clients: 1,
            duration: Duration::from_secs(1),
            seed: 1,
            buckets: 1,
        };
        let stop = AtomicBool::new(false);
        let shared = Shared {
            plan: &plan,
            start: Instant::now(),
            deadline: Instant::now(),
            stop: &stop,
            served: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            last_bad_login: Mutex::new(None),
        };
        let mut w = Worker::new(&shared, 0);
        for _ in 0..20 {
            let (text, reply) = w.message();
            let n = w.counter;
            assert!(text.ends_with(&format!(" sb #{n}")), "{text}");
            assert!(
                reply.ends_with(&format!(
                    " You said: {} #{n}",
                    text.replace("sb", "**").trim_end_matches(&format!(" #{n}"))
                )),
                "{reply}"
            );
        }
        // The ration: one wrong password, then none until BAD_LOGIN_EVERY.
        let granted = (0..50).filter(|_| w.bad_login_allowed()).count();
        assert_eq!(granted, 1);
    }
}
