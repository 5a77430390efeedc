//! Hostile clients against `host-sim serve` on a TAP device, each test in a
//! private network namespace of its own (see `common`): no packet leaves it.
//!
//! In every test an attacker (threads, or `common/hostile_frames.py`,
//! bounded in count and time) runs while a well-behaved client repeats
//! ordinary exchanges and times each one. Every good exchange must succeed,
//! with p99 under [`P99`] and the slowest under [`MAX`]; each test prints
//! its figures (`cargo test --test hostile -- --nocapture`).
//!
//! | attack | asserted |
//! |---|---|
//! | connection flood on three ports | each keeps exactly its pool; a new client is refused (RST) at once, and no RST is lost; other ports unaffected; a freed socket serves the next client at once |
//! | slowloris, a byte now and then | the same, for as long as it lasts: per-port pools confine it |
//! | RST storm: connect + `SO_LINGER 0`, and forged resets | an established connection on the stormed port survives; afterwards every socket of every pool is free again |
//! | hotline flood from 3 000 source ports | a caller with a session keeps its replies; new callers get `busy:` while the table is full; `byebye` churns it |
//! | truncated, oversized, nonsense and bad-checksum frames | no reply to a bad checksum, a reply to the good one; `serve` alive |
//! | messages of exactly 256 bytes and 257 | the documented replies, and the session goes on |
//! | invalid UTF-8, NUL, code in the dict form | `请求格式错误!`, `ERR invalid UTF-8`, `error: invalid UTF-8`; nothing evaluated |
//! | brute force from one address | exactly 5 verdicts, even with 6 guesses under way at once, then `ERR locked out`; another address logs in |
//!
//! What the device cannot promise, and so is not asserted:
//! - a service whose whole pool is held (flood, slowloris) refuses new
//!   clients until a socket frees: a client that sends a byte before the
//!   300 s idle timeout keeps its socket. Pools are per port, so the other
//!   services are unaffected.
//! - a UDP datagram may be dropped under a flood (a poll reads up to 256
//!   frames before the services run, and a UDP socket queues 16), so the
//!   well-behaved UDP clients resend after [`UDP_RESEND`], as UDP clients do.
//! - the device learns a new client address by ARP, and smoltcp 0.14 asks
//!   for one unknown address per second in all (smoltcp#1209): clients on
//!   several new addresses at once, or forged sources, can delay first replies
//!   by up to a second each. The tests introduce their client addresses
//!   first ([`Device::add_client_addresses`]).
//!
//! The tests take a file-wide lock: on a 2-CPU machine two attacks at once
//! would measure each other, not the device.

mod common;

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4, TcpStream, UdpSocket};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::socket::{
    AddressFamily, SockFlag, SockType, SockaddrIn, bind, connect, setsockopt, socket, sockopt,
};
use nix::sys::time::TimeVal;

use common::netns::wait_until;
use common::{DEVICE, Device, IO_WAIT, addr, can_run, text};

/// The slowest a good exchange's 99th percentile may be. `serve` wakes on
/// every frame and handles up to 4 × 256 frames per poll, so a good
/// client's frame waits behind at most one poll's worth of attack; these
/// exchanges take about a millisecond unloaded (debug build).
const P99: Duration = Duration::from_millis(250);

/// The slowest any good exchange may be. Below Linux's 1 s initial SYN
/// retransmission timeout: a good client's SYN must never be lost.
const MAX: Duration = Duration::from_millis(500);

/// A login is slower: PBKDF2 (4096 iterations) runs in slices shared by
/// every login in progress, and a debug build hashes slowly. Under the
/// brute force, up to a pool's worth of the attacker's checks may be ahead.
const LOGIN_MAX: Duration = Duration::from_secs(3);

/// Fewest good rounds that must overlap each attack.
const MIN_ROUNDS: usize = 20;

/// Bound on a test's attack phase: the attackers stop by themselves well
/// before; this only stops the good client from looping forever.
const ATTACK_LIMIT: Duration = Duration::from_secs(30);

/// A well-behaved UDP client's wait before it sends again.
const UDP_RESEND: Duration = Duration::from_millis(100);

/// `serve`'s default pool: sockets per TCP port.
const POOL: usize = 8;

/// Free hotline lines (`HOTLINE_SESSIONS`).
const HOTLINE_LINES: usize = smoltalk::config::HOTLINE_SESSIONS;

/// The namespace's own address on tap0, `serve`'s default host side.
const HOST: Ipv4Addr = Ipv4Addr::new(192, 168, 69, 100);

fn client(n: u8) -> Ipv4Addr {
    Ipv4Addr::new(192, 168, 69, n)
}

/// One hostile test at a time (see the module comment).
fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

// ---------------------------------------------------------------------
// Sockets

