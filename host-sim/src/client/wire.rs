//! Talking to a TCP service: connect, send, read a reply. Every wait is
//! bounded in time and every read in size, and every error names the
//! address and the likely cause, because "os error 111" helps nobody set up
//! a TAP device.

use std::error::Error;
use std::io::{self, BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// How long a connection attempt may take. The device answers a SYN at
/// once; a silent address is a missing device or route.
const CONNECT_WAIT: Duration = Duration::from_secs(3);

/// The longest reply accepted. The services' replies are a few hundred
/// bytes; a bound keeps a misbehaving peer from filling memory.
const MAX_REPLY: u64 = 64 * 1024;

/// One TCP connection to a service.
pub struct Conn {
    /// For error messages.
    addr: SocketAddr,
    /// The read timeout, for error messages.
    wait: Duration,
    /// Buffered for reading lines; writes go to the stream underneath.
    reader: BufReader<TcpStream>,
}

impl Conn {
    /// Connects to `addr`; each later read waits at most `wait`.
    pub fn open(addr: SocketAddr, wait: Duration) -> Result<Conn, Box<dyn Error>> {
        let stream =
            TcpStream::connect_timeout(&addr, CONNECT_WAIT).map_err(|e| explain(addr, e))?;
        stream.set_read_timeout(Some(wait))?;
        stream.set_write_timeout(Some(wait))?;
        // One small message at a time, each waiting for its answer: Nagle
        // would only add delay.
        stream.set_nodelay(true)?;
        Ok(Conn {
            addr,
            wait,
            reader: BufReader::new(stream),
        })
    }

    /// Sends all of `data`.
    pub fn send(&mut self, data: &[u8]) -> Result<(), Box<dyn Error>> {
        self.reader
            .get_mut()
            .write_all(data)
            .map_err(|e| self.fail(e))
    }

    /// Reads exactly `n` bytes.
    pub fn recv_exact(&mut self, n: usize) -> Result<Vec<u8>, Box<dyn Error>> {
        let mut buf = vec![0; n];
        let mut got = 0;
        while got < n {
            match self.reader.read(&mut buf[got..]) {
                Ok(0) => {
                    return Err(format!(
                        "{}: the server closed the connection after {got} of {n} bytes",
                        self.addr
                    )
                    .into());
                }
                Ok(k) => got += k,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(self.fail(e)),
            }
        }
        Ok(buf)
    }

    /// Reads one line and returns it without its terminator, or `None` if
    /// the server closed the connection first. A last line without a
    /// terminator counts as a line.
    pub fn recv_line(&mut self) -> Result<Option<String>, Box<dyn Error>> {
        let mut line = Vec::new();
        let n = (&mut self.reader)
            .take(MAX_REPLY)
            .read_until(b'\n', &mut line)
            .map_err(|e| self.fail(e))?;
        if n == 0 {
            return Ok(None);
        }
        if !line.ends_with(b"\n") && n as u64 == MAX_REPLY {
            return Err(format!("{}: reply longer than {MAX_REPLY} bytes", self.addr).into());
        }
        Ok(Some(
            String::from_utf8_lossy(super::input::trim_newline(&line)).into_owned(),
        ))
    }

    /// Reads until the server closes the connection: the tutorial's login
    /// verdict has no terminator, and the close is what ends it. If the
    /// server goes quiet without closing, what arrived so far is the reply.
    pub fn recv_until_close(&mut self) -> Result<String, Box<dyn Error>> {
        let mut reply = Vec::new();
        match (&mut self.reader).take(MAX_REPLY).read_to_end(&mut reply) {
            Ok(_) => {}
            Err(e) if is_timeout(&e) && !reply.is_empty() => {}
            Err(e) => return Err(self.fail(e)),
        }
        Ok(String::from_utf8_lossy(&reply).into_owned())
    }

    fn fail(&self, e: io::Error) -> Box<dyn Error> {
        if is_timeout(&e) {
            format!("{}: no reply within {} s", self.addr, self.wait.as_secs()).into()
        } else {
            explain(self.addr, e)
        }
    }
}

/// A read timeout shows up as either kind, depending on the platform.
fn is_timeout(e: &io::Error) -> bool {
    matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}

/// Turns a socket error into a message that says what to check.
pub fn explain(addr: SocketAddr, e: io::Error) -> Box<dyn Error> {
    let hint = match e.kind() {
        ErrorKind::ConnectionRefused => {
            "connection refused: nothing listens on that port, or every \
                                         socket of the service is busy (is `host-sim serve` running?)"
        }
        ErrorKind::TimedOut | ErrorKind::WouldBlock => {
            "no answer: is the device up? \
                                                        (`host-sim serve --tap tap0`, then ping it)"
        }
        ErrorKind::HostUnreachable | ErrorKind::NetworkUnreachable => {
            "unreachable: no route to the \
                                                                       device (is the TAP interface up, \
                                                                       with 192.168.69.100/24?)"
        }
        ErrorKind::ConnectionReset => "the server reset the connection",
        ErrorKind::BrokenPipe => "the server closed the connection",
        _ => return format!("{addr}: {e}").into(),
    };
    format!("{addr}: {hint}").into()
}

/// Like [`explain`], for a UDP reply that did not come.
pub fn explain_udp(addr: SocketAddr, wait: Duration, e: io::Error) -> Box<dyn Error> {
    if is_timeout(&e) {
        format!(
            "{addr}: no reply within {} s (UDP cannot tell a missing device from a \
             lost datagram: is `host-sim serve` running?)",
            wait.as_secs()
        )
        .into()
    } else if e.kind() == ErrorKind::ConnectionRefused {
        format!("{addr}: port unreachable: nothing listens on that UDP port").into()
    } else {
        explain(addr, e)
    }
}
