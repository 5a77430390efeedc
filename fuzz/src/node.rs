//! Target `node_frames`: the whole device, a [`Node`] with every service,
//! fed arbitrary Ethernet frames from several peers.
//!
//! Each data step is one frame. Its tag picks who sends it and how much the
//! harness helps it past the checks a random frame would fail:
//!
//! ```text
//! tag bits 0-2  peer: 192.168.69.100-106 (02:00:00:00:01:0k), or
//!               peer 7, 10.0.0.7, off the device's subnet
//! tag bit 3     address it: source MAC and IP become the peer's, the
//!               destination the device's (ARP: the sender's fields)
//! tag bit 4     TCP: set the sequence and acknowledgement numbers to what
//!               the device expects from this peer's connection
//! tag bit 5     fill in the IPv4, TCP, UDP and ICMP checksums
//! ```
//!
//! Seeds from the demo's capture set all three, so a replayed session
//! reaches the services whatever the device's initial sequence numbers.
//! The peers answer the device's ARP requests by themselves. Events: poll
//! now; hold frames back and deliver them in one poll (duplicate SYNs);
//! replay the last frame; sleep as long as the node asks.
//!
//! Checked, besides "never panics": the node's usage stays within its
//! pools and `HOTLINE_SESSIONS`; every frame it sends is from its own MAC
//! and fits the MTU; and after the peers fall silent for two hours, no
//! session is left (`usage()` is all zero) and every TCP service accepts as
//! many new connections as its pool holds.

use std::collections::{HashMap, VecDeque};

use smoltalk::chat::AutoResponder;
use smoltalk::config::HOTLINE_SESSIONS;
use smoltalk::net::{ChecksumOffload, HostMemory};
use smoltalk::{Config, NetConfig, Node};
use smoltcp::phy::{self, Device, DeviceCapabilities, Medium};
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{
    EthernetAddress, Icmpv4Packet, IpAddress, IpProtocol, Ipv4Address, Ipv4Cidr, Ipv4Packet,
    TcpPacket, UdpPacket,
};

use crate::fixture::store;
use crate::script::{Script, Step};

/// The device's MAC address, as in the simulator.
pub const DEVICE_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
/// The device's IPv4 address, as in the simulator.
pub const DEVICE_IP: [u8; 4] = [192, 168, 69, 1];
/// Largest frame (Ethernet without FCS).
pub const MTU: usize = 1514;

/// Peer `k`'s MAC address (the simulator's clients are `02:00:00:00:01:0k`).
pub fn peer_mac(k: u8) -> [u8; 6] {
    [0x02, 0, 0, 0, 1, k & 7]
}

/// Peer `k`'s IPv4 address; peer 7 is off the device's subnet.
pub fn peer_ip(k: u8) -> [u8; 4] {
    match k & 7 {
        7 => [10, 0, 0, 7],
        k => [192, 168, 69, 100 + k],
    }
}

const ETH: usize = 14;
const ETHERTYPE_IPV4: [u8; 2] = [0x08, 0x00];
const ETHERTYPE_ARP: [u8; 2] = [0x08, 0x06];

/// A device whose "wire" is the fuzz input: received frames come from a
/// queue, sent ones are collected.
#[derive(Default)]
pub struct FrameDevice {
    rx: VecDeque<Vec<u8>>,
    tx: Vec<Vec<u8>>,
}

/// A received frame.
pub struct RxToken(Vec<u8>);

/// Permission to send a frame.
pub struct TxToken<'a>(&'a mut Vec<Vec<u8>>);

impl phy::RxToken for RxToken {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(&self.0)
    }
}

impl phy::TxToken for TxToken<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut frame = vec![0; len];
        let r = f(&mut frame);
        self.0.push(frame);
        r
    }
}

impl Device for FrameDevice {
    type RxToken<'a> = RxToken;
    type TxToken<'a> = TxToken<'a>;

    fn receive(&mut self, _: Instant) -> Option<(RxToken, TxToken<'_>)> {
        let frame = self.rx.pop_front()?;
        Some((RxToken(frame), TxToken(&mut self.tx)))
    }

    fn transmit(&mut self, _: Instant) -> Option<TxToken<'_>> {
        Some(TxToken(&mut self.tx))
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = MTU;
        caps
    }
}