/// Connects to the device's `port` from the local address `src`, within
/// 2 s, with [`IO_WAIT`] timeouts on reads and writes.
fn connect_from(src: Ipv4Addr, port: u16) -> io::Result<TcpStream> {
    let fd = socket(
        AddressFamily::Inet,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    // On Linux the send timeout bounds `connect` too.
    setsockopt(&fd, sockopt::SendTimeout, &TimeVal::new(2, 0))?;
    bind(fd.as_raw_fd(), &SockaddrIn::from(SocketAddrV4::new(src, 0)))?;
    connect(
        fd.as_raw_fd(),
        &SockaddrIn::from(SocketAddrV4::new(DEVICE, port)),
    )?;
    let s = TcpStream::from(fd);
    s.set_read_timeout(Some(IO_WAIT))?;
    s.set_write_timeout(Some(IO_WAIT))?;
    s.set_nodelay(true)?;
    Ok(s)
}

/// Makes `close` send a RST instead of a FIN.
fn linger_zero(s: &TcpStream) {
    let abort = nix::libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    setsockopt(s, sockopt::Linger, &abort).expect("SO_LINGER");
}

/// Reads one line, LF included.
fn read_line(s: &mut TcpStream) -> io::Result<String> {
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    while line.len() < 4096 {
        match s.read(&mut b)? {
            0 => break,
            _ => line.push(b[0]),
        }
        if b[0] == b'\n' {
            break;
        }
    }
    Ok(text(&line))
}

/// Reads until the server closes.
fn read_to_close(s: &mut TcpStream) -> io::Result<String> {
    let mut all = Vec::new();
    s.read_to_end(&mut all)?;
    Ok(text(&all))
}

/// Reads exactly `n` bytes.
fn read_n(s: &mut TcpStream, n: usize) -> io::Result<String> {
    let mut buf = vec![0; n];
    s.read_exact(&mut buf)?;
    Ok(text(&buf))
}

/// A UDP socket on `src` (port 0: any), connected to the device's `port`.
fn udp_from(src: Ipv4Addr, src_port: u16, port: u16) -> io::Result<UdpSocket> {
    let s = UdpSocket::bind((src, src_port))?;
    s.connect(addr(port))?;
    Ok(s)
}

/// Sends `msg` until a reply that `wanted` accepts arrives, resending
/// after [`UDP_RESEND`]; gives up after twice [`MAX`]. Returns the reply
/// and the number of resends.
fn udp_ask(
    s: &UdpSocket,
    msg: &[u8],
    wanted: impl Fn(&str) -> bool,
) -> Result<(String, u32), String> {
    let start = Instant::now();
    let mut buf = [0u8; 2048];
    let mut resends = 0;
    while start.elapsed() < MAX * 2 {
        s.send(msg).map_err(|e| format!("send: {e}"))?;
        let sent = Instant::now();
        while sent.elapsed() < UDP_RESEND {
            s.set_read_timeout(Some(UDP_RESEND.saturating_sub(sent.elapsed()).max(ms(1))))
                .map_err(|e| e.to_string())?;
            match s.recv(&mut buf) {
                Ok(n) if wanted(&text(&buf[..n])) => return Ok((text(&buf[..n]), resends)),
                // A late answer to an earlier message: skip it.
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => return Err(format!("recv: {e}")),
            }
        }
        resends += 1;
    }
    Err(format!(
        "no reply to {:?} after {resends} resends",
        text(msg)
    ))
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

// ---------------------------------------------------------------------
// Measuring

/// Latencies of one kind of exchange.
#[derive(Default)]
struct Samples {
    took: Vec<Duration>,
    failures: Vec<String>,
    /// UDP messages sent again.
    resends: u32,
    /// Connections refused (only [`Exchange::Answered`] accepts that).
    refused: u32,
}

/// How an exchange went, besides its time.
#[derive(Default)]
struct Done {
    /// UDP messages sent again.
    resends: u32,
    /// The connection was refused.
    refused: bool,
}

impl Done {
    fn resent(resends: u32) -> Done {
        Done {
            resends,
            refused: false,
        }
    }
}

impl Samples {
    /// The `q`-quantile, nearest rank.
    fn quantile(&self, q: f64) -> Duration {
        let mut v = self.took.clone();
        v.sort();
        let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len().max(1));
        v.get(rank - 1).copied().unwrap_or_default()
    }

    fn summary(&self) -> String {
        let mut resends = String::new();
        if self.resends > 0 {
            resends = format!(", {} UDP resends", self.resends);
        }
        if self.refused > 0 {
            resends = format!(", {} of them refused", self.refused);
        }
        format!(
            "{:4} ok, p50 {:>9.3?}  p99 {:>9.3?}  max {:>9.3?}{resends}",
            self.took.len(),
            self.quantile(0.5),
            self.quantile(0.99),
            self.quantile(1.0),
        )
    }
}

/// What the well-behaved client does each round.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Exchange {
    /// A round trip on an echo connection to this port, open throughout.
    EchoRtt(u16),
    /// A new connection to TCP echo on this port: one round trip, close.
    EchoConnect(u16),
    /// A new chat session: greeting, a message and its reply, `byebye`.
    Chat,
    /// A hotline message and its reply, on a session opened beforehand.
    Hotline,
    /// One datagram to UDP echo on 9000.
    UdpEcho,
    /// `LOGIN 张三 123`, and the tutorial's dict for 王八, each on a new
    /// connection.
    Login,
    /// A new client of a flooded port: served (see [`served`]), or
    /// refused; promptly either way.
    Answered(u16),
}

/// The well-behaved client: repeats its exchanges and times each.
struct Good {
    src: Ipv4Addr,
    plan: Vec<Exchange>,
    echo: BTreeMap<u16, TcpStream>,
    hotline: UdpSocket,
    udp: UdpSocket,
    round: u64,
    /// Rounds started while the attack still ran.
    during: usize,
    samples: BTreeMap<Exchange, Samples>,
}

impl Good {
    /// Opens what the plan keeps open (echo connections, a hotline
    /// session), from `src`.
    fn new(src: Ipv4Addr, plan: &[Exchange]) -> Good {
        let mut echo = BTreeMap::new();
        for e in plan {
            if let Exchange::EchoRtt(port) = *e {
                echo.insert(port, connect_from(src, port).expect("good echo connection"));
            }
        }
        let hotline = udp_from(src, 0, 8086).expect("hotline socket");
        if plan.contains(&Exchange::Hotline) {
            udp_ask(&hotline, b"hours", |r| r.contains("24/7")).expect("hotline session");
        }
        Good {
            src,
            plan: plan.to_vec(),
            echo,
            hotline,
            udp: udp_from(src, 0, 9000).expect("UDP echo socket"),
            round: 0,
            during: 0,
            samples: BTreeMap::new(),
        }
    }

    /// One of each exchange of the plan.
    fn round(&mut self) {
        self.round += 1;
        for e in self.plan.clone() {
            let start = Instant::now();
            let result = self.exchange(e);
            let took = start.elapsed();
            let s = self.samples.entry(e).or_default();
            match result {
                Ok(done) => {
                    s.took.push(took);
                    s.resends += done.resends;
                    s.refused += done.refused as u32;
                }
                Err(why) => s
                    .failures
                    .push(format!("round {}, after {took:?}: {why}", self.round)),
            }
        }
    }

