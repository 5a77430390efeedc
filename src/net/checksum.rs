//! TCP and UDP checksums over whole Ethernet frames, a 32-bit word at a
//! time.
//!
//! smoltcp computes the Internet checksum 16 bits at a time, and a TCP echo
//! sums every byte twice (verified on the way in, computed on the way out).
//! On the mps2-an385 board that was 18 % of every instruction the firmware
//! executed while streaming (counted under QEMU). Adding 32-bit words into
//! a 64-bit accumulator gives the same one's complement sum (RFC 1071,
//! section 2) in about three instructions per word on a Cortex-M3, and the
//! same echo then spends 22 % fewer instructions on checksums.
//!
//! [`offload`](super::offload) uses these functions to take the work off
//! smoltcp; they are plain functions on byte slices, tested against
//! smoltcp's own checksums below.

/// Where the IPv4 header starts in an Ethernet frame.
const IP: usize = 14;
const ETHERTYPE_IPV4: [u8; 2] = [0x08, 0x00];
const PROTOCOL_TCP: u8 = 6;
const PROTOCOL_UDP: u8 = 17;
/// Offset of the checksum field in a TCP header.
const TCP_CHECKSUM: usize = 16;
/// Offset of the checksum field in a UDP header.
const UDP_CHECKSUM: usize = 6;

/// What a frame's checksummed transport segment is, as far as this module
/// is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// Not a TCP or UDP segment over IPv4 (ARP, ICMP, ...): nothing to do.
    Other,
    /// A TCP or UDP segment: the byte range of the segment in the frame,
    /// where its checksum field is, and the pseudo-header's partial sum.
    Segment {
        /// Start of the TCP or UDP header.
        start: usize,
        /// One past the segment's last byte (the IPv4 total length; any
        /// Ethernet padding after it is not summed).
        end: usize,
        /// The checksum field's offset in the frame.
        field: usize,
        /// UDP (whose checksum may be absent) rather than TCP.
        udp: bool,
        /// Sum of the pseudo-header (addresses, protocol, length).
        pseudo: u64,
    },
    /// TCP or UDP that cannot be checked as a whole: an IP fragment, or
    /// lengths that do not fit the frame. Such a frame must not reach
    /// smoltcp unverified.
    Unverifiable {
        /// UDP rather than TCP.
        udp: bool,
    },
}

impl Transport {
    /// The segment is UDP (`Some(true)`), TCP (`Some(false)`), or neither.
    pub fn is_udp(&self) -> Option<bool> {
        match *self {
            Transport::Other => None,
            Transport::Segment { udp, .. } | Transport::Unverifiable { udp } => Some(udp),
        }
    }

    /// Whether `frame`, which this was found in, has a right checksum.
    /// [`Transport::Other`] passes; [`Transport::Unverifiable`] fails.
    pub fn verify(self, frame: &[u8]) -> bool {
        match self {
            Transport::Other => true,
            Transport::Unverifiable { .. } => false,
            Transport::Segment {
                start,
                end,
                field,
                udp,
                pseudo,
            } => {
                // A UDP checksum of zero means the sender computed none.
                if udp && frame[field..field + 2] == [0, 0] {
                    return true;
                }
                fold(pseudo + sum_be(&frame[start..end])) == 0xFFFF
            }
        }
    }

    /// Computes and writes the checksum of `frame`, which this was found
    /// in, whatever its checksum field held. Anything but a
    /// [`Transport::Segment`] is left alone.
    pub fn fill(self, frame: &mut [u8]) {
        let Transport::Segment {
            start,
            end,
            field,
            udp,
            pseudo,
        } = self
        else {
            return;
        };
        frame[field..field + 2].fill(0);
        let mut checksum = !fold(pseudo + sum_be(&frame[start..end]));
        // Zero would say "no checksum" in UDP; its one's complement twin
        // 0xFFFF says the same sum.
        if udp && checksum == 0 {
            checksum = 0xFFFF;
        }
        frame[field..field + 2].copy_from_slice(&checksum.to_be_bytes());
    }
}

/// Finds the TCP or UDP segment in an Ethernet frame.
pub fn transport(frame: &[u8]) -> Transport {
    if frame.len() < IP + 20 || frame[12..14] != ETHERTYPE_IPV4 {
        return Transport::Other;
    }
    let ip = &frame[IP..];
    let protocol = ip[9];
    let udp = match protocol {
        PROTOCOL_TCP => false,
        PROTOCOL_UDP => true,
        _ => return Transport::Other,
    };
    let header_len = usize::from(ip[0] & 0x0F) * 4;
    let total_len = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
    let fragmented = u16::from_be_bytes([ip[6], ip[7]]) & 0x3FFF != 0;
    let checksum_at = if udp { UDP_CHECKSUM } else { TCP_CHECKSUM };
    // The segment must at least reach past its checksum field.
    if ip[0] >> 4 != 4
        || fragmented
        || header_len < 20
        || total_len > ip.len()
        || total_len < header_len + checksum_at + 2
    {
        return Transport::Unverifiable { udp };
    }
    let segment_len = (total_len - header_len) as u64;
    let pseudo = u64::from(u32::from_be_bytes([ip[12], ip[13], ip[14], ip[15]]))
        + u64::from(u32::from_be_bytes([ip[16], ip[17], ip[18], ip[19]]))
        + u64::from(protocol)
        + segment_len;
    let start = IP + header_len;
    Transport::Segment {
        start,
        end: IP + total_len,
        field: start + checksum_at,
        udp,
        pseudo,
    }
}

