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
use smoltcp::phy::{Device, Medium};
use smoltcp::socket::{tcp, udp};
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{EthernetAddress, HardwareAddress, IpCidr, Ipv4Address, Ipv4Cidr};

use crate::chat::hotline::Hotline;
use crate::chat::responder::{AutoResponder, Responder};
use crate::chat::{BYEBYE, tcp_chat::NotYourTurn};
use crate::config::Config;
use crate::login::{Challenges, Lockout, Store};
use crate::net::memory::Memory;
use crate::net::syn_watch::SynWatch;
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
    /// The pools add up to more TCP sockets than [`MAX_TCP_SOCKETS`].
    TooManyTcpSockets(usize),
}

/// The most TCP sockets a node can have: a [`SessionId`](crate::session::SessionId)
/// numbers them with a `u8`.
pub const MAX_TCP_SOCKETS: usize = u8::MAX as usize + 1;

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
            SetupError::TooManyTcpSockets(n) => write!(
                f,
                "the pools add up to {n} TCP sockets; at most {MAX_TCP_SOCKETS}"
            ),
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
    /// One per socket (echo, echo, hotline): a reply that cannot leave
    /// must not block the others for good.
    watchdogs: [services::Watchdog; 3],
}

/// Every service on one smoltcp interface.
pub struct Node<'a, R: Responder = AutoResponder> {
    iface: Interface,
    sockets: SocketSet<'a>,
    slots: &'a mut [TcpSlot],
    udp: UdpHandles,
    hotline: Hotline,
    lockout: Lockout,
    challenges: Challenges,
    store: &'a Store<'a>,
    responder: R,
    config: Config,
    /// The device's medium: where [`SynWatch`] finds the IP header.
    medium: Medium,
    /// The last [`Node::poll`] stopped at a cap (rounds, frames) while
    /// work was still moving: [`Node::poll_delay`] says poll again at once.
    /// Without it, a bulk transfer left half-echoed in the buffers waited
    /// for the next frame or timer (10 ms and more) to carry on.
    unfinished: bool,
    /// The TCP slot served first in the next poll. It moves on every poll,
    /// so the per-poll password-hash budget goes round the sessions instead
    /// of always to the lowest slots (which starved a high slot's login
    /// for seconds under load).
    first_slot: usize,
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
        if config.tcp_sockets() > MAX_TCP_SOCKETS {
            return Err(SetupError::TooManyTcpSockets(config.tcp_sockets()));
        }

        let medium = device.capabilities().medium;
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
            (Service::Echo, ports.tcp_echo[0], config.pools.echo[0]),
            (Service::Echo, ports.tcp_echo[1], config.pools.echo[1]),
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
                // smoltcp retransmits a SYN-ACK without limit, so a handshake
                // the client never completes (its ACK lost, or a spoofed SYN)
                // would hold this socket of the pool for good. The timeout
                // ends it; it stays set across `listen`, for every connection.
                socket.set_timeout(Some(config.limits.peer_timeout));
                let _ = socket.listen(port);
                slots[next] = TcpSlot {
                    handle: Some(sockets.add(socket)),
                    service,
                    port,
                    generation: 0,
                    conn: None,
                    half_open: false,
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
            watchdogs: [services::Watchdog::NEW; 3],
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
            challenges: Challenges::new(net.random_seed, store),
            store,
            responder,
            config: *config,
            medium,
            unfinished: false,
            first_slot: 0,
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
        self.unfinished = true;
        let mut device = SynWatch::new(device, self.medium);
        for _ in 0..ROUNDS {
            // Ingress and egress are split (rather than `Interface::poll`) so
            // that duplicate handshakes are dropped before any SYN-ACK leaves,
            // and frame by frame: the segment right behind a duplicate SYN
            // must not reach the duplicate's socket, which would reset it.
            let mut frames = 0;
            while frames < FRAMES_PER_ROUND
                && self
                    .iface
                    .poll_ingress_single(now, &mut device, &mut self.sockets)
                    != PollIngressSingleResult::None
            {
                if device.take_syn() {
                    drop_duplicate_handshakes(self.slots, &mut self.sockets);
                }
                frames += 1;
            }
            #[cfg(feature = "dhcp")]
            {
                any |= self.dhcp.poll(&mut self.iface, &mut self.sockets, now);
            }
            let app = self.poll_services(now, &mut hash_budget);
            let mut sent = 0;
            while sent < FRAMES_PER_ROUND
                && self.iface.poll_egress(now, &mut device, &mut self.sockets) != PollResult::None
            {
                sent += 1;
            }
            any |= app || frames > 0;
            if !app && frames == 0 && sent < FRAMES_PER_ROUND {
                self.unfinished = false;
                break;
            }
        }
        any
    }

    /// How long the owner may sleep before the next [`Node::poll`], if no
    /// frame arrives first. `Some(ZERO)` means poll again at once (for
    /// example while a password hash is being computed in slices).
    pub fn poll_delay(&mut self, now: Instant) -> Option<Duration> {
        if self.unfinished {
            return Some(Duration::ZERO);
        }
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
            challenges,
            store,
            responder,
            config,
            first_slot,
            ..
        } = self;
        let mut cx = Shared {
            limits: &config.limits,
            store,
            lockout,
            challenges,
            hash_budget: *hash_budget,
            responder,
        };
        let mut any = false;
        let count = slots.len();
        for index in (0..count).map(|k| (*first_slot + k) % count) {
            let slot = &mut slots[index];
            let Some(handle) = slot.handle else { continue };
            any |= slot.poll(index, sockets.get_mut::<tcp::Socket>(handle), &mut cx, now);
        }
        *first_slot = (*first_slot + 1) % count.max(1);
        *hash_budget = cx.hash_budget;
        // Forget failed logins whose window or lock is over: without this
        // the table only ever shrank on a successful login.
        cx.lockout.expire(now, cx.limits);
        let [echo_a, echo_b, hot] = &mut handles.watchdogs;
        for (handle, watchdog) in handles.echo.into_iter().zip([echo_a, echo_b]) {
            let socket = sockets.get_mut::<udp::Socket>(handle);
            any |= watchdog.guard(socket, now, services::echo);
        }
        let socket = sockets.get_mut::<udp::Socket>(handles.hotline);
        any |= hot.guard(socket, now, |socket| {
            services::hotline(
                socket,
                hotline,
                cx.responder,
                now,
                config.limits.hotline_idle,
            )
        });
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
        let others = (self.hotline.poll_at(self.config.limits.hotline_idle))
            .into_iter()
            .chain(self.lockout.poll_at(&self.config.limits))
            .chain(self.udp.watchdogs.iter().filter_map(|w| w.poll_at()));
        #[cfg(feature = "dhcp")]
        let others = others.chain(self.dhcp.poll_at());
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