    /// Runs one exchange.
    fn exchange(&mut self, e: Exchange) -> Result<Done, String> {
        let n = self.round;
        let err = |what: &str, e: io::Error| format!("{what}: {e}");
        match e {
            Exchange::EchoRtt(port) => {
                let s = self.echo.get_mut(&port).ok_or("no echo connection")?;
                let msg = format!("rtt {n:>10}\n");
                s.write_all(msg.as_bytes()).map_err(|e| err("send", e))?;
                let back = read_n(s, msg.len()).map_err(|e| err("echo", e))?;
                expect(back == msg, || format!("echoed {back:?} for {msg:?}"))?;
                Ok(Done::default())
            }
            Exchange::EchoConnect(port) => {
                let mut s = connect_from(self.src, port).map_err(|e| err("connect", e))?;
                let msg = format!("new {n}");
                s.write_all(msg.as_bytes()).map_err(|e| err("send", e))?;
                let back = read_n(&mut s, msg.len()).map_err(|e| err("echo", e))?;
                expect(back == msg, || format!("echoed {back:?} for {msg:?}"))?;
                Ok(Done::default())
            }
            Exchange::Chat => {
                let mut s = connect_from(self.src, 8081).map_err(|e| err("connect", e))?;
                let greeting = read_line(&mut s).map_err(|e| err("greeting", e))?;
                expect(greeting.starts_with("Welcome"), || {
                    format!("greeting {greeting:?}")
                })?;
                let msg = format!("price sb {n}\n");
                s.write_all(msg.as_bytes()).map_err(|e| err("send", e))?;
                let reply = read_line(&mut s).map_err(|e| err("reply", e))?;
                let quote = format!("You said: price ** {n}\n");
                expect(reply.ends_with(&quote), || format!("reply {reply:?}"))?;
                s.write_all(b"byebye\n").map_err(|e| err("send", e))?;
                let bye = read_to_close(&mut s).map_err(|e| err("byebye", e))?;
                expect(bye == "byebye\n", || format!("bye {bye:?}"))?;
                Ok(Done::default())
            }
            Exchange::Hotline => {
                let msg = format!("price sb {n}");
                let quote = format!("You said: price ** {n}");
                let (_, resends) = udp_ask(&self.hotline, msg.as_bytes(), |r| r.ends_with(&quote))?;
                Ok(Done::resent(resends))
            }
            Exchange::UdpEcho => {
                let msg = format!("udp {n}");
                let (_, resends) = udp_ask(&self.udp, msg.as_bytes(), |r| r == msg)?;
                Ok(Done::resent(resends))
            }
            Exchange::Login => {
                let mut s = connect_from(self.src, 8083).map_err(|e| err("connect", e))?;
                s.write_all("LOGIN 张三 123\nQUIT\n".as_bytes())
                    .map_err(|e| err("send", e))?;
                let verdict = read_to_close(&mut s).map_err(|e| err("verdict", e))?;
                expect(verdict == "OK 张三\nOK bye\n", || {
                    format!("LOGIN: {verdict:?}")
                })?;
                drop(s);
                let mut s = connect_from(self.src, 8083).map_err(|e| err("connect", e))?;
                s.write_all("{'王八': '567'}".as_bytes())
                    .map_err(|e| err("send", e))?;
                let verdict = read_to_close(&mut s).map_err(|e| err("verdict", e))?;
                expect(verdict == "登录成功!", || format!("dict: {verdict:?}"))?;
                Ok(Done::default())
            }
            Exchange::Answered(port) => match served(self.src, port) {
                Ok(()) => Ok(Done::default()),
                Err(Refusal::Refused) => Ok(Done {
                    resends: 0,
                    refused: true,
                }),
                Err(Refusal::Other(why)) => Err(why),
            },
        }
    }

    /// How many of the `e` exchanges were refused, of how many.
    fn refused(&self, e: Exchange) -> (u32, usize) {
        self.samples
            .get(&e)
            .map_or((0, 0), |s| (s.refused, s.took.len()))
    }

    /// Prints the figures and asserts every exchange succeeded in time.
    fn assert_served(&self, attack: &str) {
        eprintln!(
            "{attack}: {} good rounds, {} during the attack",
            self.round, self.during
        );
        for (e, s) in &self.samples {
            eprintln!("    {:<18} {}", format!("{e:?}"), s.summary());
        }
        // A login round takes a hundred milliseconds or more (PBKDF2).
        let min = if self.plan.contains(&Exchange::Login) {
            MIN_ROUNDS / 2
        } else {
            MIN_ROUNDS
        };
        assert!(
            self.during >= min,
            "{attack}: only {} good rounds overlapped the attack",
            self.during
        );
        for (e, s) in &self.samples {
            assert!(
                s.failures.is_empty(),
                "{attack}: {e:?} failed {} times, first: {}",
                s.failures.len(),
                s.failures[0]
            );
            let (p99, max) = match e {
                Exchange::Login => (LOGIN_MAX, LOGIN_MAX),
                _ => (P99, MAX),
            };
            assert!(
                s.quantile(0.99) <= p99 && s.quantile(1.0) <= max,
                "{attack}: {e:?} too slow: {}",
                s.summary()
            );
        }
    }
}

fn expect(ok: bool, why: impl FnOnce() -> String) -> Result<(), String> {
    if ok { Ok(()) } else { Err(why()) }
}

