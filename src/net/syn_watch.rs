//! Notices TCP SYNs on their way into smoltcp.
//!
//! [`drop_duplicate_handshakes`](super::tcp_slot::drop_duplicate_handshakes)
//! must look at every socket after any frame that could start a handshake,
//! before the next frame is processed. Only a segment with SYN set can: a
//! listening socket leaves `Listen` on nothing else. Checking after every
//! frame instead cost a walk of the whole pool per frame, 8 % of what a
//! board executes while it streams (instruction counts under QEMU). The
//! node reads its frames through [`SynWatch`], which costs a few header
//! reads per frame.

use smoltcp::phy::{self, Device, DeviceCapabilities, Medium, PacketMeta};
use smoltcp::time::Instant;

/// A device whose received frames are checked for TCP SYNs.
pub(crate) struct SynWatch<'d, D: ?Sized> {
    device: &'d mut D,
    /// Where the IP header starts in a frame of this device.
    ip_offset: usize,
    /// A frame received since the last [`SynWatch::take_syn`] carried a
    /// TCP SYN (or might have: see [`is_tcp_syn`]).
    syn: bool,
}

impl<'d, D: Device + ?Sized> SynWatch<'d, D> {
    pub(crate) fn new(device: &'d mut D, medium: Medium) -> Self {
        SynWatch {
            device,
            ip_offset: ip_offset(medium),
            syn: false,
        }
    }

    /// Whether a SYN came in since the last call.
    pub(crate) fn take_syn(&mut self) -> bool {
        core::mem::take(&mut self.syn)
    }
}

/// Where the IP header starts in a frame of `medium`.
fn ip_offset(medium: Medium) -> usize {
    match medium {
        Medium::Ethernet => 14,
        // A frame that is not Ethernet (the node runs on Ethernet and the
        // simulator; this is for completeness) starts with its IP header.
        #[allow(unreachable_patterns)]
        _ => 0,
    }
}

/// Whether `frame` may be a TCP segment with SYN set. Errs towards yes: a
/// frame it cannot read (an IPv4 fragment, a short frame) is not a
/// handshake smoltcp will take, and a false yes costs one walk of the pool.
fn is_tcp_syn(frame: &[u8], ip_offset: usize) -> bool {
    const ETHERTYPE_IPV4: [u8; 2] = [0x08, 0x00];
    const PROTOCOL_TCP: u8 = 6;
    const FLAG_SYN: u8 = 0x02;
    if ip_offset == 14 && frame.get(12..14) != Some(&ETHERTYPE_IPV4[..]) {
        return false;
    }
    let Some(ip) = frame.get(ip_offset..) else {
        return false;
    };
    if ip.len() < 20 || ip[0] >> 4 != 4 || ip[9] != PROTOCOL_TCP {
        return false;
    }
    let flags = usize::from(ip[0] & 0x0F) * 4 + 13;
    ip.get(flags).is_none_or(|f| f & FLAG_SYN != 0)
}

impl<D: Device + ?Sized> Device for SynWatch<'_, D> {
    type RxToken<'a>
        = RxToken<'a, D::RxToken<'a>>
    where
        Self: 'a;
    type TxToken<'a>
        = D::TxToken<'a>
    where
        Self: 'a;

    fn receive(&mut self, now: Instant) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        let SynWatch {
            device,
            ip_offset,
            syn,
        } = self;
        let (rx, tx) = device.receive(now)?;
        Some((
            RxToken {
                inner: rx,
                ip_offset: *ip_offset,
                syn,
            },
            tx,
        ))
    }

    fn transmit(&mut self, now: Instant) -> Option<Self::TxToken<'_>> {
        self.device.transmit(now)
    }

    fn capabilities(&self) -> DeviceCapabilities {
        self.device.capabilities()
    }
}

/// A received frame, looked at on its way to smoltcp.
pub(crate) struct RxToken<'a, T> {
    inner: T,
    ip_offset: usize,
    syn: &'a mut bool,
}

impl<T: phy::RxToken> phy::RxToken for RxToken<'_, T> {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        let RxToken {
            inner,
            ip_offset,
            syn,
        } = self;
        inner.consume(|frame| {
            *syn |= is_tcp_syn(frame, ip_offset);
            f(frame)
        })
    }

    fn meta(&self) -> PacketMeta {
        self.inner.meta()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An Ethernet frame with an IPv4 header of `ihl` words and a TCP
    /// header with `flags`.
    fn frame(protocol: u8, ihl: u8, flags: u8) -> Vec<u8> {
        let mut f = vec![0u8; 14 + usize::from(ihl) * 4 + 20];
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        f[14] = 0x40 | ihl;
        f[14 + 9] = protocol;
        f[14 + usize::from(ihl) * 4 + 13] = flags;
        f
    }

    #[test]
    fn finds_syn_and_syn_ack_only() {
        assert!(is_tcp_syn(&frame(6, 5, 0x02), 14), "SYN");
        assert!(is_tcp_syn(&frame(6, 5, 0x12), 14), "SYN-ACK");
        assert!(is_tcp_syn(&frame(6, 7, 0x02), 14), "SYN after IP options");
        assert!(!is_tcp_syn(&frame(6, 5, 0x10), 14), "ACK");
        assert!(!is_tcp_syn(&frame(6, 5, 0x18), 14), "PSH-ACK");
        assert!(!is_tcp_syn(&frame(6, 5, 0x11), 14), "FIN-ACK");
        assert!(!is_tcp_syn(&frame(17, 5, 0x02), 14), "UDP");
    }

    #[test]
    fn a_truncated_tcp_header_counts_as_syn() {
        let f = frame(6, 5, 0x10);
        assert!(is_tcp_syn(&f[..14 + 20 + 10], 14));
    }

    #[test]
    fn other_frames_are_not() {
        let mut arp = frame(6, 5, 0x02);
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        assert!(!is_tcp_syn(&arp, 14));
        assert!(!is_tcp_syn(&[0u8; 10], 14));
        let ip_only = frame(6, 5, 0x02);
        assert!(is_tcp_syn(&ip_only[14..], 0), "medium IP");
    }
}
