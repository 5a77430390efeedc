//! A network node running every service.
//!
//! The node is the whole device as the network sees it: one interface, one
//! address, every service port. Its owner calls [`Node::poll`] whenever a
//! frame may have arrived or [`Node::poll_delay`] has run out; that is the
//! entire contract, the same on a TAP device, a virtual wire and a
//! microcontroller's NIC interrupt.

use managed::ManagedSlice;
use smoltcp::iface::{
    Config as IfaceConfig, Interface, PollIngressSingleResult, PollResult, SocketHandle, SocketSet,
};
use smoltcp::phy::Device;
use smoltcp::socket::{tcp, udp};
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{EthernetAddress, HardwareAddress, IpCidr, Ipv4Address, Ipv4Cidr};

use crate::chat::hotline::Hotline;
use crate::chat::responder::{AutoResponder, Responder};
use crate::chat::{BYEBYE, tcp_chat::NotYourTurn};
use crate::config::Config;
use crate::login::{Lockout, Store};
use crate::net::memory::Memory;
use crate::net::tcp_slot::{Proto, Service, TcpSlot, drop_duplicate_handshakes};
use crate::net::udp as services;
use crate::session::{SessionId, Shared, Transport};

/// The node's link and IP configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NetConfig {
    /// The Ethernet address.
    pub mac: EthernetAddress,
    /// The IPv4 address and prefix. With feature `dhcp`, the fallback used
    /// when no DHCP lease arrives.
    pub ip: Ipv4Cidr,
    /// The default gateway. Boards leave it `None`, so the firmware can
    /// only ever answer hosts on its own LAN.
    pub gateway: Option<Ipv4Address>,
    /// Seeds TCP initial sequence numbers; use a different value per boot.
    pub random_seed: u64,
}

/// Why a node could not be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum SetupError {
    /// A part of [`Memory`] is smaller than the config needs.
    NotEnoughMemory {
        /// Which part: "sockets", "tcp_slots", "udp_meta" or "bytes".
        part: &'static str,
        /// How many entries the config needs.
        needed: usize,
        /// How many were given.
        given: usize,
    },
    /// A buffer size in the config is zero.
    EmptyBuffer,
}

impl core::fmt::Display for SetupError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            SetupError::NotEnoughMemory {
                part,
                needed,
                given,
            } => {
                write!(
                    f,
                    "not enough memory for {part}: need {needed}, got {given}"
                )
            }
            SetupError::EmptyBuffer => f.write_str("socket buffer sizes must not be zero"),
        }
    }
}

/// Why an operator's reply was not delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OperatorError {
    /// The session ended (or never existed).
    NoSuchSession,
    /// The client has not spoken since the last reply: the chat takes turns.
    NotYourTurn,
}

impl core::fmt::Display for OperatorError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            OperatorError::NoSuchSession => "no such session (it ended?)",
            OperatorError::NotYourTurn => "not your turn: wait for the client to speak",
        })
    }
}

/// How much of the node is in use: the leak check of the tests, and what a
/// board can report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Usage {
    /// TCP connections in progress, all services.
    pub tcp_sessions: usize,
    /// Hotline callers remembered.
    pub hotline_sessions: usize,
    /// Addresses in the login lockout table.
    pub lockout_entries: usize,
}

/// Rounds of ingress → services → egress per [`Node::poll`]. A round
/// that moves nothing ends the poll early; the cap keeps a flood from
/// holding the caller forever.
const ROUNDS: usize = 4;

/// Frames received (and, separately, sent) per round at most.
const FRAMES_PER_ROUND: usize = 256;

/// The UDP sockets, by job.
struct UdpHandles {
    echo: [SocketHandle; 2],
    hotline: SocketHandle,
}

/// Every service on one smoltcp interface.
pub struct Node<'a, R: Responder = AutoResponder> {
    iface: Interface,
    sockets: SocketSet<'a>,
    slots: &'a mut [TcpSlot],
    udp: UdpHandles,
    hotline: Hotline,
    lockout: Lockout,
    store: &'a Store<'a>,
    responder: R,
    config: Config,
    #[cfg(feature = "dhcp")]
    dhcp: super::dhcp::Dhcp,
}