/// Runs `attack` on its own thread while `good` repeats its rounds on this
/// one, until the attack is over and at least [`MIN_ROUNDS`] rounds ran.
/// A panic in the attack (a failed assertion there) is passed on.
fn under_attack<A: Send>(good: &mut Good, attack: impl FnOnce() -> A + Send) -> A {
    thread::scope(|scope| {
        let attacker = scope.spawn(attack);
        let start = Instant::now();
        let mut rounds = 0;
        while (!attacker.is_finished() || rounds < MIN_ROUNDS) && start.elapsed() < ATTACK_LIMIT {
            let during = !attacker.is_finished();
            good.round();
            good.during += during as usize;
            rounds += 1;
            thread::sleep(ms(5));
        }
        match attacker.join() {
            Ok(a) => a,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}

/// Runs `hostile_frames.py ARGS…` inside; returns its `key=value` lines.
fn frames_script(dev: &Device, args: &[&str]) -> BTreeMap<String, u64> {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/common/hostile_frames.py");
    let script = script.to_string_lossy().into_owned();
    let mut all = vec![script.as_str()];
    all.extend_from_slice(args);
    let out = dev.run("python3", &all, b"");
    assert!(
        out.status.success(),
        "hostile_frames.py {args:?} failed: {}",
        text(&out.stderr)
    );
    text(&out.stdout)
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once('=')?;
            Some((k.to_owned(), v.trim().parse().ok()?))
        })
        .collect()
}

/// Why a new client was not served.
#[derive(Debug)]
enum Refusal {
    /// Refused at once, with a RST.
    Refused,
    /// Anything else: a timeout, a wrong answer.
    Other(String),
}

/// A new client on `port` gets served: echo, the chat's greeting, or a
/// login `HELP`. The connection is then closed.
fn served(src: Ipv4Addr, port: u16) -> Result<(), Refusal> {
    let mut s = match connect_from(src, port) {
        Ok(s) => s,
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => return Err(Refusal::Refused),
        Err(e) => return Err(Refusal::Other(format!("connect {port}: {e}"))),
    };
    let other = |e: io::Error| Refusal::Other(e.to_string());
    let ok = match port {
        8081 => read_line(&mut s).is_ok_and(|g| g.starts_with("Welcome")),
        8083 => {
            s.write_all(b"HELP\n").map_err(other)?;
            read_line(&mut s).is_ok_and(|r| r.starts_with("OK commands"))
        }
        _ => {
            s.write_all(b"ping").map_err(other)?;
            read_n(&mut s, 4).is_ok_and(|r| r == "ping")
        }
    };
    expect(ok, || format!("port {port}: no proper answer")).map_err(Refusal::Other)
}

/// How long until a new client on `port` is served, trying for up to 2 s.
fn time_to_serve(src: Ipv4Addr, port: u16) -> Duration {
    let start = Instant::now();
    match wait_until(Duration::from_secs(2), || served(src, port).ok()) {
        Some(()) => start.elapsed(),
        None => panic!(
            "port {port}: no new client served within 2 s: {:?}",
            served(src, port)
        ),
    }
}

/// Connection attempts to `port` while its pool is held: each must be
/// refused (RST), and at once. Returns the slowest refusal.
fn assert_refused(port: u16, attempts: usize) -> Duration {
    let mut slowest = Duration::ZERO;
    for _ in 0..attempts {
        let start = Instant::now();
        match connect_from(HOST, port) {
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {}
            Err(e) => panic!("port {port}: a client beyond the pool got {e}, not a refusal"),
            Ok(_) => panic!("port {port}: a client beyond the pool was accepted"),
        }
        slowest = slowest.max(start.elapsed());
    }
    assert!(
        slowest < ms(100),
        "port {port}: refused, but slowly: {slowest:?}"
    );
    slowest
}

// ---------------------------------------------------------------------
// The cases

/// Floods chat, login and echo 7 with connections well beyond their
/// pools, from four threads, for 2.5 s. The good client uses echo on
/// 8898, the hotline and UDP echo, and is also a new client of each
/// flooded port every round: served, or refused at once.
#[test]
fn connection_flood_beyond_the_pools() {
    let _serial = serial();
    if !can_run(false) {
        return;
    }
    let mut dev = Device::start(&[]);
    dev.add_client_addresses(&[101, 102, 103, 104]);
    let flooded = [8081, 8083, 7];
    let (held, refused, slowest, probes) = dev.inside(|| {
        let mut good = Good::new(
            HOST,
            &[
                Exchange::EchoRtt(8898),
                Exchange::EchoConnect(8898),
                Exchange::Hotline,
                Exchange::UdpEcho,
                Exchange::Answered(8081),
                Exchange::Answered(8083),
                Exchange::Answered(7),
            ],
        );
        let result = under_attack(&mut good, || {
            let deadline = Instant::now() + ms(2500);
            thread::scope(|scope| {
                let floods: Vec<_> = (0..4)
                    .map(|t| {
                        scope.spawn(move || {
                            let mut held: Vec<(u16, TcpStream)> = Vec::new();
                            let (mut refused, mut slowest) = (0, Duration::ZERO);
                            for i in 0..100_000 {
                                if Instant::now() >= deadline {
                                    break;
                                }
                                let port = flooded[(i + t) % flooded.len()];
                                let start = Instant::now();
                                match connect_from(client(101 + t as u8), port) {
                                    Ok(s) => held.push((port, s)),
                                    Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                                        refused += 1;
                                        slowest = slowest.max(start.elapsed());
                                    }
                                    Err(e) => panic!("flood on {port}: {e}, not a refusal"),
                                }
                            }
                            (held, refused, slowest)
                        })
                    })
                    .collect();
                let mut all = (Vec::new(), 0, Duration::ZERO);
                for f in floods {
                    let (held, refused, slowest) = f.join().expect("flood thread");
                    all.0.extend(held);
                    all.1 += refused;
                    all.2 = all.2.max(slowest);
                }
                all
            })
        });
        good.assert_served("connection flood");
        let probes = flooded.map(|port| good.refused(Exchange::Answered(port)));
        (result.0, result.1, result.2, probes)
    });
    dev.assert_alive("during the connection flood");
    eprintln!(
        "connection flood: {} connections held, {refused} refused, slowest refusal {slowest:?}",
        held.len()
    );
    for port in flooded {
        let n = held.iter().filter(|(p, _)| *p == port).count();
        assert_eq!(
            n, POOL,
            "port {port}: the flood holds {n} sockets, not the pool"
        );
    }
    assert!(refused > 1000, "only {refused} connections refused");
    // Not one RST lost: the client would have sent its SYN again after 1 s.
    assert!(slowest < MAX, "a refusal took {slowest:?}");
    for (port, (refused, tried)) in flooded.iter().zip(probes) {
        assert!(
            refused > 0,
            "port {port}: the good client was never refused: the flood did not fill the pool"
        );
        eprintln!(
            "    port {port}: {refused} of the good client's {tried} new connections refused"
        );
    }

    // As the flood's sockets free up, the service takes new clients at once.
    let mut held = held;
    dev.inside(|| {
        for port in flooded {
            assert_refused(port, 5);
            let i = held.iter().position(|(p, _)| *p == port).unwrap();
            drop(held.remove(i));
            let took = time_to_serve(HOST, port);
            eprintln!("    port {port}: a freed socket served a new client after {took:?}");
            assert!(
                took < MAX,
                "port {port}: {took:?} to serve after a socket freed"
            );
        }
    });
    drop(held);
    dev.assert_alive("after the connection flood");
}

