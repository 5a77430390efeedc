//! Blocking-looking client helpers: each steps the world until its
//! condition holds or a simulated timeout passes, so a test reads like a
//! client script (`connect`, `send`, `recv_line`, `wait_closed`…).

use smoltcp::socket::{tcp, udp};
use smoltcp::time::Duration;
use smoltcp::wire::IpEndpoint;

use super::{ClientId, Conn, SimError, UdpConn, World};
use crate::chat::Responder;
use crate::sim::hub::LATENCY;

impl<R: Responder> World<'_, R> {
    /// Opens a TCP connection from `client` to the device's `port`, and
    /// steps until the handshake is over (10 s of simulated time at most).
    pub fn connect(&mut self, client: ClientId, port: u16) -> Result<Conn, SimError> {
        let conn = self.open(client, port)?;
        self.run_until(Duration::from_secs(10), "the TCP handshake", |w| {
            w.state(conn) != tcp::State::SynSent
        })?;
        match self.state(conn) {
            tcp::State::Closed => Err(SimError::Refused),
            _ => Ok(conn),
        }
    }

    /// Queues all of `data` for sending, stepping while the send buffer is
    /// full. Received bytes are kept for the next `recv_*` call.
    pub fn send(&mut self, conn: Conn, data: &[u8]) -> Result<(), SimError> {
        let mut sent = 0;
        self.run_until(Duration::from_secs(60), "room in the send buffer", |w| {
            w.pull(conn);
            let s = w.tcp(conn);
            if !s.may_send() {
                return true;
            }
            sent += s.send_slice(&data[sent..]).unwrap_or(0);
            sent == data.len()
        })?;
        if sent < data.len() {
            Err(SimError::Closed(Vec::new()))
        } else {
            Ok(())
        }
    }

    /// Moves whatever the socket received into the inbox. Returns whether
    /// the peer has finished sending (FIN or reset).
    fn pull(&mut self, conn: Conn) -> bool {
        let c = self.client(conn.client);
        let s = c.sockets.get_mut::<tcp::Socket>(conn.handle);
        let inbox = c.inbox.entry(conn.handle).or_default();
        while s.can_recv() {
            let _ = s.recv(|b| {
                inbox.extend_from_slice(b);
                (b.len(), ())
            });
        }
        !s.may_recv()
    }

    fn take_inbox(&mut self, conn: Conn) -> Vec<u8> {
        self.clients[conn.client]
            .inbox
            .remove(&conn.handle)
            .unwrap_or_default()
    }

    fn inbox_len(&self, conn: Conn) -> usize {
        self.clients[conn.client]
            .inbox
            .get(&conn.handle)
            .map_or(0, Vec::len)
    }

    /// Everything received so far, without stepping.
    pub fn read_available(&mut self, conn: Conn) -> Vec<u8> {
        self.pull(conn);
        self.take_inbox(conn)
    }

    /// Receives until `done(bytes so far)` holds, and returns those bytes.
    pub fn recv_until(
        &mut self,
        conn: Conn,
        timeout: Duration,
        mut done: impl FnMut(&[u8]) -> bool,
    ) -> Result<Vec<u8>, SimError> {
        let mut closed = false;
        let r = self.run_until(timeout, "a reply", |w| {
            closed = w.pull(conn);
            closed
                || done(
                    w.clients[conn.client]
                        .inbox
                        .get(&conn.handle)
                        .map_or(&[][..], |v| v),
                )
        });
        let got = self.take_inbox(conn);
        r?;
        if done(&got) {
            Ok(got)
        } else if closed {
            Err(SimError::Closed(got))
        } else {
            Err(SimError::Timeout("a reply"))
        }
    }

    /// Receives one line (up to and including LF).
    pub fn recv_line(&mut self, conn: Conn) -> Result<String, SimError> {
        let got = self.recv_until(conn, Duration::from_secs(10), |b| b.contains(&b'\n'))?;
        Ok(String::from_utf8_lossy(&got).into_owned())
    }

    /// Receives for `quiet` of simulated time and returns everything that
    /// came, for clients that expect a reply without a terminator.
    pub fn recv_for(&mut self, conn: Conn, quiet: Duration) -> Vec<u8> {
        let end = self.now + quiet;
        let _ = self.run_until(quiet + LATENCY, "quiet", |w| {
            w.pull(conn);
            w.now >= end
        });
        self.take_inbox(conn)
    }

    /// Sends `data` and receives as many bytes back, concurrently, as an
    /// echo client must (a client that only writes would stall on flow
    /// control once the echo fills its receive window).
    pub fn echo_exchange(
        &mut self,
        conn: Conn,
        data: &[u8],
        timeout: Duration,
    ) -> Result<Vec<u8>, SimError> {
        let mut sent = 0;
        let r = self.run_until(timeout, "the echo", |w| {
            let closed = w.pull(conn);
            let s = w.tcp(conn);
            if sent < data.len() && s.can_send() {
                sent += s.send_slice(&data[sent..]).unwrap_or(0);
            }
            closed || w.inbox_len(conn) >= data.len()
        });
        let got = self.take_inbox(conn);
        r?;
        if got.len() >= data.len() {
            Ok(got)
        } else {
            Err(SimError::Closed(got))
        }
    }

    /// Waits until the device closes the connection (FIN) and returns what
    /// arrived before it.
    pub fn wait_closed(&mut self, conn: Conn, timeout: Duration) -> Result<Vec<u8>, SimError> {
        let r = self.run_until(timeout, "the server to close", |w| w.pull(conn));
        let got = self.take_inbox(conn);
        r.map(|()| got)
    }

    /// Resets the connection (RST), like a client process that crashed.
    pub fn abort(&mut self, conn: Conn) {
        self.tcp(conn).abort();
        self.step();
    }

    /// Opens a UDP socket on `client`.
    pub fn udp_bind(&mut self, client: ClientId) -> UdpConn {
        let c = self.client(client.0);
        let buffer =
            || udp::PacketBuffer::new(vec![udp::PacketMetadata::EMPTY; 16], vec![0; 16 * 1536]);
        let mut socket = udp::Socket::new(buffer(), buffer());
        let _ = socket.bind(c.take_port());
        UdpConn {
            client: client.0,
            handle: c.sockets.add(socket),
        }
    }

    /// Sends one datagram to the device's `port`.
    pub fn udp_send(&mut self, u: UdpConn, port: u16, data: &[u8]) -> Result<(), SimError> {
        self.udp(u)
            .send_slice(data, IpEndpoint::new(Self::SERVER_IP.into(), port))
            .map_err(|_| SimError::Closed(Vec::new()))
    }

    /// Receives one datagram.
    pub fn udp_recv(&mut self, u: UdpConn, timeout: Duration) -> Result<Vec<u8>, SimError> {
        let mut got = None;
        self.run_until(timeout, "a datagram", |w| {
            got = w.udp_try_recv(u);
            got.is_some()
        })?;
        got.ok_or(SimError::Timeout("a datagram"))
    }
}
