//! How many sessions a device can take right now, measured from outside:
//! the leak check for a device that cannot be asked (the emulated board
//! logs its usage only once a minute; a device at an address, never).
//!
//! Each TCP port gets connections, all held open at once, until one is
//! refused; each must be served (echo echoes, login answers `HELP`, chat
//! greets). The hotline gets callers, each on its own UDP port, until one
//! is told the lines are busy; then each says `byebye`. Measured before
//! the churn and after it, the difference is what the churn left in use.
//!
//! Bounds: at most [`LIMIT`] connections or callers per service, every
//! wait a timeout.

use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, UdpSocket};
use std::thread;
use std::time::{Duration, Instant};

use smoltalk::chat::BYEBYE;
use smoltalk::config::Ports;

/// The most connections (or callers) tried per service: above `serve`'s
/// largest pool (63) and the hotline's 16 lines.
const LIMIT: usize = 64;

/// How long one connection may take to be served or refused.
const WAIT: Duration = Duration::from_secs(3);

/// How long a probe's own closes take to reach the device (through QEMU's
/// user networking, up to 500 ms).
const SETTLE: Duration = Duration::from_millis(700);

/// Sessions the device took, per service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capacity {
    /// TCP echo on its two ports, login, chat: connections served at once.
    pub tcp: [usize; 4],
    /// Hotline callers served at once.
    pub hotline: usize,
}

/// The TCP services in [`Capacity::tcp`] order.
pub const TCP_NAMES: [&str; 4] = ["tcp echo", "tcp echo 2", "login", "chat"];

impl Capacity {
    /// What `self` (measured first) has that `now` lacks, per service:
    /// sessions left in use.
    pub fn missing(&self, now: &Capacity) -> ([usize; 4], usize) {
        let mut tcp = [0; 4];
        for (i, t) in tcp.iter_mut().enumerate() {
            *t = self.tcp[i].saturating_sub(now.tcp[i]);
        }
        (tcp, self.hotline.saturating_sub(now.hotline))
    }
}

/// Measures every service's capacity at `ip`.
pub fn measure(ip: IpAddr, ports: &Ports) -> Result<Capacity, String> {
    let tcp_ports = [
        ports.tcp_echo[0],
        ports.tcp_echo[1],
        ports.login,
        ports.chat,
    ];
    let mut tcp = [0; 4];
    for (i, &port) in tcp_ports.iter().enumerate() {
        tcp[i] = tcp_capacity(SocketAddr::new(ip, port), i)
            .map_err(|e| format!("{} (port {port}): {e}", TCP_NAMES[i]))?;
    }
    let hotline = hotline_capacity(SocketAddr::new(ip, ports.hotline))
        .map_err(|e| format!("hotline (port {}): {e}", ports.hotline))?;
    thread::sleep(SETTLE);
    Ok(Capacity { tcp, hotline })
}

/// Measures until nothing is missing compared with `before`, or `within`
/// passes; returns the last measurement.
pub fn measure_until_back(
    ip: IpAddr,
    ports: &Ports,
    before: &Capacity,
    within: Duration,
) -> Result<Capacity, String> {
    let deadline = Instant::now() + within;
    loop {
        let now = measure(ip, ports)?;
        let (tcp, hotline) = before.missing(&now);
        if (tcp.iter().sum::<usize>() == 0 && hotline == 0) || Instant::now() >= deadline {
            return Ok(now);
        }
        thread::sleep(Duration::from_millis(500));
    }
}

/// Connections to `addr` served at once; `which` indexes [`TCP_NAMES`].
fn tcp_capacity(addr: SocketAddr, which: usize) -> Result<usize, String> {
    let mut held = Vec::new();
    while held.len() < LIMIT {
        match serve_one(addr, which)? {
            Some(stream) => held.push(stream),
            None => break,
        }
    }
    Ok(held.len())
}

/// One connection: `Some` if served, `None` if refused.
fn serve_one(addr: SocketAddr, which: usize) -> Result<Option<TcpStream>, String> {
    let mut s = match TcpStream::connect_timeout(&addr, WAIT) {
        Ok(s) => s,
        Err(e) if e.kind() == ErrorKind::ConnectionRefused => return Ok(None),
        Err(e) => return Err(format!("connect: {e}")),
    };
    let _ = s.set_read_timeout(Some(WAIT));
    let _ = s.set_write_timeout(Some(WAIT));
    let _ = s.set_nodelay(true);
    // What to send, and when what came back means "served".
    type Served = fn(&[u8]) -> bool;
    let (ask, served): (&[u8], Served) = match which {
        0 | 1 => (b"probe", |d| d.len() >= 5),
        2 => (b"HELP\n", |d| d.contains(&b'\n')),
        _ => (b"", |d| d.contains(&b'\n')),
    };
    if !ask.is_empty() && s.write_all(ask).is_err() {
        return Ok(None);
    }
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while !served(&got) {
        match s.read(&mut buf) {
            // Closed or reset before a reply: refused (through QEMU's user
            // networking a refused connection is first accepted).
            Ok(0) => return Ok(None),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::ConnectionReset | ErrorKind::BrokenPipe) => {
                return Ok(None);
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("neither served nor refused: {e}")),
        }
    }
    Ok(Some(s))
}

/// Hotline callers served at once, each then ended with `byebye`.
fn hotline_capacity(addr: SocketAddr) -> Result<usize, String> {
    let mut callers = Vec::new();
    let result = (|| {
        while callers.len() < LIMIT {
            let sock = caller(addr)?;
            let reply = ask(&sock, b"probe", |_| true)?;
            if reply.starts_with(b"busy:") {
                return Ok(());
            }
            callers.push(sock);
        }
        Ok(())
    })();
    for sock in &callers {
        ask(sock, BYEBYE.as_bytes(), |r| r == BYEBYE.as_bytes())?;
    }
    result.map(|()| callers.len())
}

fn caller(addr: SocketAddr) -> Result<UdpSocket, String> {
    let any: IpAddr = if addr.is_ipv4() {
        Ipv4Addr::UNSPECIFIED.into()
    } else {
        Ipv6Addr::UNSPECIFIED.into()
    };
    let sock = UdpSocket::bind((any, 0)).map_err(|e| format!("UDP socket: {e}"))?;
    sock.connect(addr)
        .map_err(|e| format!("UDP connect: {e}"))?;
    sock.set_read_timeout(Some(Duration::from_secs(1)))
        .map_err(|e| format!("UDP socket: {e}"))?;
    Ok(sock)
}

/// One datagram and the reply that `fits` (others are late replies to an
/// earlier try); sent up to three times (UDP may drop).
fn ask(sock: &UdpSocket, msg: &[u8], fits: fn(&[u8]) -> bool) -> Result<Vec<u8>, String> {
    let mut buf = [0u8; 2048];
    for _ in 0..3 {
        sock.send(msg).map_err(|e| format!("send: {e}"))?;
        // Bounded: a peer that keeps sending other datagrams is not waited for.
        for _ in 0..16 {
            match sock.recv(&mut buf) {
                Ok(n) if fits(&buf[..n]) => return Ok(buf[..n].to_vec()),
                Ok(_) => {}
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => break,
                Err(e) => return Err(format!("receive: {e}")),
            }
        }
    }
    Err("no reply in 3 tries".into())
}