/// Holds every socket of chat, login and echo 7 with connections that
/// send one byte every 200 ms, for 3 s. The good client is also a new
/// client of each of those ports every round, and must be refused at once.
#[test]
fn slowloris_is_confined_to_its_pools() {
    let _serial = serial();
    if !can_run(false) {
        return;
    }
    let mut dev = Device::start(&[]);
    dev.add_client_addresses(&[101]);
    let targets = [8081, 8083, 7];
    let (held, probes) = dev.inside(|| {
        let mut good = Good::new(
            HOST,
            &[
                Exchange::EchoRtt(8898),
                Exchange::EchoConnect(8898),
                Exchange::Hotline,
                Exchange::UdpEcho,
                Exchange::Answered(8081),
                Exchange::Answered(8083),
                Exchange::Answered(7),
            ],
        );
        let mut held = Vec::new();
        for port in targets {
            for _ in 0..POOL {
                let s = connect_from(client(101), port).expect("slowloris connection");
                s.set_nonblocking(true).unwrap();
                held.push((port, s));
            }
        }
        let held = under_attack(&mut good, move || {
            let start = Instant::now();
            let mut sink = [0u8; 4096];
            for _ in 0..15 {
                // A byte of what never becomes a whole request: no LF ever.
                for (_, s) in &mut held {
                    let _ = s.write(b"A");
                    while let Ok(1..) = s.read(&mut sink) {}
                }
                thread::sleep(ms(200));
            }
            eprintln!(
                "slowloris: {} sockets held for {:?}",
                held.len(),
                start.elapsed()
            );
            held
        });
        good.assert_served("slowloris");
        let probes = targets.map(|port| good.refused(Exchange::Answered(port)));
        (held, probes)
    });
    dev.assert_alive("during slowloris");
    for port in targets {
        assert_eq!(held.iter().filter(|(p, _)| *p == port).count(), POOL);
    }
    // The pools were held throughout: every new client was refused.
    for (port, (refused, tried)) in targets.iter().zip(probes) {
        assert_eq!(
            refused as usize, tried,
            "port {port}: a client got a socket slowloris held"
        );
    }
    drop(held);
    dev.inside(|| {
        for port in targets {
            let took = time_to_serve(HOST, port);
            eprintln!("    port {port}: served again {took:?} after slowloris left");
            assert!(
                took < MAX,
                "port {port}: {took:?} to serve after slowloris left"
            );
        }
    });
}

/// Four threads connect and reset (`SO_LINGER 0`) on echo 7, chat and
/// login for 2.5 s, while a script forges resets and SYN/RST pairs.
#[test]
fn rst_storm_leaks_no_socket() {
    let _serial = serial();
    if !can_run(true) {
        return;
    }
    let mut dev = Device::start(&[]);
    dev.add_client_addresses(&[101, 102, 103, 104]);
    let stormed = [7, 8081, 8083];
    let (cycles, forged) = dev.inside(|| {
        // The good client keeps one connection on a stormed port, too.
        let mut good = Good::new(
            HOST,
            &[
                Exchange::EchoRtt(7),
                Exchange::EchoRtt(8898),
                Exchange::EchoConnect(8898),
                Exchange::Hotline,
            ],
        );
        let result = under_attack(&mut good, || {
            let deadline = Instant::now() + ms(2500);
            thread::scope(|scope| {
                let forged = scope.spawn(|| frames_script(&dev, &["rst", "7", "2.5", "20000"]));
                let storms: Vec<_> = (0..4)
                    .map(|t| {
                        scope.spawn(move || {
                            let mut cycles = 0;
                            for i in 0..20_000usize {
                                if Instant::now() >= deadline {
                                    break;
                                }
                                let port = stormed[(i + t) % stormed.len()];
                                // Refused when the pool is momentarily full of
                                // connections being reset: that is fine.
                                if let Ok(mut s) = connect_from(client(101 + t as u8), port) {
                                    if i % 2 == 0 {
                                        let _ = s.write_all(b"x");
                                    }
                                    linger_zero(&s);
                                    cycles += 1;
                                }
                            }
                            cycles
                        })
                    })
                    .collect();
                let cycles: usize = storms.into_iter().map(|s| s.join().unwrap()).sum();
                (cycles, forged.join().unwrap())
            })
        });
        good.assert_served("RST storm");
        result
    });
    dev.assert_alive("during the RST storm");
    eprintln!(
        "RST storm: {cycles} connect+reset cycles, {} forged frames",
        forged["sent"]
    );
    assert!(cycles > 200, "only {cycles} connect+reset cycles");
    assert!(forged["sent"] > 1000, "{forged:?}");

    // Afterwards no socket is lost: each stormed port takes a whole pool
    // of clients at once, and serves each.
    dev.inside(|| {
        for port in stormed {
            let all = wait_until(Duration::from_secs(2), || {
                let v: Vec<_> = (0..POOL)
                    .map_while(|_| connect_from(HOST, port).ok())
                    .collect();
                (v.len() == POOL).then_some(v)
            });
            let all = all.unwrap_or_else(|| panic!("port {port}: a socket leaked in the storm"));
            for mut s in all {
                let ok = match port {
                    8081 => read_line(&mut s).is_ok_and(|g| g.starts_with("Welcome")),
                    8083 => {
                        s.write_all(b"HELP\n").unwrap();
                        read_line(&mut s).is_ok_and(|r| r.starts_with("OK commands"))
                    }
                    _ => {
                        s.write_all(b"after").unwrap();
                        read_n(&mut s, 5).is_ok_and(|r| r == "after")
                    }
                };
                assert!(ok, "port {port}: a client after the storm was not served");
            }
        }
    });
}