/// Whether the frame's TCP or UDP checksum is right (see
/// [`Transport::verify`]).
pub fn verify(frame: &[u8]) -> bool {
    transport(frame).verify(frame)
}

/// Computes and writes the frame's TCP or UDP checksum (see
/// [`Transport::fill`]).
pub fn fill(frame: &mut [u8]) {
    transport(frame).fill(frame)
}

/// The sum of `data` as big-endian 16-bit words (a trailing odd byte is the
/// high half of a last word), not yet folded.
///
/// It adds native-endian 32-bit words: one's complement addition does not
/// care about byte order as long as every word is read the same way, so
/// the folded result only needs swapping back on a little-endian CPU.
fn sum_be(data: &[u8]) -> u64 {
    let mut sum = 0u64;
    let mut words = data.chunks_exact(32);
    for block in &mut words {
        // Eight words per round: few loop branches, and the compiler keeps
        // the accumulator in two registers (add with carry).
        for word in block.chunks_exact(4) {
            sum += u64::from(u32::from_ne_bytes([word[0], word[1], word[2], word[3]]));
        }
    }
    let mut rest = words.remainder().chunks_exact(4);
    for word in &mut rest {
        sum += u64::from(u32::from_ne_bytes([word[0], word[1], word[2], word[3]]));
    }
    let tail = rest.remainder();
    let mut last = [0u8; 4];
    last[..tail.len()].copy_from_slice(tail);
    sum += u64::from(u32::from_ne_bytes(last));
    let folded = fold(sum);
    u64::from(if cfg!(target_endian = "little") {
        folded.swap_bytes()
    } else {
        folded
    })
}

