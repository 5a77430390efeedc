//! Checksum offload in software: a `phy::Device` wrapper that verifies and
//! fills TCP and UDP checksums with [`checksum`](super::checksum), a word
//! at a time, and tells smoltcp to leave them alone.
//!
//! A NIC without checksum offload (the LAN9118, the Stellaris MAC) leaves
//! smoltcp to sum every byte 16 bits at a time. Wrapping the driver moves
//! that work here, a word at a time (see [`checksum`](super::checksum) for
//! what that saves):
//!
//! ```ignore
//! let mut nic = ChecksumOffload::new(Lan9118::new(base)?);
//! nic.share_window(1); // the driver's own methods, through `Deref`
//! let node = Node::new(&CONFIG, &net, &mut nic, memory, &USERS, responder, now)?;
//! ```
//!
//! Only checksums smoltcp would compute in software move: if the wrapped
//! device already offloads one (its capabilities say so), the wrapper
//! leaves that one to it. IPv4 header checksums (20 bytes) stay with
//! smoltcp.
//!
//! A received TCP or UDP frame with a wrong checksum, or that cannot be
//! checked whole (an IP fragment: smoltcp is built without reassembly), is
//! handed to smoltcp as an empty frame, which it ignores, and counted.

use core::ops::{Deref, DerefMut};

use smoltcp::phy::{self, Checksum, Device, DeviceCapabilities, PacketMeta};
use smoltcp::time::Instant;

use super::checksum;

/// A device whose TCP and UDP checksums are done by [`checksum`].
#[derive(Debug)]
pub struct ChecksumOffload<D> {
    inner: D,
    /// Whether this wrapper does the TCP and the UDP checksum (each only if
    /// the inner device left it to software).
    tcp: bool,
    udp: bool,
    dropped: u32,
}

impl<D: Device> ChecksumOffload<D> {
    /// Wraps `inner`.
    pub fn new(inner: D) -> Self {
        let caps = inner.capabilities().checksum;
        ChecksumOffload {
            inner,
            tcp: matches!(caps.tcp, Checksum::Both),
            udp: matches!(caps.udp, Checksum::Both),
            dropped: 0,
        }
    }
}

impl<D> ChecksumOffload<D> {
    /// Received frames dropped for a wrong or uncheckable checksum.
    pub fn bad_checksums(&self) -> u32 {
        self.dropped
    }
}

/// The wrapper stands in for the driver everywhere: its own methods (stats,
/// interrupts, ...) stay reachable as before.
impl<D> Deref for ChecksumOffload<D> {
    type Target = D;
    fn deref(&self) -> &D {
        &self.inner
    }
}

impl<D> DerefMut for ChecksumOffload<D> {
    fn deref_mut(&mut self) -> &mut D {
        &mut self.inner
    }
}

impl<D: Device> Device for ChecksumOffload<D> {
    type RxToken<'a>
        = RxToken<'a, D::RxToken<'a>>
    where
        Self: 'a;
    type TxToken<'a>
        = TxToken<D::TxToken<'a>>
    where
        Self: 'a;

    fn receive(&mut self, now: Instant) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        let (tcp, udp) = (self.tcp, self.udp);
        let (rx, tx) = self.inner.receive(now)?;
        Some((
            RxToken {
                inner: rx,
                tcp,
                udp,
                dropped: &mut self.dropped,
            },
            TxToken {
                inner: tx,
                tcp,
                udp,
            },
        ))
    }

    fn transmit(&mut self, now: Instant) -> Option<Self::TxToken<'_>> {
        let (tcp, udp) = (self.tcp, self.udp);
        let tx = self.inner.transmit(now)?;
        Some(TxToken {
            inner: tx,
            tcp,
            udp,
        })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = self.inner.capabilities();
        if self.tcp {
            caps.checksum.tcp = Checksum::None;
        }
        if self.udp {
            caps.checksum.udp = Checksum::None;
        }
        caps
    }
}

/// The frame's segment, if this wrapper handles its checksum.
fn ours(frame: &[u8], tcp: bool, udp: bool) -> Option<checksum::Transport> {
    let t = checksum::transport(frame);
    match t.is_udp() {
        Some(true) if udp => Some(t),
        Some(false) if tcp => Some(t),
        _ => None,
    }
}

/// A received frame, checked before smoltcp sees it.
pub struct RxToken<'a, T> {
    inner: T,
    tcp: bool,
    udp: bool,
    dropped: &'a mut u32,
}

impl<T: phy::RxToken> phy::RxToken for RxToken<'_, T> {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        let RxToken {
            inner,
            tcp,
            udp,
            dropped,
        } = self;
        inner.consume(|frame| {
            if ours(frame, tcp, udp).is_some_and(|t| !t.verify(frame)) {
                *dropped = dropped.saturating_add(1);
                // smoltcp skips an empty frame without a word.
                return f(&[]);
            }
            f(frame)
        })
    }

    fn meta(&self) -> PacketMeta {
        self.inner.meta()
    }
}

