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
                *dropped += 1;
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