/// Folds a sum of 16-bit words (in any wider integer) to 16 bits, end-around
/// carries included.
fn fold(mut sum: u64) -> u16 {
    while sum > 0xFFFF {
        sum = (sum & 0xFFFF) + (sum >> 16);
    }
    sum as u16
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use smoltcp::phy::ChecksumCapabilities;
    use smoltcp::wire::{
        EthernetAddress, EthernetFrame, EthernetProtocol, EthernetRepr, IpAddress, IpProtocol,
        Ipv4Address, Ipv4Packet, Ipv4Repr, TcpControl, TcpPacket, TcpRepr, TcpSeqNumber, UdpPacket,
        UdpRepr,
    };

    const SRC: Ipv4Address = Ipv4Address::new(10, 0, 2, 2);
    const DST: Ipv4Address = Ipv4Address::new(10, 0, 2, 15);

    /// A frame built by smoltcp, checksums included, with `pad` bytes of
    /// Ethernet padding after the IP packet.
    pub(in crate::net) fn frame(protocol: IpProtocol, payload: &[u8], pad: usize) -> Vec<u8> {
        let caps = ChecksumCapabilities::default();
        let l4_len = match protocol {
            IpProtocol::Tcp => 20 + payload.len(),
            _ => 8 + payload.len(),
        };
        let mut buf = vec![0u8; 14 + 20 + l4_len + pad];
        let eth = EthernetRepr {
            src_addr: EthernetAddress([2, 0, 0, 0, 0, 1]),
            dst_addr: EthernetAddress([2, 0, 0, 0, 0, 2]),
            ethertype: EthernetProtocol::Ipv4,
        };
        eth.emit(&mut EthernetFrame::new_unchecked(&mut buf[..]));
        let ip = Ipv4Repr {
            src_addr: SRC,
            dst_addr: DST,
            next_header: protocol,
            payload_len: l4_len,
            hop_limit: 64,
        };
        ip.emit(&mut Ipv4Packet::new_unchecked(&mut buf[14..34]), &caps);
        let (src, dst) = (IpAddress::Ipv4(SRC), IpAddress::Ipv4(DST));
        let l4 = &mut buf[34..34 + l4_len];
        match protocol {
            IpProtocol::Tcp => {
                let tcp = TcpRepr {
                    src_port: 40000,
                    dst_port: 7,
                    control: TcpControl::Psh,
                    seq_number: TcpSeqNumber(0x1234_5678),
                    ack_number: Some(TcpSeqNumber(0x0BAD_CAFE)),
                    window_len: 5840,
                    window_scale: None,
                    max_seg_size: None,
                    sack_permitted: false,
                    sack_ranges: [None; 3],
                    timestamp: None,
                    payload,
                };
                tcp.emit(&mut TcpPacket::new_unchecked(l4), &src, &dst, &caps);
            }
            _ => {
                let udp = UdpRepr {
                    src_port: 40000,
                    dst_port: 7,
                };
                udp.emit(
                    &mut UdpPacket::new_unchecked(l4),
                    &src,
                    &dst,
                    payload.len(),
                    |p| p.copy_from_slice(payload),
                    &caps,
                );
            }
        }
        buf
    }

    pub(in crate::net) fn payload(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 + 3) as u8).collect()
    }

    #[test]
    fn agrees_with_smoltcp_for_every_length_and_padding() {
        for protocol in [IpProtocol::Tcp, IpProtocol::Udp] {
            for len in (0..80).chain([1455, 1456, 1457, 1458, 1459, 1460]) {
                for pad in [0, 1, 3] {
                    let mut f = frame(protocol, &payload(len), pad);
                    assert!(verify(&f), "{protocol} len {len} pad {pad}: smoltcp's sum");
                    let field = if protocol == IpProtocol::Tcp {
                        34 + 16
                    } else {
                        34 + 6
                    };
                    let theirs = [f[field], f[field + 1]];
                    f[field] ^= 0x5A;
                    fill(&mut f);
                    assert_eq!([f[field], f[field + 1]], theirs, "{protocol} len {len}");
                }
            }
        }
    }

    #[test]
    fn any_flipped_bit_fails() {
        for protocol in [IpProtocol::Tcp, IpProtocol::Udp] {
            let good = frame(protocol, &payload(101), 0);
            // Every bit of the pseudo-header's addresses and of the segment.
            for byte in (26..34).chain(34..good.len()) {
                for bit in 0..8 {
                    let mut f = good.clone();
                    f[byte] ^= 1 << bit;
                    let zero_udp_sum = protocol == IpProtocol::Udp && f[40..42] == [0, 0];
                    assert!(
                        !verify(&f) || zero_udp_sum,
                        "{protocol}: flipping bit {bit} of byte {byte} went unnoticed"
                    );
                }
            }
        }
    }

    #[test]
    fn padding_after_the_ip_packet_is_not_summed() {
        let mut f = frame(IpProtocol::Tcp, &payload(10), 6);
        let n = f.len();
        f[n - 6..].copy_from_slice(&[0xFF; 6]);
        assert!(verify(&f));
    }

    #[test]
    fn udp_without_a_checksum_passes_and_a_zero_sum_is_sent_as_ffff() {
        let mut f = frame(IpProtocol::Udp, &payload(20), 0);
        f[40..42].copy_from_slice(&[0, 0]);
        assert!(verify(&f), "checksum 0: none computed");

        // Find a payload whose checksum computes to zero: it must go out
        // as 0xFFFF (RFC 768), and still verify.
        let mut f = frame(IpProtocol::Udp, &[0, 0], 0);
        fill(&mut f);
        let sum = u16::from_be_bytes([f[40], f[41]]);
        // Adding `sum` into the two payload bytes makes the sum 0xFFFF, so
        // the complement to send is zero.
        f[42..44].copy_from_slice(&sum.to_be_bytes());
        fill(&mut f);
        assert_eq!(f[40..42], [0xFF, 0xFF]);
        assert!(verify(&f));
    }

    #[test]
    fn fragments_and_bad_lengths_are_unverifiable() {
        let good = frame(IpProtocol::Tcp, &payload(30), 0);
        let mut more_fragments = good.clone();
        more_fragments[20] |= 0x20;
        let mut offset = good.clone();
        offset[21] = 1;
        let mut too_long = good.clone();
        too_long[16..18].copy_from_slice(&2000u16.to_be_bytes());
        let mut too_short = good.clone();
        too_short[16..18].copy_from_slice(&30u16.to_be_bytes());
        let mut header_len = good.clone();
        header_len[14] = 0x44;
        for (name, f) in [
            ("more fragments", more_fragments),
            ("fragment offset", offset),
            ("total length past the frame", too_long),
            ("total length inside the TCP header", too_short),
            ("header length 16", header_len),
        ] {
            assert_eq!(
                transport(&f),
                Transport::Unverifiable { udp: false },
                "{name}"
            );
            assert!(!verify(&f), "{name}");
        }
    }

    #[test]
    fn other_frames_pass_untouched() {
        let mut arp = vec![0u8; 60];
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        let mut icmp = frame(IpProtocol::Udp, &payload(8), 0);
        icmp[23] = 1;
        for f in [arp, icmp, vec![0u8; 10]] {
            assert_eq!(transport(&f), Transport::Other);
            assert!(verify(&f));
            let mut g = f.clone();
            fill(&mut g);
            assert_eq!(f, g);
        }
    }
}