/// What the device last said on one TCP connection: the peer's next
/// segment, to be accepted, carries `ack` as its sequence number and
/// acknowledges `next`.
#[derive(Debug, Clone, Copy)]
struct Tcb {
    next: u32,
    ack: Option<u32>,
}

/// (peer IP, peer port, device port)
type Tuple = ([u8; 4], u16, u16);

/// The node, its device, the clock, and what the peers know.
struct Harness<'a> {
    node: Node<'a, AutoResponder>,
    /// The device behind the same checksum offload as a board's NIC.
    dev: ChecksumOffload<FrameDevice>,
    now: Instant,
    tcbs: HashMap<Tuple, Tcb>,
    config: Config,
}

/// With `FUZZ_TRACE` set, every frame in and out is printed (for reading
/// what a crashing input does: `cargo run --example trace`).
fn tracing() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("FUZZ_TRACE").is_some())
}

/// One line about a frame: addresses, protocol, ports, TCP flags, payload.
pub fn describe(f: &[u8]) -> String {
    if f.len() < ETH {
        return format!("runt {:02x?}", f);
    }
    match ipv4(f) {
        Some((ip, l4)) if ip[9] == 6 && l4.len() >= 20 => {
            let offset = (usize::from(l4[12] >> 4) * 4).min(l4.len());
            format!(
                "{:?}:{} > {:?}:{} tcp flags {:#04x} seq {} ack {} {:?}",
                &ip[12..16],
                be16(&l4[0..2]),
                &ip[16..20],
                be16(&l4[2..4]),
                l4[13],
                be32(&l4[4..8]),
                be32(&l4[8..12]),
                String::from_utf8_lossy(&l4[offset..])
            )
        }
        Some((ip, l4)) if ip[9] == 17 && l4.len() >= 8 => format!(
            "{:?}:{} > {:?}:{} udp {:?}",
            &ip[12..16],
            be16(&l4[0..2]),
            &ip[16..20],
            be16(&l4[2..4]),
            String::from_utf8_lossy(&l4[8..])
        ),
        Some((ip, _)) => format!("{:?} > {:?} ip proto {}", &ip[12..16], &ip[16..20], ip[9]),
        None => format!(
            "{:02x?} > {:02x?} ethertype {:02x}{:02x} ({} bytes)",
            &f[6..12],
            &f[0..6],
            f[12],
            f[13],
            f.len()
        ),
    }
}

/// The configuration under test: the small board's, so that pools run out.
const CONFIG: Config = Config::SMALL;

/// Runs one input.
pub fn run(input: &[u8]) {
    let mut memory = HostMemory::new(&CONFIG);
    let mut dev = ChecksumOffload::new(FrameDevice::default());
    let net = NetConfig {
        mac: EthernetAddress(DEVICE_MAC),
        ip: Ipv4Cidr::new(Ipv4Address::from(DEVICE_IP), 24),
        gateway: None,
        random_seed: 0x5eed,
    };
    let node = Node::new(
        &CONFIG,
        &net,
        &mut dev,
        memory.memory(),
        store(),
        AutoResponder::new(),
        Instant::ZERO,
    )
    .expect("the SMALL config fits its memory");
    let mut h = Harness {
        node,
        dev,
        now: Instant::ZERO,
        tcbs: HashMap::new(),
        config: CONFIG,
    };
    let mut hold = false;
    let mut last: Option<Vec<u8>> = None;
    for step in Script::new(input) {
        match step {
            Step::Data { tag, bytes } => {
                let frame = h.prepare(tag, bytes);
                h.dev.rx.push_back(frame.clone());
                last = Some(frame);
                if !hold {
                    h.poll();
                }
            }
            Step::Wait(d) => {
                h.now += d;
                h.poll();
            }
            Step::Event { tag, arg } => match tag % 4 {
                0 => {
                    h.poll();
                }
                1 => {
                    hold = arg & 1 == 1;
                    if !hold {
                        h.poll();
                    }
                }
                2 => {
                    if let Some(frame) = &last {
                        for _ in 0..=arg % 4 {
                            h.dev.rx.push_back(frame.clone());
                        }
                    }
                    if !hold {
                        h.poll();
                    }
                }
                _ => {
                    let d = h.node.poll_delay(h.now).unwrap_or(Duration::from_secs(1));
                    h.now += d.min(Duration::from_secs(u64::from(arg)));
                    h.poll();
                }
            },
        }
    }
    h.poll();
    h.quiesce();
    h.check_accepts();
}