impl<'a, R: Responder> Node<'a, R> {
    /// Builds the interface and every service socket, listening.
    pub fn new<D: Device + ?Sized>(
        config: &Config,
        net: &NetConfig,
        device: &mut D,
        memory: Memory<'a>,
        store: &'a Store<'a>,
        responder: R,
        now: Instant,
    ) -> Result<Self, SetupError> {
        let needs = config.memory_needs();
        let b = &config.buffers;
        check("sockets", needs.sockets, memory.sockets.len())?;
        check("tcp_slots", needs.tcp_slots, memory.tcp_slots.len())?;
        check("udp_meta", needs.udp_meta, memory.udp_meta.len())?;
        check("bytes", needs.bytes, memory.bytes.len())?;
        if b.tcp_rx == 0 || b.tcp_tx == 0 || b.udp_payload == 0 || b.udp_packets == 0 {
            return Err(SetupError::EmptyBuffer);
        }

        let mut iface_config = IfaceConfig::new(HardwareAddress::Ethernet(net.mac));
        iface_config.random_seed = net.random_seed;
        let mut iface = Interface::new(iface_config, device, now);
        if !cfg!(feature = "dhcp") {
            iface.update_ip_addrs(|addrs| {
                // One address on a fresh interface always fits.
                let _ = addrs.push(IpCidr::Ipv4(net.ip));
            });
        }
        if let Some(gw) = net.gateway {
            let _ = iface.routes_mut().add_default_ipv4_route(gw);
        }

        let mut sockets = SocketSet::new(memory.sockets);
        #[cfg(feature = "dhcp")]
        let dhcp = super::dhcp::Dhcp::new(&mut sockets, net.ip, now);
        let mut bytes: &'a mut [u8] = memory.bytes;
        let mut meta: &'a mut [udp::PacketMetadata] = memory.udp_meta;

        let ports = &config.ports;
        let pools = [
            (Service::Echo, ports.tcp_echo[0], config.pools.echo),
            (Service::Echo, ports.tcp_echo[1], config.pools.echo),
            (Service::Login, ports.login, config.pools.login),
            (Service::Chat, ports.chat, config.pools.chat),
        ];
        let slots = memory.tcp_slots;
        let mut next = 0;
        for (service, port, count) in pools {
            for _ in 0..count {
                let rx = take(&mut bytes, b.tcp_rx);
                let tx = take(&mut bytes, b.tcp_tx);
                let mut socket =
                    tcp::Socket::new(tcp::SocketBuffer::new(rx), tcp::SocketBuffer::new(tx));
                // Replies are whole messages written at once; Nagle would only
                // delay the chat's and login's small answers.
                socket.set_nagle_enabled(false);
                let _ = socket.listen(port);
                slots[next] = TcpSlot {
                    handle: Some(sockets.add(socket)),
                    service,
                    port,
                    generation: 0,
                    conn: None,
                };
                next += 1;
            }
        }

        let mut add_udp = |port: u16| {
            let mut buffer = || {
                udp::PacketBuffer::new(
                    ManagedSlice::Borrowed(take(&mut meta, b.udp_packets)),
                    ManagedSlice::Borrowed(take(&mut bytes, b.udp_payload)),
                )
            };
            let (rx, tx) = (buffer(), buffer());
            let mut socket = udp::Socket::new(rx, tx);
            let _ = socket.bind(port);
            sockets.add(socket)
        };
        let udp = UdpHandles {
            echo: [add_udp(ports.udp_echo[0]), add_udp(ports.udp_echo[1])],
            hotline: add_udp(ports.hotline),
        };

        if cfg!(feature = "dhcp") {
            info!("node up, asking DHCP for an address (fallback {})", net.ip);
        } else {
            info!("node up at {}", net.ip);
        }
        info!(
            "services: echo tcp/udp {} {}, login {}, chat {}, hotline {}",
            ports.tcp_echo[0], ports.tcp_echo[1], ports.login, ports.chat, ports.hotline
        );
        Ok(Node {
            iface,
            sockets,
            slots: &mut slots[..next],
            udp,
            hotline: Hotline::new(),
            lockout: Lockout::new(),
            store,
            responder,
            config: *config,
            #[cfg(feature = "dhcp")]
            dhcp,
        })
    }

    /// Moves frames and bytes until nothing more happens at `now`: every
    /// frame the device has ready is processed (drained, not one per call),
    /// every service runs, and what they wrote is transmitted. Returns
    /// whether anything happened.
    pub fn poll<D: Device + ?Sized>(&mut self, now: Instant, device: &mut D) -> bool {
        let mut any = false;
        let mut hash_budget = self.config.limits.hash_iterations_per_poll;
        self.iface.poll_maintenance(now);
        for _ in 0..ROUNDS {
            // Ingress and egress are split (rather than `Interface::poll`) so
            // that duplicate handshakes are dropped before any SYN-ACK leaves.
            let mut frames = 0;
            while frames < FRAMES_PER_ROUND
                && self
                    .iface
                    .poll_ingress_single(now, device, &mut self.sockets)
                    != PollIngressSingleResult::None
            {
                frames += 1;
            }
            drop_duplicate_handshakes(self.slots, &mut self.sockets);
            #[cfg(feature = "dhcp")]
            {
                any |= self.dhcp.poll(&mut self.iface, &mut self.sockets, now);
            }
            let app = self.poll_services(now, &mut hash_budget);
            for _ in 0..FRAMES_PER_ROUND {
                if self.iface.poll_egress(now, device, &mut self.sockets) == PollResult::None {
                    break;
                }
            }
            any |= app || frames > 0;
            if !app && frames == 0 {
                break;
            }
        }
        any
    }

