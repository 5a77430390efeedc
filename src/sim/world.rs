//! The device node and its clients on one virtual switch, with a clock.
//!
//! A [`World`] owns simulated time. Tests and the demo drive it with
//! blocking-looking helpers (`connect`, `send`, `recv_until`, `udp_recv`…)
//! that step the world until their condition holds or a *simulated*
//! timeout passes, so a test reads like a client script and never sleeps.

use std::collections::HashMap;

use smoltcp::iface::{Config as IfaceConfig, Interface, SocketHandle, SocketSet};
use smoltcp::socket::{tcp, udp};
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{
    EthernetAddress, HardwareAddress, IpAddress, IpCidr, IpEndpoint, Ipv4Address, Ipv4Cidr,
};

use crate::chat::{AutoResponder, Responder};
use crate::config::Config;
use crate::login::Store;
use crate::net::{HostMemory, NetConfig, Node, SetupError};
use crate::sim::hub::{Hub, Port};

/// Socket buffer size of client sockets.
const CLIENT_BUFFER: usize = 64 * 1024;
/// Time advanced per step while frames are in flight: the link delay.
const LINK_DELAY: Duration = Duration::from_micros(50);
/// Longest jump of the clock when nothing is scheduled.
const MAX_JUMP: Duration = Duration::from_millis(100);

/// A client node, by index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientId(usize);

/// A client's TCP connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conn {
    client: usize,
    handle: SocketHandle,
}

/// A client's UDP socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpConn {
    client: usize,
    handle: SocketHandle,
}

/// Why a simulated client operation failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SimError {
    /// The condition did not hold within the (simulated) time limit.
    Timeout(&'static str),
    /// The server refused the connection (RST to our SYN).
    Refused,
    /// The connection is closed or was reset; what was received is kept.
    Closed(Vec<u8>),
}

impl std::fmt::Display for SimError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SimError::Timeout(what) => write!(f, "timed out waiting for {what}"),
            SimError::Refused => f.write_str("connection refused"),
            SimError::Closed(got) => write!(f, "connection closed after {} bytes", got.len()),
        }
    }
}

impl std::error::Error for SimError {}

struct Client {
    iface: Interface,
    sockets: SocketSet<'static>,
    port: Port,
    next_port: u16,
    /// Bytes received but not yet returned by a `recv_*` helper.
    inbox: HashMap<SocketHandle, Vec<u8>>,
}

/// The simulated network: one device node running every service, and
/// client nodes.
pub struct World<'a, R: Responder = AutoResponder> {
    hub: Hub,
    now: Instant,
    server: Node<'a, R>,
    server_port: Port,
    config: Config,
    store: &'a Store<'a>,
    net: NetConfig,
    clients: Vec<Client>,
    seed: u64,
}

impl<'a> World<'a, AutoResponder> {
    /// A world whose device runs `config` with the demo users and the
    /// auto-responder.
    pub fn new(config: &Config, memory: &'a mut HostMemory, seed: u64) -> Result<Self, SetupError> {
        World::with(
            config,
            memory,
            &crate::login::store::DEMO,
            AutoResponder::new(),
            seed,
        )
    }
}

impl<'a, R: Responder> World<'a, R> {
    /// The device's address.
    pub const SERVER_IP: Ipv4Address = Ipv4Address::new(192, 168, 69, 1);

    /// A world with a chosen credential store and responder.
    pub fn with(
        config: &Config,
        memory: &'a mut HostMemory,
        store: &'a Store<'a>,
        responder: R,
        seed: u64,
    ) -> Result<Self, SetupError> {
        let hub = Hub::new(seed);
        let mut server_port = hub.add_port();
        let net = NetConfig {
            mac: EthernetAddress([0x02, 0, 0, 0, 0, 0x01]),
            ip: Ipv4Cidr::new(Self::SERVER_IP, 24),
            gateway: None,
            random_seed: seed,
        };
        let server = Node::new(
            config,
            &net,
            &mut server_port,
            memory.memory(),
            store,
            responder,
            Instant::ZERO,
        )?;
        Ok(World {
            hub,
            now: Instant::ZERO,
            server,
            server_port,
            config: *config,
            store,
            net,
            clients: Vec::new(),
            seed,
        })
    }