impl Harness<'_> {
    /// Polls the node, then lets the peers react to what it sent: they
    /// answer ARP requests (and the node gets those answers at once).
    /// Returns every frame the node sent.
    fn poll(&mut self) -> Vec<Vec<u8>> {
        let mut all = Vec::new();
        for _ in 0..4 {
            if tracing() {
                for f in &self.dev.rx {
                    eprintln!("{:>10} in  {}", self.now, describe(f));
                }
            }
            self.node.poll(self.now, &mut self.dev);
            let usage = self.node.usage();
            assert!(usage.tcp_sessions <= self.config.tcp_sockets());
            assert!(usage.hotline_sessions <= HOTLINE_SESSIONS);
            let sent = std::mem::take(&mut self.dev.tx);
            let mut answered = false;
            for frame in &sent {
                if tracing() {
                    eprintln!("{:>10} out {}", self.now, describe(frame));
                }
                assert!(frame.len() <= MTU, "a frame of {} bytes", frame.len());
                assert_eq!(
                    frame[6..12],
                    DEVICE_MAC,
                    "a frame not from the device's MAC"
                );
                assert_checksums(frame);
                self.learn(frame);
                if let Some(reply) = arp_reply_to(frame) {
                    self.dev.rx.push_back(reply);
                    answered = true;
                }
            }
            all.extend(sent);
            if !answered {
                break;
            }
        }
        all
    }

    /// Notes the device's sequence and acknowledgement numbers per
    /// connection, for bit 4 of later frames.
    fn learn(&mut self, frame: &[u8]) {
        let Some((ip, l4)) = ipv4(frame) else { return };
        if ip[9] != 6 || l4.len() < 20 {
            return;
        }
        let peer: [u8; 4] = ip[16..20].try_into().unwrap();
        let tuple = (peer, be16(&l4[2..4]), be16(&l4[0..2]));
        let flags = l4[13];
        if flags & RST != 0 {
            self.tcbs.remove(&tuple);
            return;
        }
        let offset = usize::from(l4[12] >> 4) * 4;
        let payload = l4.len().saturating_sub(offset) as u32;
        let seq = be32(&l4[4..8]);
        let next = seq
            .wrapping_add(payload)
            .wrapping_add(u32::from(flags & SYN != 0))
            .wrapping_add(u32::from(flags & FIN != 0));
        let tcb = self.tcbs.entry(tuple).or_insert(Tcb { next, ack: None });
        if flags & SYN != 0 || (next.wrapping_sub(tcb.next) as i32) > 0 {
            tcb.next = next;
        }
        if flags & ACK != 0 {
            tcb.ack = Some(be32(&l4[8..12]));
        }
    }

    /// Builds the frame a data step stands for (see the module docs).
    fn prepare(&self, tag: u8, bytes: &[u8]) -> Vec<u8> {
        let k = tag & 7;
        let (address, sequence, checksum) = (tag & 8 != 0, tag & 16 != 0, tag & 32 != 0);
        let mut f = bytes[..bytes.len().min(MTU)].to_vec();
        if f.len() < ETH {
            return f;
        }
        if address {
            if f[0] & 1 == 0 {
                f[0..6].copy_from_slice(&DEVICE_MAC);
            }
            f[6..12].copy_from_slice(&peer_mac(k));
        }
        match [f[12], f[13]] {
            ETHERTYPE_ARP if address && f.len() >= ETH + 28 => {
                f[ETH + 8..ETH + 14].copy_from_slice(&peer_mac(k));
                f[ETH + 14..ETH + 18].copy_from_slice(&peer_ip(k));
            }
            ETHERTYPE_IPV4 if f.len() >= ETH + 20 => {
                if address {
                    f[ETH + 12..ETH + 16].copy_from_slice(&peer_ip(k));
                    let dst = &f[ETH + 16..ETH + 20];
                    if dst != [255; 4] && dst != [192, 168, 69, 255] {
                        f[ETH + 16..ETH + 20].copy_from_slice(&DEVICE_IP);
                    }
                }
                if sequence {
                    self.fix_sequence(&mut f);
                }
                if checksum {
                    fill_checksums(&mut f);
                }
            }
            _ => {}
        }
        f
    }

    fn fix_sequence(&self, f: &mut [u8]) {
        let Some((ip, _)) = ipv4(f) else { return };
        if ip[9] != 6 {
            return;
        }
        let src: [u8; 4] = ip[12..16].try_into().unwrap();
        let start = ETH + usize::from(ip[0] & 0x0f) * 4;
        let Some(tcp) = f.get_mut(start..start + 20) else {
            return;
        };
        let Some(tcb) = self.tcbs.get(&(src, be16(&tcp[0..2]), be16(&tcp[2..4]))) else {
            return;
        };
        let flags = tcp[13];
        if flags & SYN == 0
            && let Some(ack) = tcb.ack
        {
            tcp[4..8].copy_from_slice(&ack.to_be_bytes());
        }
        if flags & ACK != 0 {
            tcp[8..12].copy_from_slice(&tcb.next.to_be_bytes());
        }
    }

    /// The peers fall silent for two hours; the node runs its timers,
    /// polled whenever it asks to be.
    fn quiesce(&mut self) {
        // Two hours, or longer if the limits ever add up to more: every
        // timer of a session has run out by then.
        let l = self.config.limits;
        let silence = l.idle_timeout + l.hotline_idle + l.peer_timeout * 4;
        let until = self.now + silence.max(Duration::from_secs(2 * 3600));
        let mut zero = 0;
        while self.now < until {
            let d = self.node.poll_delay(self.now);
            if d == Some(Duration::ZERO) {
                zero += 1;
                assert!(zero < 1000, "the node keeps asking to be polled at once");
            } else {
                zero = 0;
            }
            let d = d.unwrap_or(until - self.now);
            self.now += d.max(Duration::from_millis(1));
            self.poll();
        }
        let usage = self.node.usage();
        assert_eq!(
            (usage.tcp_sessions, usage.hotline_sessions),
            (0, 0),
            "sessions left after two silent hours: {usage:?}"
        );
    }

    /// Every TCP service takes as many new clients as its pool holds.
    fn check_accepts(&mut self) {
        let ports = self.config.ports;
        let pools = self.config.pools;
        let services = [
            (ports.tcp_echo[0], pools.echo[0]),
            (ports.tcp_echo[1], pools.echo[1]),
            (ports.login, pools.login),
            (ports.chat, pools.chat),
        ];
        let mut client_port = 61000;
        for (port, pool) in services {
            for _ in 0..pool {
                client_port += 1;
                let syn = tcp_syn(6, client_port, port);
                self.dev.rx.push_back(syn);
                // The SYN-ACK may wait for ARP, which the node rate-limits
                // to one request a second.
                let mut sent = self.poll();
                for _ in 0..2 {
                    self.now += Duration::from_millis(1100);
                    sent.extend(self.poll());
                }
                let synack = sent.iter().any(|f| {
                    ipv4(f).is_some_and(|(ip, l4)| {
                        ip[9] == 6
                            && l4.len() >= 20
                            && be16(&l4[0..2]) == port
                            && be16(&l4[2..4]) == client_port
                            && l4[13] & (SYN | ACK) == SYN | ACK
                    })
                });
                assert!(
                    synack,
                    "port {port} refused a new client after two silent hours (pool of {pool})"
                );
            }
        }
    }
}