/// A hotline flood from 3 000 source ports (1 000 on each of three
/// addresses), in three waves; each wave's callers who got a line say
/// `byebye`, so the table churns.
#[test]
fn udp_flood_from_thousands_of_ports_churns_the_hotline() {
    let _serial = serial();
    if !can_run(false) {
        return;
    }
    let mut dev = Device::start(&[]);
    dev.add_client_addresses(&[101, 102, 103]);
    let waves = dev.inside(|| {
        let mut good = Good::new(
            HOST,
            &[
                Exchange::Hotline,
                Exchange::UdpEcho,
                Exchange::EchoRtt(8898),
            ],
        );
        let waves = under_attack(&mut good, || {
            (0..3u16)
                .map(|wave| {
                    let src = client(101 + wave as u8);
                    hotline_wave(src, 20_000 + wave * 1000, 1000)
                })
                .collect::<Vec<_>>()
        });
        good.assert_served("hotline flood");
        waves
    });
    dev.assert_alive("during the hotline flood");
    for (i, w) in waves.iter().enumerate() {
        eprintln!(
            "    wave {i}: {} ports, {} granted a line, {} told busy, {} unanswered (dropped), {} said byebye",
            w.ports, w.granted, w.busy, w.unanswered, w.byebye
        );
        // The good caller keeps one of the lines.
        assert_eq!(w.granted, HOTLINE_LINES - 1, "wave {i}: {w:?}");
        assert!(w.busy > 0 && w.probe_busy, "wave {i}: {w:?}");
        assert_eq!(w.byebye, w.granted, "wave {i}: {w:?}");
    }
}

#[derive(Debug, Default)]
struct Wave {
    ports: usize,
    granted: usize,
    busy: usize,
    unanswered: usize,
    byebye: usize,
    /// A new caller got `busy:` while the table was full.
    probe_busy: bool,
}

/// One wave of the hotline flood: `count` callers from `src`, ports
/// `first…`, in batches; each sends `hi` (twice if unanswered). Then a
/// new caller probes the full table, and the callers with a line hang up.
fn hotline_wave(src: Ipv4Addr, first: u16, count: u16) -> Wave {
    const BATCH: u16 = 250;
    let mut w = Wave::default();
    let mut lines = Vec::new();
    let mut buf = [0u8; 2048];
    for start in (0..count).step_by(BATCH as usize) {
        let socks: Vec<UdpSocket> = (start..(start + BATCH).min(count))
            .map(|i| {
                let s = udp_from(src, first + i, 8086).expect("flood socket");
                s.set_nonblocking(true).unwrap();
                s
            })
            .collect();
        w.ports += socks.len();
        let mut answer: Vec<Option<String>> = vec![None; socks.len()];
        for _try in 0..2 {
            for (s, a) in socks.iter().zip(&answer) {
                if a.is_none() {
                    let _ = s.send(b"hi");
                }
            }
            let until = Instant::now() + ms(150);
            while Instant::now() < until && answer.iter().any(Option::is_none) {
                for (s, a) in socks.iter().zip(&mut answer) {
                    if let Ok(n) = s.recv(&mut buf) {
                        *a = Some(text(&buf[..n]));
                    }
                }
                thread::sleep(ms(2));
            }
        }
        for (s, a) in socks.into_iter().zip(answer) {
            match a {
                Some(r) if r.starts_with("Hello!") => lines.push(s),
                Some(r) if r.starts_with("busy:") => w.busy += 1,
                Some(r) => panic!("hotline flood: unexpected reply {r:?}"),
                None => w.unanswered += 1,
            }
        }
    }
    w.granted = lines.len();
    // The table is full: a new caller is told so, at once.
    let probe = udp_from(src, first + count, 8086).expect("probe socket");
    w.probe_busy = udp_ask(&probe, b"hi", |r| r.starts_with("busy:")).is_ok();
    // Callers with a line hang up; the next wave takes their lines.
    for s in &lines {
        s.set_nonblocking(false).unwrap();
        w.byebye += udp_ask(s, b"byebye", |r| r == "byebye").is_ok() as usize;
    }
    w
}

/// Truncated, oversized and nonsense frames and bad checksums, written to
/// tap0 raw for up to 3 s; tap0's MTU is raised on the namespace's side so
/// that frames larger than the device's own 1514 bytes reach it.
#[test]
fn malformed_frames_and_bad_checksums_are_dropped() {
    let _serial = serial();
    if !can_run(true) {
        return;
    }
    let mut dev = Device::start(&[]);
    dev.ns
        .ip(&["link", "set", "dev", "tap0", "mtu", "9000"])
        .expect("raise tap0's MTU inside the namespace");
    let report = dev.inside(|| {
        let mut good = Good::new(
            HOST,
            &[
                Exchange::EchoRtt(8898),
                Exchange::EchoConnect(8898),
                Exchange::Chat,
                Exchange::Hotline,
                Exchange::UdpEcho,
            ],
        );
        let report = under_attack(&mut good, || {
            frames_script(&dev, &["malformed", "1", "3", "30000"])
        });
        good.assert_served("malformed frames");
        report
    });
    dev.assert_alive("after the malformed frames");
    eprintln!("malformed frames: {report:?}");
    assert!(report["sent"] > 5000, "{report:?}");
    assert_eq!(
        report["udp_bad_echoed"], 0,
        "a broken datagram was echoed: {report:?}"
    );
    assert_eq!(report["udp_good_echoed"], 1, "{report:?}");
    assert_eq!(
        report["tcp_bad_answered"], 0,
        "a SYN with a bad checksum was answered: {report:?}"
    );
    assert_eq!(report["tcp_good_answered"], 1, "{report:?}");
    assert!(!dev.serve.log().contains("panicked"), "{}", dev.serve.log());
}