    /// How long the owner may sleep before the next [`Node::poll`], if no
    /// frame arrives first. `Some(ZERO)` means poll again at once (for
    /// example while a password hash is being computed in slices).
    pub fn poll_delay(&mut self, now: Instant) -> Option<Duration> {
        let net = self.iface.poll_delay(now, &self.sockets);
        let app = self
            .next_deadline()
            .map(|at| if at > now { at - now } else { Duration::ZERO });
        match (net, app) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Sends an operator's reply to a chat session (`serve --operator`).
    pub fn operator_reply(&mut self, id: SessionId, text: &str) -> Result<(), OperatorError> {
        match id.transport {
            Transport::Tcp => {
                let slot = self
                    .slots
                    .get_mut(usize::from(id.index))
                    .ok_or(OperatorError::NoSuchSession)?;
                match slot.conn.as_mut() {
                    Some(conn) => match &mut conn.proto {
                        Proto::Chat(chat) if chat.id() == id => chat
                            .operator_reply(text, &mut conn.out)
                            .map_err(|NotYourTurn| OperatorError::NotYourTurn),
                        _ => Err(OperatorError::NoSuchSession),
                    },
                    None => Err(OperatorError::NoSuchSession),
                }
            }
            Transport::Udp => {
                let peer = self.hotline.peer(id).ok_or(OperatorError::NoSuchSession)?;
                let socket = self.sockets.get_mut::<udp::Socket>(self.udp.hotline);
                if socket.send_slice(text.as_bytes(), peer).is_err() {
                    warn!("hotline {}: operator reply dropped, send buffer full", id);
                }
                if text.trim() == BYEBYE {
                    self.hotline.end(id);
                    self.responder.ended(id);
                }
                Ok(())
            }
        }
    }

    /// What is in use right now.
    pub fn usage(&self) -> Usage {
        Usage {
            tcp_sessions: self.slots.iter().filter(|s| s.busy()).count(),
            hotline_sessions: self.hotline.active(),
            lockout_entries: self.lockout.len(),
        }
    }

    /// The address the node answers on now: `None` while it waits for a
    /// DHCP lease (feature `dhcp`).
    pub fn ipv4_addr(&self) -> Option<Ipv4Address> {
        self.iface.ipv4_addr()
    }

    /// The smoltcp interface, for what the node does not wrap.
    pub fn iface_mut(&mut self) -> &mut Interface {
        &mut self.iface
    }

    /// The responder, e.g. for an operator console to read its queue.
    pub fn responder_mut(&mut self) -> &mut R {
        &mut self.responder
    }

    /// The configuration the node was built with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    fn poll_services(&mut self, now: Instant, hash_budget: &mut u32) -> bool {
        let Node {
            sockets,
            slots,
            udp: handles,
            hotline,
            lockout,
            store,
            responder,
            config,
            ..
        } = self;
        let mut cx = Shared {
            limits: &config.limits,
            store,
            lockout,
            hash_budget: *hash_budget,
            responder,
        };
        let mut any = false;
        for (index, slot) in slots.iter_mut().enumerate() {
            let Some(handle) = slot.handle else { continue };
            any |= slot.poll(index, sockets.get_mut::<tcp::Socket>(handle), &mut cx, now);
        }
        *hash_budget = cx.hash_budget;
        for handle in handles.echo {
            any |= services::echo(sockets.get_mut::<udp::Socket>(handle));
        }
        let socket = sockets.get_mut::<udp::Socket>(handles.hotline);
        any |= services::hotline(
            socket,
            hotline,
            cx.responder,
            now,
            config.limits.hotline_idle,
        );
        any
    }

    fn next_deadline(&self) -> Option<Instant> {
        let (idle, peer) = (
            self.config.limits.idle_timeout,
            self.config.limits.peer_timeout,
        );
        let tcp = self
            .slots
            .iter()
            .filter_map(|s| s.conn.as_ref()?.poll_at(idle, peer));
        let others = self.hotline.poll_at(self.config.limits.hotline_idle);
        #[cfg(feature = "dhcp")]
        let others = others.into_iter().chain(self.dhcp.poll_at());
        tcp.chain(others).min()
    }
}

fn check(part: &'static str, needed: usize, given: usize) -> Result<(), SetupError> {
    if given < needed {
        Err(SetupError::NotEnoughMemory {
            part,
            needed,
            given,
        })
    } else {
        Ok(())
    }
}

/// Splits the first `n` entries off `rest`. The caller checked the total
/// size against `Config::memory_needs` first, so this never runs short.
fn take<'a, T>(rest: &mut &'a mut [T], n: usize) -> &'a mut [T] {
    let all = core::mem::take(rest);
    let (head, tail) = all.split_at_mut(n.min(all.len()));
    *rest = tail;
    head
}
