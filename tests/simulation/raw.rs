//! A hand-driven node: a bare switch port that sends frames built byte by
//! byte and reads what comes back, for the few tests that must place one
//! segment at one exact moment (a duplicate SYN between two polls), which
//! a smoltcp client would never do on purpose.

use smoltalk::sim::Port;
use smoltcp::phy::{ChecksumCapabilities, Device, RxToken, TxToken};
use smoltcp::time::Instant;
use smoltcp::wire::{
    ArpOperation, ArpPacket, ArpRepr, EthernetAddress, EthernetFrame, EthernetProtocol,
    EthernetRepr, IpAddress, IpProtocol, Ipv4Address, Ipv4Packet, Ipv4Repr, TcpControl, TcpPacket,
    TcpRepr, TcpSeqNumber, UdpPacket, UdpRepr,
};

/// The device's MAC and address in a `World`.
const DEVICE_MAC: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0, 0x01]);
const DEVICE_IP: Ipv4Address = Ipv4Address::new(192, 168, 69, 1);

/// A raw node at 192.168.69.200.
pub struct Raw {
    pub port: Port,
    mac: EthernetAddress,
    ip: Ipv4Address,
}

/// A TCP segment the device sent.
#[derive(Debug)]
pub struct Segment {
    pub control: TcpControl,
    pub seq: TcpSeqNumber,
    #[allow(dead_code)] // shown in failure messages
    pub ack: Option<TcpSeqNumber>,
    pub payload: Vec<u8>,
}

impl Raw {
    pub fn new(port: Port) -> Self {
        Raw {
            port,
            mac: EthernetAddress([0x02, 0, 0, 0, 2, 0]),
            ip: Ipv4Address::new(192, 168, 69, 200),
        }
    }

    fn send(&mut self, len: usize, fill: impl FnOnce(&mut [u8])) {
        let tx = self
            .port
            .transmit(Instant::ZERO)
            .expect("a hub port always sends");
        tx.consume(len, fill);
    }

    /// Asks for the device's MAC, which also teaches the device ours.
    pub fn arp(&mut self) {
        let (mac, ip) = (self.mac, self.ip);
        self.send(14 + 28, |f| {
            let eth = EthernetRepr {
                src_addr: mac,
                dst_addr: EthernetAddress::BROADCAST,
                ethertype: EthernetProtocol::Arp,
            };
            eth.emit(&mut EthernetFrame::new_unchecked(&mut f[..]));
            ArpRepr::EthernetIpv4 {
                operation: ArpOperation::Request,
                source_hardware_addr: mac,
                source_protocol_addr: ip,
                target_hardware_addr: EthernetAddress([0; 6]),
                target_protocol_addr: DEVICE_IP,
            }
            .emit(&mut ArpPacket::new_unchecked(&mut f[14..]));
        });
    }

    /// Sends one TCP segment from port `from` to the device's port `to`.
    pub fn tcp(
        &mut self,
        from: u16,
        to: u16,
        control: TcpControl,
        seq: u32,
        ack: Option<u32>,
        payload: &[u8],
    ) {
        let repr = TcpRepr {
            src_port: from,
            dst_port: to,
            control,
            seq_number: TcpSeqNumber(seq as i32),
            ack_number: ack.map(|a| TcpSeqNumber(a as i32)),
            window_len: 65535,
            window_scale: None,
            max_seg_size: (control == TcpControl::Syn).then_some(1460),
            sack_permitted: false,
            sack_ranges: [None; 3],
            timestamp: None,
            payload,
        };
        let ip = Ipv4Repr {
            src_addr: self.ip,
            dst_addr: DEVICE_IP,
            next_header: IpProtocol::Tcp,
            payload_len: repr.buffer_len(),
            hop_limit: 64,
        };
        let (mac, src) = (self.mac, self.ip);
        let caps = ChecksumCapabilities::default();
        self.send(14 + 20 + repr.buffer_len(), |f| {
            EthernetRepr {
                src_addr: mac,
                dst_addr: DEVICE_MAC,
                ethertype: EthernetProtocol::Ipv4,
            }
            .emit(&mut EthernetFrame::new_unchecked(&mut f[..]));
            ip.emit(&mut Ipv4Packet::new_unchecked(&mut f[14..34]), &caps);
            repr.emit(
                &mut TcpPacket::new_unchecked(&mut f[34..]),
                &IpAddress::Ipv4(src),
                &IpAddress::Ipv4(DEVICE_IP),
                &caps,
            );
        });
    }

    /// Sends one UDP datagram to the device's `port`, from `from` (an
    /// address that may not be ours: a spoofed or vanished sender).
    pub fn udp(&mut self, from: Ipv4Address, port: u16, payload: &[u8]) {
        let repr = UdpRepr {
            src_port: 40000,
            dst_port: port,
        };
        let len = 8 + payload.len();
        let ip = Ipv4Repr {
            src_addr: from,
            dst_addr: DEVICE_IP,
            next_header: IpProtocol::Udp,
            payload_len: len,
            hop_limit: 64,
        };
        let mac = self.mac;
        let caps = ChecksumCapabilities::default();
        self.send(14 + 20 + len, |f| {
            EthernetRepr {
                src_addr: mac,
                dst_addr: DEVICE_MAC,
                ethertype: EthernetProtocol::Ipv4,
            }
            .emit(&mut EthernetFrame::new_unchecked(&mut f[..]));
            ip.emit(&mut Ipv4Packet::new_unchecked(&mut f[14..34]), &caps);
            repr.emit(
                &mut UdpPacket::new_unchecked(&mut f[34..]),
                &IpAddress::Ipv4(from),
                &IpAddress::Ipv4(DEVICE_IP),
                len - 8,
                |b| b.copy_from_slice(payload),
                &caps,
            );
        });
    }

    /// Every TCP segment the device has sent us so far.
    pub fn segments(&mut self) -> Vec<Segment> {
        let mut got = Vec::new();
        while let Some((rx, _)) = self.port.receive(Instant::ZERO) {
            rx.consume(|f| {
                let Ok(eth) = EthernetFrame::new_checked(f) else {
                    return;
                };
                if eth.ethertype() != EthernetProtocol::Ipv4 {
                    return;
                }
                let Ok(ip) = Ipv4Packet::new_checked(eth.payload()) else {
                    return;
                };
                if ip.next_header() != IpProtocol::Tcp {
                    return;
                }
                let Ok(tcp) = TcpPacket::new_checked(ip.payload()) else {
                    return;
                };
                let control = match (tcp.syn(), tcp.fin(), tcp.rst(), tcp.psh()) {
                    (true, ..) => TcpControl::Syn,
                    (_, true, ..) => TcpControl::Fin,
                    (_, _, true, _) => TcpControl::Rst,
                    (.., true) => TcpControl::Psh,
                    _ => TcpControl::None,
                };
                got.push(Segment {
                    control,
                    seq: tcp.seq_number(),
                    ack: tcp.ack().then(|| tcp.ack_number()),
                    payload: tcp.payload().to_vec(),
                });
            });
        }
        got
    }
}
