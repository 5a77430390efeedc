//! The device node and its clients on one virtual switch, with a clock.
//!
//! A [`World`] owns simulated time. Nothing sleeps and no thread runs: each
//! [`World::step`] polls the nodes that have something to do — a frame
//! waiting, a timer due, a socket their owner touched — and then jumps the
//! clock straight to the next event: the next frame due out of the
//! [`Hub`], or the earliest deadline any node asked for. A second of quiet
//! costs one step, not a thousand.
//!
//! Two ways to drive it:
//! - the blocking-looking helpers of `blocking` (`connect`, `send`,
//!   `recv_until`, `udp_recv`…), which step the world until their condition
//!   holds or a *simulated* timeout passes, so a test reads like a client
//!   script;
//! - the non-blocking socket calls of `sockets` (`open`, `write_some`,
//!   `drain`, `udp_try_recv`…), for many clients driven at once as state
//!   machines (the simulator in [`crate::sim::scenario`]).

mod blocking;
mod sockets;

use std::collections::HashMap;

use smoltcp::iface::{Config as IfaceConfig, Interface, SocketHandle, SocketSet};
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{EthernetAddress, HardwareAddress, IpAddress, IpCidr, Ipv4Address, Ipv4Cidr};

use crate::chat::{AutoResponder, Responder};
use crate::config::Config;
use crate::login::Store;
use crate::net::{ChecksumOffload, HostMemory, NetConfig, Node, SetupError};
use crate::sim::hub::{Faults, Hub, LATENCY, Port};

/// Socket buffer size of client sockets.
const CLIENT_BUFFER: usize = 64 * 1024;
/// Longest jump of the clock in one [`World::step`] when nothing is
/// scheduled sooner.
const MAX_JUMP: Duration = Duration::from_millis(100);
/// Shortest step: time always moves, so a node that keeps asking to be
/// polled at once (a password hash done in slices) cannot freeze the clock.
const MIN_STEP: Duration = Duration::from_micros(10);

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

/// When a node must next be polled.
#[derive(Debug, Clone, Copy)]
struct Wake {
    /// The earliest deadline it reported after its last poll.
    at: Option<Instant>,
    /// Its owner touched its sockets since: poll at the next step.
    dirty: bool,
}

impl Wake {
    const NOW: Wake = Wake {
        at: None,
        dirty: true,
    };

    fn due(&self, now: Instant, port: &Port) -> bool {
        self.dirty || self.at.is_some_and(|t| t <= now) || port.has_frames()
    }
}

struct Client {
    iface: Interface,
    sockets: SocketSet<'static>,
    port: Port,
    next_port: u16,
    wake: Wake,
    /// Switched off ([`World::unplug`]): never polled again.
    off: bool,
    /// Bytes received but not yet returned by a `recv_*` helper.
    inbox: HashMap<SocketHandle, Vec<u8>>,
}

/// The simulated network: one device node running every service, and
/// client nodes.
pub struct World<'a, R: Responder = AutoResponder> {
    hub: Hub,
    now: Instant,
    server: Node<'a, R>,
    /// The device's port, behind the same checksum offload as a board's
    /// NIC: every simulated frame checks it against smoltcp's clients.
    server_port: ChecksumOffload<Port>,
    server_wake: Wake,
    config: Config,
    store: &'a Store<'a>,
    net: NetConfig,
    clients: Vec<Client>,
    seed: u64,
    steps: u64,
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
        hub.set_latency(LATENCY);
        let mut server_port = ChecksumOffload::new(hub.add_port());
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
            server_wake: Wake::NOW,
            config: *config,
            store,
            net,
            clients: Vec::new(),
            seed,
            steps: 0,
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
        self.server_wake = Wake::NOW;
        Ok(())
    }

    /// The switch: faults, capture, counters.
    pub fn hub(&self) -> &Hub {
        &self.hub
    }

    /// Sets the faults of the device's own cable.
    pub fn set_server_faults(&self, faults: Faults) {
        self.hub.set_link_faults(self.server_port.id(), faults);
    }

    /// Sets the faults of one client's cable.
    pub fn set_client_faults(&self, client: ClientId, faults: Faults) {
        self.hub
            .set_link_faults(self.clients[client.0].port.id(), faults);
    }

    /// Takes a client off the network for good, as a host that lost power:
    /// its cable is cut and the node is never polled again, so nothing it
    /// had open is ever acknowledged, closed or reset.
    pub fn unplug(&mut self, client: ClientId) {
        let c = &mut self.clients[client.0];
        self.hub.unplug(c.port.id());
        c.off = true;
    }

    /// The switch port a client is plugged into (as [`crate::sim::hub::Seen`]
    /// names it); the device is on port 0.
    pub fn client_port(&self, client: ClientId) -> usize {
        self.clients[client.0].port.id()
    }

    /// Simulated time.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Steps taken so far (a measure of the simulator's own work).
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// Frames the device dropped for a wrong TCP or UDP checksum.
    pub fn server_bad_checksums(&self) -> u32 {
        self.server_port.bad_checksums()
    }

    /// The device node.
    pub fn server(&mut self) -> &mut Node<'a, R> {
        // The caller may change it (an operator's reply): poll it next step.
        self.server_wake.dirty = true;
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
            wake: Wake::NOW,
            off: false,
            inbox: HashMap::new(),
        });
        ClientId(n)
    }

    /// Polls the nodes that have work, then jumps the clock to the next
    /// event, but at most 100 ms ahead.
    pub fn step(&mut self) {
        self.step_until(self.now + MAX_JUMP);
    }

    /// Polls the nodes that have work, then jumps the clock to the next
    /// event: a frame due, a node's deadline, or `limit`, whichever is first
    /// (and always at least a few microseconds forward).
    pub fn step_until(&mut self, limit: Instant) {
        let now = self.now;
        self.steps += 1;
        self.hub.set_now(now);
        if self.server_wake.due(now, &self.server_port) {
            self.server.poll(now, &mut self.server_port);
            self.server_wake = Wake {
                at: self.server.poll_delay(now).map(|d| now + d),
                dirty: false,
            };
        }
        for c in self.clients.iter_mut().filter(|c| !c.off) {
            if c.wake.due(now, &c.port) {
                c.iface.poll(now, &mut c.port, &mut c.sockets);
                c.wake = Wake {
                    at: c.iface.poll_delay(now, &c.sockets).map(|d| now + d),
                    dirty: false,
                };
            }
        }
        let mut next = limit;
        let on = self.clients.iter().filter(|c| !c.off);
        let wakes = on.map(|c| (c.wake, &c.port));
        for (wake, port) in wakes.chain([(self.server_wake, &*self.server_port)]) {
            if port.has_frames() {
                // A node left frames unread (its per-poll cap): go on at once.
                next = now;
            }
            if let Some(at) = wake.at {
                next = next.min(at);
            }
        }
        if let Some(at) = self.hub.next_delivery() {
            next = next.min(at);
        }
        self.now = next.max(now + MIN_STEP);
    }

    /// Lets `d` of simulated time pass.
    pub fn run_for(&mut self, d: Duration) {
        let end = self.now + d;
        while self.now < end {
            self.step_until(end);
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
            self.step_until(end);
        }
    }

    /// A client, marked to be polled at the next step: whoever asks for it
    /// may be about to change its sockets.
    fn client(&mut self, i: usize) -> &mut Client {
        let c = &mut self.clients[i];
        c.wake.dirty = true;
        c
    }
}