#[cfg(test)]
mod tests {
    use smoltcp::phy::{ChecksumCapabilities, TxToken};
    use smoltcp::socket::tcp::State;
    use smoltcp::wire::{
        EthernetFrame, EthernetProtocol, EthernetRepr, IpProtocol, Ipv4Packet, Ipv4Repr,
        TcpControl, TcpPacket, TcpRepr, TcpSeqNumber,
    };

    use super::*;
    use crate::net::HostMemory;
    use crate::sim::Hub;

    const MAC: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0, 0x01]);
    const IP: Ipv4Address = Ipv4Address::new(192, 168, 69, 1);

    /// A client's SYN to the node, from a client that then falls silent.
    fn syn(src_port: u16, dst_port: u16) -> Vec<u8> {
        let client = Ipv4Address::new(192, 168, 69, 100);
        let tcp = TcpRepr {
            src_port,
            dst_port,
            control: TcpControl::Syn,
            seq_number: TcpSeqNumber(1000),
            ack_number: None,
            window_len: 64240,
            window_scale: None,
            max_seg_size: None,
            sack_permitted: false,
            sack_ranges: [None; 3],
            timestamp: None,
            payload: &[],
        };
        let ip = Ipv4Repr {
            src_addr: client,
            dst_addr: IP,
            next_header: IpProtocol::Tcp,
            payload_len: tcp.buffer_len(),
            hop_limit: 64,
        };
        let eth = EthernetRepr {
            src_addr: EthernetAddress([0x02, 0, 0, 0, 1, 0]),
            dst_addr: MAC,
            ethertype: EthernetProtocol::Ipv4,
        };
        let caps = ChecksumCapabilities::default();
        let mut buf = vec![0; eth.buffer_len() + ip.buffer_len() + tcp.buffer_len()];
        let mut frame = EthernetFrame::new_unchecked(&mut buf[..]);
        eth.emit(&mut frame);
        let mut packet = Ipv4Packet::new_unchecked(frame.payload_mut());
        ip.emit(&mut packet, &caps);
        let mut segment = TcpPacket::new_unchecked(packet.payload_mut());
        tcp.emit(&mut segment, &client.into(), &IP.into(), &caps);
        buf
    }

    /// Found by the `node_frames` fuzz target: a SYN whose client never
    /// completed the handshake held a socket of the pool in SYN-RECEIVED
    /// for good (smoltcp retransmits the SYN-ACK without limit), so two of
    /// them took the small board's chat service down until reboot.
    #[test]
    fn a_handshake_never_completed_frees_its_socket() {
        let config = Config::SMALL;
        let hub = Hub::new(1);
        let mut device = hub.add_port();
        let mut client = hub.add_port();
        let mut memory = HostMemory::new(&config);
        let store = crate::login::DEMO;
        let net = NetConfig {
            mac: MAC,
            ip: Ipv4Cidr::new(IP, 24),
            gateway: None,
            random_seed: 1,
        };
        let mut node: Node<'_> = Node::new(
            &config,
            &net,
            &mut device,
            memory.memory(),
            &store,
            AutoResponder::new(),
            Instant::ZERO,
        )
        .unwrap();
        let chat_states = |node: &Node<'_>| -> Vec<State> {
            node.slots
                .iter()
                .filter(|s| s.service == Service::Chat)
                .map(|s| node.sockets.get::<tcp::Socket>(s.handle.unwrap()).state())
                .collect()
        };

        for port in [50000, 50001] {
            let frame = syn(port, config.ports.chat);
            let tx = client.transmit(Instant::ZERO).unwrap();
            tx.consume(frame.len(), |buf| buf.copy_from_slice(&frame));
        }
        node.poll(Instant::ZERO, &mut device);
        assert_eq!(chat_states(&node), [State::SynReceived; 2]);

        // The timeout closes them (in egress); the next poll listens again.
        let later = Instant::ZERO + config.limits.peer_timeout + Duration::from_secs(1);
        node.poll(later, &mut device);
        node.poll(later, &mut device);
        assert_eq!(
            chat_states(&node),
            [State::Listen; 2],
            "half-open connections still hold the pool"
        );
    }
}