/// Messages of exactly `MAX_MESSAGE` (256) bytes and of 257, in every
/// service that reads messages, in both chat framings and both login forms.
#[test]
fn messages_at_the_limit_and_one_byte_over() {
    let _serial = serial();
    if !can_run(false) {
        return;
    }
    const LIMIT: usize = smoltalk::config::MAX_MESSAGE;
    assert_eq!(LIMIT, 256, "the replies below spell the limit out");
    let pad = |s: &str, len: usize| format!("{s}{}", " ".repeat(len - s.len()));
    let dev = Device::start(&[]);
    dev.inside(|| {
        let mut good = Good::new(
            HOST,
            &[Exchange::EchoRtt(8898), Exchange::Chat, Exchange::Hotline],
        );
        under_attack(&mut good, || {
            for round in 0..5 {
                // Chat, line framing: 256 bytes quoted back whole (the
                // rewrite keeps the length); 257 refused, then resync.
                let mut c = connect_from(client(100), 8081).unwrap();
                read_line(&mut c).unwrap();
                let exact = "sb".repeat(LIMIT / 2);
                c.write_all(format!("{exact}\n").as_bytes()).unwrap();
                let reply = read_line(&mut c).unwrap();
                assert!(
                    reply.ends_with(&format!("You said: {}\n", "**".repeat(LIMIT / 2))),
                    "{reply:?}"
                );
                let wide = format!("{}a", "你".repeat(LIMIT / 3)); // 85 × 3 + 1 = 256 bytes
                assert_eq!(wide.len(), LIMIT);
                c.write_all(format!("{wide}\n").as_bytes()).unwrap();
                assert_eq!(read_line(&mut c).unwrap(), "Noted. Type help for topics.\n");
                for over in [format!("{exact}x"), format!("{wide}b")] {
                    assert_eq!(over.len(), LIMIT + 1);
                    c.write_all(format!("{over}\n").as_bytes()).unwrap();
                    assert_eq!(
                        read_line(&mut c).unwrap(),
                        "error: message too long (max 256 bytes)\n"
                    );
                }
                c.write_all(b"hi\n").unwrap();
                assert!(
                    read_line(&mut c).unwrap().starts_with("Hello!"),
                    "resynchronised"
                );
                // The tutorial's framing: no newline, the message ends when
                // the client is quiet.
                c.write_all(exact.as_bytes()).unwrap();
                let want = format!(
                    "Noted. Type help for topics. You said: {}",
                    "**".repeat(LIMIT / 2)
                );
                assert_eq!(read_n(&mut c, want.len()).unwrap(), want);
                c.write_all(format!("{exact}x").as_bytes()).unwrap();
                let want = "error: message too long (max 256 bytes)";
                assert_eq!(read_n(&mut c, want.len()).unwrap(), want);
                c.write_all(b"byebye").unwrap();
                assert_eq!(read_to_close(&mut c).unwrap(), "byebye");

                // Login, line form: 256 bytes parsed, 257 refused, resync.
                let mut l = connect_from(client(100), 8083).unwrap();
                l.write_all(format!("{}\n", pad("WHOAMI", LIMIT)).as_bytes())
                    .unwrap();
                assert_eq!(read_line(&mut l).unwrap(), "ERR not logged in\n");
                l.write_all(format!("{}\n", pad("WHOAMI", LIMIT + 1)).as_bytes())
                    .unwrap();
                assert_eq!(
                    read_line(&mut l).unwrap(),
                    "ERR message too long (max 256 bytes)\n"
                );
                let login = format!(
                    "LOGIN 张三 123{}",
                    " ".repeat(LIMIT - "LOGIN 张三 123".len())
                );
                assert_eq!(login.len(), LIMIT);
                l.write_all(format!("{login}\r\n").as_bytes()).unwrap();
                assert_eq!(read_line(&mut l).unwrap(), "OK 张三\n");
                // The tutorial's dict: 256 bytes is a login, 257 is not.
                let dict = |len: usize| {
                    let core = "{'张三':'123'}";
                    format!("{{'张三':{}'123'}}", " ".repeat(len - core.len()))
                };
                let mut d = connect_from(client(100), 8083).unwrap();
                d.write_all(dict(LIMIT).as_bytes()).unwrap();
                assert_eq!(read_to_close(&mut d).unwrap(), "登录成功!");
                let mut d = connect_from(client(100), 8083).unwrap();
                d.write_all(dict(LIMIT + 1).as_bytes()).unwrap();
                assert_eq!(read_to_close(&mut d).unwrap(), "请求过长!");

                // Hotline: one datagram, one message.
                let h = udp_from(client(100), 0, 8086).unwrap();
                let (r, _) = udp_ask(&h, exact.as_bytes(), |r| r.contains("You said")).unwrap();
                assert!(r.ends_with(&"**".repeat(LIMIT / 2)), "round {round}: {r:?}");
                let (r, _) = udp_ask(&h, format!("{exact}x").as_bytes(), |_| true).unwrap();
                assert_eq!(r, "error: message too long (max 256 bytes)");
                thread::sleep(ms(100));
            }
        });
        good.assert_served("messages at the limit");
    });
}