const FIN: u8 = 0x01;
const SYN: u8 = 0x02;
const RST: u8 = 0x04;
const ACK: u8 = 0x10;

fn be16(b: &[u8]) -> u16 {
    u16::from_be_bytes([b[0], b[1]])
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// The IPv4 header and payload of a frame, if it is a well-formed IPv4
/// frame (the payload cut to the header's total length).
fn ipv4(f: &[u8]) -> Option<(&[u8], &[u8])> {
    if f.len() < ETH + 20 || f[12..14] != ETHERTYPE_IPV4 {
        return None;
    }
    let ip = &f[ETH..];
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    let total = usize::from(be16(&ip[2..4]));
    if ihl < 20 || total < ihl || total > ip.len() {
        return None;
    }
    Some((&ip[..ihl], &ip[ihl..total]))
}

/// Checks, with smoltcp's own code, the TCP or UDP checksum of a frame the
/// device sent: the offload fills them in, not smoltcp.
fn assert_checksums(f: &[u8]) {
    let Some(Ok(ip)) =
        (f.len() > 14 && f[12..14] == [0x08, 0x00]).then(|| Ipv4Packet::new_checked(&f[14..]))
    else {
        return;
    };
    let (src, dst) = (
        IpAddress::Ipv4(ip.src_addr()),
        IpAddress::Ipv4(ip.dst_addr()),
    );
    match ip.next_header() {
        IpProtocol::Tcp => {
            let tcp =
                TcpPacket::new_checked(ip.payload()).expect("the device sent a short TCP segment");
            assert!(
                tcp.verify_checksum(&src, &dst),
                "a TCP segment with a wrong checksum"
            );
        }
        IpProtocol::Udp => {
            let udp =
                UdpPacket::new_checked(ip.payload()).expect("the device sent a short UDP datagram");
            assert!(
                udp.verify_checksum(&src, &dst),
                "a UDP datagram with a wrong checksum"
            );
        }
        _ => {}
    }
}

/// Fills in the checksums of an IPv4 frame, as far as it is well formed.
fn fill_checksums(f: &mut [u8]) {
    let Some((header, _)) = ipv4(f) else { return };
    let ihl = header.len();
    let proto = header[9];
    let total = usize::from(be16(&header[2..4]));
    let src = IpAddress::Ipv4(Ipv4Address::from(
        <[u8; 4]>::try_from(&header[12..16]).unwrap(),
    ));
    let dst = IpAddress::Ipv4(Ipv4Address::from(
        <[u8; 4]>::try_from(&header[16..20]).unwrap(),
    ));
    let ip = &mut f[ETH..ETH + total];
    if let Ok(mut p) = Ipv4Packet::new_checked(&mut ip[..]) {
        p.fill_checksum();
    }
    let l4 = &mut ip[ihl..];
    match proto {
        6 => {
            if let Ok(mut p) = TcpPacket::new_checked(l4) {
                p.fill_checksum(&src, &dst);
            }
        }
        17 => {
            if let Ok(mut p) = UdpPacket::new_checked(l4) {
                p.fill_checksum(&src, &dst);
            }
        }
        1 => {
            if let Ok(mut p) = Icmpv4Packet::new_checked(l4) {
                p.fill_checksum();
            }
        }
        _ => {}
    }
}

/// A peer's answer to the device's ARP request for it.
fn arp_reply_to(f: &[u8]) -> Option<Vec<u8>> {
    if f.len() < ETH + 28 || f[12..14] != ETHERTYPE_ARP || f[ETH + 6..ETH + 8] != [0, 1] {
        return None;
    }
    let target = &f[ETH + 24..ETH + 28];
    let k = (0..8).find(|&k| peer_ip(k) == target)?;
    let mut r = Vec::with_capacity(ETH + 28);
    r.extend_from_slice(&f[6..12]);
    r.extend_from_slice(&peer_mac(k));
    r.extend_from_slice(&ETHERTYPE_ARP);
    r.extend_from_slice(&[0, 1, 8, 0, 6, 4, 0, 2]);
    r.extend_from_slice(&peer_mac(k));
    r.extend_from_slice(&peer_ip(k));
    r.extend_from_slice(&f[ETH + 8..ETH + 18]);
    Some(r)
}

/// A SYN from peer `k`, with correct checksums.
pub fn tcp_syn(k: u8, src_port: u16, dst_port: u16) -> Vec<u8> {
    let mut f = Vec::with_capacity(ETH + 40);
    f.extend_from_slice(&DEVICE_MAC);
    f.extend_from_slice(&peer_mac(k));
    f.extend_from_slice(&ETHERTYPE_IPV4);
    f.extend_from_slice(&[0x45, 0, 0, 40, 0, 1, 0x40, 0, 64, 6, 0, 0]);
    f.extend_from_slice(&peer_ip(k));
    f.extend_from_slice(&DEVICE_IP);
    f.extend_from_slice(&src_port.to_be_bytes());
    f.extend_from_slice(&dst_port.to_be_bytes());
    f.extend_from_slice(&0x1000_0000u32.to_be_bytes());
    f.extend_from_slice(&[0, 0, 0, 0, 0x50, SYN, 0xff, 0xff, 0, 0, 0, 0]);
    fill_checksums(&mut f);
    f
}