/// A frame to send: its checksum is filled after smoltcp builds it.
pub struct TxToken<T> {
    inner: T,
    tcp: bool,
    udp: bool,
}

impl<T: phy::TxToken> phy::TxToken for TxToken<T> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let (tcp, udp) = (self.tcp, self.udp);
        self.inner.consume(len, |frame| {
            let result = f(frame);
            if let Some(t) = ours(frame, tcp, udp) {
                t.fill(frame);
            }
            result
        })
    }

    fn set_meta(&mut self, meta: PacketMeta) {
        self.inner.set_meta(meta)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::checksum::tests::{frame, payload};
    use phy::{RxToken as _, TxToken as _};
    use smoltcp::wire::IpProtocol;

    /// A device with one frame to receive, that keeps what it sends.
    struct Fake {
        rx: Option<Vec<u8>>,
        sent: Vec<Vec<u8>>,
        caps: DeviceCapabilities,
    }

    struct FakeRx(Vec<u8>);
    struct FakeTx<'a>(&'a mut Vec<Vec<u8>>);

    impl phy::RxToken for FakeRx {
        fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
            f(&self.0)
        }
    }

    impl phy::TxToken for FakeTx<'_> {
        fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
            let mut buf = vec![0; len];
            let r = f(&mut buf);
            self.0.push(buf);
            r
        }
    }

    impl Device for Fake {
        type RxToken<'a> = FakeRx;
        type TxToken<'a> = FakeTx<'a>;
        fn receive(&mut self, _: Instant) -> Option<(FakeRx, FakeTx<'_>)> {
            let frame = self.rx.take()?;
            Some((FakeRx(frame), FakeTx(&mut self.sent)))
        }
        fn transmit(&mut self, _: Instant) -> Option<FakeTx<'_>> {
            Some(FakeTx(&mut self.sent))
        }
        fn capabilities(&self) -> DeviceCapabilities {
            self.caps.clone()
        }
    }

    fn fake(rx: Option<Vec<u8>>) -> Fake {
        Fake {
            rx,
            sent: Vec::new(),
            caps: DeviceCapabilities::default(),
        }
    }

    /// What smoltcp would be handed for `frame`.
    fn received(dev: &mut ChecksumOffload<Fake>, frame: Vec<u8>) -> Vec<u8> {
        dev.inner.rx = Some(frame);
        let (rx, _) = dev.receive(Instant::ZERO).expect("a frame");
        rx.consume(|f| f.to_vec())
    }

    #[test]
    fn takes_tcp_and_udp_checksums_off_smoltcp() {
        let dev = ChecksumOffload::new(fake(None));
        let caps = dev.capabilities().checksum;
        assert!(matches!(caps.tcp, Checksum::None));
        assert!(matches!(caps.udp, Checksum::None));
        assert!(
            matches!(caps.ipv4, Checksum::Both),
            "IPv4 headers stay with smoltcp"
        );
    }

    #[test]
    fn passes_good_frames_and_drops_bad_ones() {
        let mut dev = ChecksumOffload::new(fake(None));
        for protocol in [IpProtocol::Tcp, IpProtocol::Udp] {
            let good = frame(protocol, &payload(300), 0);
            assert_eq!(received(&mut dev, good.clone()), good);
            let mut bad = good.clone();
            bad[100] ^= 0x40;
            assert_eq!(received(&mut dev, bad), Vec::<u8>::new(), "{protocol}");
        }
        assert_eq!(dev.bad_checksums(), 2);
    }

    #[test]
    fn fills_the_checksum_of_every_frame_sent() {
        let mut dev = ChecksumOffload::new(fake(None));
        for protocol in [IpProtocol::Tcp, IpProtocol::Udp] {
            let good = frame(protocol, &payload(77), 0);
            let mut blank = good.clone();
            let field = if protocol == IpProtocol::Tcp {
                34 + 16
            } else {
                34 + 6
            };
            blank[field..field + 2].fill(0);
            let tx = dev.transmit(Instant::ZERO).expect("room");
            tx.consume(blank.len(), |buf| buf.copy_from_slice(&blank));
            assert_eq!(dev.inner.sent.pop(), Some(good), "{protocol}");
        }
    }

    #[test]
    fn leaves_a_checksum_the_device_offloads_alone() {
        let mut inner = fake(None);
        inner.caps.checksum.tcp = Checksum::None;
        let mut dev = ChecksumOffload::new(inner);
        assert!(matches!(dev.capabilities().checksum.tcp, Checksum::None));
        assert!(matches!(dev.capabilities().checksum.udp, Checksum::None));
        let mut bad_tcp = frame(IpProtocol::Tcp, &payload(40), 0);
        bad_tcp[60] ^= 1;
        assert_eq!(
            received(&mut dev, bad_tcp.clone()),
            bad_tcp,
            "the NIC checked it"
        );
        let mut bad_udp = frame(IpProtocol::Udp, &payload(40), 0);
        bad_udp[60] ^= 1;
        assert!(received(&mut dev, bad_udp).is_empty(), "UDP is still ours");
    }
}