/// Invalid UTF-8, NUL bytes, and code in the tutorial's dict form: each a
/// clear error, nothing evaluated, and the services go on.
#[test]
fn invalid_utf8_nul_and_code_in_the_dict_are_rejected() {
    let _serial = serial();
    if !can_run(false) {
        return;
    }
    let marker = std::env::temp_dir().join(format!("smoltalk-hostile-{}", std::process::id()));
    let _ = std::fs::remove_file(&marker);
    let dev = Device::start(&[]);
    let code = format!(
        "{{'a': __import__('os').system('touch {}')}}",
        marker.display()
    );
    let malformed: Vec<Vec<u8>> = vec![
        code.clone().into_bytes(),
        b"{'\xe5\xbc\xa0\xe4\xb8\x89': '123'.__class__}".to_vec(),
        b"{'a': eval('1')}".to_vec(),
        b"{'a': exec('import os')}".to_vec(),
        b"{**globals()}".to_vec(),
        b"{'a': 'b', 'c': 'd'}".to_vec(),
        b"{'a': '1' + '23'}".to_vec(),
        b"{'a': f'{1}'}".to_vec(),
        b"{'a': b'123'}".to_vec(),
        b"{lambda: 0}".to_vec(),
        b"{'a': (yield)}".to_vec(),
        b"{'\xe5\xbc\xa0\x00\xe4\xb8\x89': '123'}".to_vec(), // a raw NUL
        b"{'\xff\xfe': '123'}".to_vec(),                     // not UTF-8
        b"{'\xc3\x28': '123'}".to_vec(),                     // a broken sequence
        b"{'\xed\xa0\x80': '123'}".to_vec(),                 // a UTF-16 surrogate
        b"{'a': '\\N{BULLET}'}".to_vec(),
        b"{'unterminated}\n".to_vec(),
    ];
    dev.inside(|| {
        let mut good = Good::new(
            HOST,
            &[Exchange::EchoRtt(8898), Exchange::Chat, Exchange::Hotline],
        );
        under_attack(&mut good, || {
            for round in 0..4 {
                for req in &malformed {
                    let mut d = connect_from(client(100), 8083).unwrap();
                    d.write_all(req).unwrap();
                    let verdict = read_to_close(&mut d).unwrap();
                    assert_eq!(verdict, "请求格式错误!", "round {round}: {:?}", text(req));
                }
                // Line form: an error line, and the session goes on.
                let mut l = connect_from(client(100), 8083).unwrap();
                for (line, want) in [
                    (&b"LOGIN \xff\xfe 123\n"[..], "ERR invalid UTF-8\n"),
                    (b"\xc0\xaf\n", "ERR invalid UTF-8\n"),
                    (b"HELP\x00\n", "ERR unknown command, try HELP\n"),
                    (b"\x00\x00\x00\n", "ERR unknown command, try HELP\n"),
                    (
                        b"__import__('os').system('id')\n",
                        "ERR unknown command, try HELP\n",
                    ),
                    (b"WHOAMI\n", "ERR not logged in\n"),
                ] {
                    l.write_all(line).unwrap();
                    assert_eq!(read_line(&mut l).unwrap(), want, "{:?}", text(line));
                }
                // Chat and hotline: an error reply, and the session goes on.
                let mut c = connect_from(client(100), 8081).unwrap();
                read_line(&mut c).unwrap();
                for (msg, want) in [
                    (&b"\xff\xfe\n"[..], "error: invalid UTF-8\n"),
                    (b"a\x00b\n", "Noted. Type help for topics.\n"),
                    (
                        b"__import__('os').system('id')\n",
                        "Noted. Type help for topics.\n",
                    ),
                    (b"hi\n", "Hello! How can I help? (type help for topics)\n"),
                ] {
                    c.write_all(msg).unwrap();
                    assert_eq!(read_line(&mut c).unwrap(), want, "{:?}", text(msg));
                }
                let h = udp_from(client(100), 0, 8086).unwrap();
                assert_eq!(
                    udp_ask(&h, b"\xff\xfe", |_| true).unwrap().0,
                    "error: invalid UTF-8"
                );
                assert!(
                    udp_ask(&h, b"\0\0", |_| true)
                        .unwrap()
                        .0
                        .starts_with("Noted.")
                );
                thread::sleep(ms(100));
            }
            // Code inside a string is a string: a user name that does not
            // exist (one failed login, well below the lockout).
            let mut d = connect_from(client(100), 8083).unwrap();
            d.write_all(b"{\"__import__('os').system('id')\": '123'}")
                .unwrap();
            assert_eq!(read_to_close(&mut d).unwrap(), "用户名或密码错误!");
        });
        good.assert_served("invalid input");
    });
    assert!(
        !marker.exists(),
        "the dict's code ran: {} exists",
        marker.display()
    );
}

/// Six connections from one address guess passwords at once (two sockets
/// of the pool stay for the good client): that address gets exactly five
/// verdicts, then `ERR locked out` (to `LOGIN`, `AUTH` and the dict),
/// while another address logs in throughout.
#[test]
fn brute_force_locks_out_one_address_and_not_another() {
    const GUESSERS: usize = POOL - 2;
    let _serial = serial();
    if !can_run(false) {
        return;
    }
    let attacker = client(101);
    let dev = Device::start(&[]);
    dev.add_client_addresses(&[101, 102]);
    let (verdicts, locked) = dev.inside(|| {
        let mut good = Good::new(client(102), &[Exchange::Login, Exchange::EchoRtt(8898)]);
        let result = under_attack(&mut good, || {
            let mut conns: Vec<TcpStream> = (0..GUESSERS)
                .map(|_| connect_from(attacker, 8083).unwrap())
                .collect();
            let (mut verdicts, mut locked) = (0, 0);
            // Guesses go on for 4 s, whatever the answers.
            let deadline = Instant::now() + ms(4000);
            for guess in 0..1000 {
                if Instant::now() >= deadline {
                    break;
                }
                if guess > 0 {
                    thread::sleep(ms(10));
                }
                // Every connection guesses at once; then each reads its answer.
                for (i, c) in conns.iter_mut().enumerate() {
                    c.write_all(format!("LOGIN 张三 guess{guess}-{i}\n").as_bytes())
                        .unwrap();
                }
                for c in &mut conns {
                    let reply = read_line(c).unwrap();
                    if reply == "ERR invalid user name or password\n" {
                        verdicts += 1;
                    } else if reply
                        .starts_with("ERR locked out: too many failed logins, try again in ")
                    {
                        locked += 1;
                    } else {
                        panic!("brute force: unexpected reply {reply:?}");
                    }
                }
            }
            // Locked out in every form, even with the right password.
            let c = &mut conns[0];
            c.write_all("LOGIN 张三 123\n".as_bytes()).unwrap();
            assert!(read_line(c).unwrap().starts_with("ERR locked out"));
            c.write_all("AUTH 张三 abcdefgh12345678\n".as_bytes())
                .unwrap();
            assert!(read_line(c).unwrap().starts_with("ERR locked out"));
            // The dict form closes its connection: make room for it first.
            drop(conns);
            let mut d = wait_until(Duration::from_secs(1), || connect_from(attacker, 8083).ok())
                .expect("a login socket freed");
            d.write_all("{'张三': '123'}".as_bytes()).unwrap();
            assert_eq!(
                read_to_close(&mut d).unwrap(),
                "登录失败次数过多,请稍后再试!"
            );
            thread::sleep(ms(500));
            (verdicts, locked)
        });
        good.assert_served("brute force");
        result
    });
    eprintln!("brute force: {verdicts} verdicts, {locked} refusals while locked out");
    assert_eq!(
        verdicts, 5,
        "the attacker learnt {verdicts} verdicts; the lockout allows 5"
    );
    assert!(locked >= 4 * GUESSERS - 5, "only {locked} refusals");
    // Challenge-response from a third address (the namespace's own) works.
    let out = dev.host_sim(&["login"], "张三\n123\n");
    assert_eq!(text(&out.stdout), "OK 张三\n", "{}", text(&out.stderr));
}