    /// Replaces the device with a freshly booted one on the same address and
    /// ports, as when the simulator restarts. Clients' connections to the
    /// old device are gone (their next segment is answered with a RST).
    pub fn restart_server(
        &mut self,
        memory: &'a mut HostMemory,
        responder: R,
    ) -> Result<(), SetupError> {
        self.net.random_seed = self.net.random_seed.wrapping_add(1);
        self.server = Node::new(
            &self.config,
            &self.net,
            &mut self.server_port,
            memory.memory(),
            self.store,
            responder,
            self.now,
        )?;
        Ok(())
    }

    /// The switch: faults, capture, counters.
    pub fn hub(&self) -> &Hub {
        &self.hub
    }

    /// Simulated time.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// The device node.
    pub fn server(&mut self) -> &mut Node<'a, R> {
        &mut self.server
    }

    /// Adds a client node at 192.168.69.(100 + n).
    ///
    /// # Panics
    /// With more than 150 clients: the /24 is full. This is test scaffolding,
    /// never fed from the network.
    pub fn add_client(&mut self) -> ClientId {
        let n = self.clients.len();
        assert!(n < 150, "the simulated /24 holds 150 clients");
        let mut port = self.hub.add_port();
        let mac = EthernetAddress([0x02, 0, 0, 0, 1, n as u8]);
        let mut cfg = IfaceConfig::new(HardwareAddress::Ethernet(mac));
        cfg.random_seed = self.seed.wrapping_add(1000 + n as u64);
        let mut iface = Interface::new(cfg, &mut port, self.now);
        iface.update_ip_addrs(|a| {
            let _ = a.push(IpCidr::new(IpAddress::v4(192, 168, 69, 100 + n as u8), 24));
        });
        self.clients.push(Client {
            iface,
            sockets: SocketSet::new(Vec::new()),
            port,
            next_port: 49152,
            inbox: HashMap::new(),
        });
        ClientId(n)
    }

    /// Polls every node once, then advances the clock: by the link delay
    /// while frames are in flight, else to the next deadline any node has.
    pub fn step(&mut self) {
        self.hub.set_now(self.now);
        self.server.poll(self.now, &mut self.server_port);
        for c in &mut self.clients {
            c.iface.poll(self.now, &mut c.port, &mut c.sockets);
        }
        let advance = if self.hub.pending() {
            LINK_DELAY
        } else {
            let mut next = self.server.poll_delay(self.now).unwrap_or(MAX_JUMP);
            for c in &mut self.clients {
                if let Some(d) = c.iface.poll_delay(self.now, &c.sockets) {
                    next = next.min(d);
                }
            }
            next.clamp(LINK_DELAY, MAX_JUMP)
        };
        self.now += advance;
    }

    /// Lets `d` of simulated time pass.
    pub fn run_for(&mut self, d: Duration) {
        let end = self.now + d;
        while self.now < end {
            self.step();
        }
    }

    /// Steps until `cond` holds, or fails after `timeout` of simulated time.
    pub fn run_until(
        &mut self,
        timeout: Duration,
        what: &'static str,
        mut cond: impl FnMut(&mut Self) -> bool,
    ) -> Result<(), SimError> {
        let end = self.now + timeout;
        loop {
            if cond(self) {
                return Ok(());
            }
            if self.now >= end {
                return Err(SimError::Timeout(what));
            }
            self.step();
        }
    }

    fn tcp(&mut self, conn: Conn) -> &mut tcp::Socket<'static> {
        self.clients[conn.client]
            .sockets
            .get_mut::<tcp::Socket>(conn.handle)
    }

    /// Opens a TCP connection from `client` to the device's `port`.
    pub fn connect(&mut self, client: ClientId, port: u16) -> Result<Conn, SimError> {
        let c = &mut self.clients[client.0];
        let mut socket = tcp::Socket::new(
            tcp::SocketBuffer::new(vec![0; CLIENT_BUFFER]),
            tcp::SocketBuffer::new(vec![0; CLIENT_BUFFER]),
        );
        let local = c.next_port;
        c.next_port = if local == u16::MAX { 49152 } else { local + 1 };
        socket
            .connect(
                c.iface.context(),
                IpEndpoint::new(Self::SERVER_IP.into(), port),
                local,
            )
            .map_err(|_| SimError::Refused)?;
        let conn = Conn {
            client: client.0,
            handle: c.sockets.add(socket),
        };
        self.run_until(Duration::from_secs(10), "the TCP handshake", |w| {
            let s = w.tcp(conn);
            s.state() != tcp::State::SynSent
        })?;
        match self.tcp(conn).state() {
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
        let c = &mut self.clients[conn.client];
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

    /// Queues as much of `data` as the send buffer takes right now, without
    /// stepping. Returns how many bytes were queued.
    pub fn write_some(&mut self, conn: Conn, data: &[u8]) -> usize {
        self.tcp(conn).send_slice(data).unwrap_or(0)
    }

    /// Everything received so far, without stepping.
    pub fn read_available(&mut self, conn: Conn) -> Vec<u8> {
        self.pull(conn);
        self.clients[conn.client]
            .inbox
            .remove(&conn.handle)
            .unwrap_or_default()
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
        let got = self.clients[conn.client]
            .inbox
            .remove(&conn.handle)
            .unwrap_or_default();
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
        let _ = self.run_until(quiet + LINK_DELAY, "quiet", |w| {
            w.pull(conn);
            w.now >= end
        });
        self.clients[conn.client]
            .inbox
            .remove(&conn.handle)
            .unwrap_or_default()
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
            closed
                || w.clients[conn.client]
                    .inbox
                    .get(&conn.handle)
                    .map_or(0, Vec::len)
                    >= data.len()
        });
        let got = self.clients[conn.client]
            .inbox
            .remove(&conn.handle)
            .unwrap_or_default();
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
        let got = self.clients[conn.client]
            .inbox
            .remove(&conn.handle)
            .unwrap_or_default();
        r.map(|()| got)
    }

    /// Closes our sending half (FIN).
    pub fn close(&mut self, conn: Conn) {
        self.tcp(conn).close();
    }

    /// Resets the connection (RST), like a client process that crashed.
    pub fn abort(&mut self, conn: Conn) {
        self.tcp(conn).abort();
        self.step();
    }

    /// The connection's TCP state, client side.
    pub fn state(&mut self, conn: Conn) -> tcp::State {
        self.tcp(conn).state()
    }

    /// Opens a UDP socket on `client`.
    pub fn udp_bind(&mut self, client: ClientId) -> UdpConn {
        let c = &mut self.clients[client.0];
        let buffer =
            || udp::PacketBuffer::new(vec![udp::PacketMetadata::EMPTY; 16], vec![0; 16 * 1536]);
        let mut socket = udp::Socket::new(buffer(), buffer());
        let local = c.next_port;
        c.next_port += 1;
        let _ = socket.bind(local);
        UdpConn {
            client: client.0,
            handle: c.sockets.add(socket),
        }
    }

    /// Sends one datagram to the device's `port`.
    pub fn udp_send(&mut self, u: UdpConn, port: u16, data: &[u8]) -> Result<(), SimError> {
        let s = self.clients[u.client]
            .sockets
            .get_mut::<udp::Socket>(u.handle);
        s.send_slice(data, IpEndpoint::new(Self::SERVER_IP.into(), port))
            .map_err(|_| SimError::Closed(Vec::new()))
    }

    /// Receives one datagram.
    pub fn udp_recv(&mut self, u: UdpConn, timeout: Duration) -> Result<Vec<u8>, SimError> {
        let mut got = None;
        self.run_until(timeout, "a datagram", |w| {
            let s = w.clients[u.client].sockets.get_mut::<udp::Socket>(u.handle);
            if let Ok((data, _)) = s.recv() {
                got = Some(data.to_vec());
            }
            got.is_some()
        })?;
        got.ok_or(SimError::Timeout("a datagram"))
    }
}
