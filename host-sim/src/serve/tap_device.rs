//! The TAP interface as a smoltcp `Device` that survives a link going down.
//!
//! smoltcp's `TunTapInterface` panics when a write fails, and writing to a
//! TAP interface that is down fails with `EIO`: `ip link set tap0 down`
//! while a reply is in flight would kill the device. So `TunTapInterface`
//! only attaches to the interface (`TUNSETIFF`, in [`super::tap`]); frames
//! move through a duplicate of its file descriptor, here, and a frame that
//! cannot be sent is dropped, as a NIC with its cable pulled drops it. TCP
//! retransmits once the link is back.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};

use smoltcp::phy::{self, Device, DeviceCapabilities, Medium, TunTapInterface};
use smoltcp::time::Instant;

/// Ethernet header: what a frame adds to the interface's (IP) MTU.
const ETHERNET_HEADER: usize = 14;

/// A TAP interface, frames in and out.
///
/// One receive and one transmit buffer, each the size of the largest
/// frame, live as long as the device: with a 64 KiB MTU, a fresh zeroed
/// buffer per frame cost more than the frame's own system call.
pub struct TapDevice {
    /// Non-blocking (the flag is shared with the descriptor it duplicates).
    file: File,
    /// Largest frame, Ethernet header included.
    mtu: usize,
    /// The frame last read; a receive token lends it to smoltcp.
    rx: Vec<u8>,
    /// Where smoltcp builds the frame to send. Not cleared between frames:
    /// smoltcp writes every byte of a frame it emits, padding included.
    tx: Vec<u8>,
    /// Sending fails right now: logged once when it starts, once when it ends.
    tx_failing: bool,
    name: String,
}

impl TapDevice {
    /// Takes over the frames of an attached interface whose (IP) MTU is
    /// `ip_mtu`: frames are up to `ip_mtu` plus the Ethernet header.
    pub fn new(attached: TunTapInterface, name: &str, ip_mtu: usize) -> io::Result<Self> {
        let mtu = ip_mtu + ETHERNET_HEADER;
        // The duplicate keeps the interface attached once `attached` closes
        // its own descriptor.
        // SAFETY: the descriptor is open while `attached` lives, which is
        // longer than this borrow; the clone is a new descriptor we own.
        let fd = unsafe { BorrowedFd::borrow_raw(attached.as_raw_fd()) };
        let file = File::from(fd.try_clone_to_owned()?);
        Ok(TapDevice {
            file,
            mtu,
            rx: vec![0; mtu],
            tx: vec![0; mtu],
            tx_failing: false,
            name: name.to_owned(),
        })
    }
}

impl AsRawFd for TapDevice {
    fn as_raw_fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }
}

impl Device for TapDevice {
    type RxToken<'a> = RxToken<'a>;
    type TxToken<'a> = TxToken<'a>;

    fn receive(&mut self, _: Instant) -> Option<(RxToken<'_>, TxToken<'_>)> {
        match (&self.file).read(&mut self.rx) {
            Ok(n) => {
                let TapDevice {
                    file,
                    rx,
                    tx,
                    tx_failing,
                    name,
                    ..
                } = self;
                let tx = TxToken {
                    file,
                    buf: tx,
                    failing: tx_failing,
                    name,
                };
                Some((RxToken { frame: &rx[..n] }, tx))
            }
            Err(e)
                if e.kind() == io::ErrorKind::WouldBlock
                    || e.kind() == io::ErrorKind::Interrupted =>
            {
                None
            }
            Err(e) => {
                log::warn!("{}: cannot receive: {e}", self.name);
                None
            }
        }
    }

    fn transmit(&mut self, _: Instant) -> Option<TxToken<'_>> {
        Some(TxToken {
            file: &self.file,
            buf: &mut self.tx,
            failing: &mut self.tx_failing,
            name: &self.name,
        })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = self.mtu;
        caps
    }
}

/// A received frame, lent from the device's receive buffer.
pub struct RxToken<'a> {
    frame: &'a [u8],
}

impl phy::RxToken for RxToken<'_> {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(self.frame)
    }
}

/// Permission to send one frame, built in the device's transmit buffer.
pub struct TxToken<'a> {
    file: &'a File,
    buf: &'a mut Vec<u8>,
    failing: &'a mut bool,
    name: &'a str,
}

impl phy::TxToken for TxToken<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        // smoltcp never asks for more than the MTU; should it, grow once.
        if self.buf.len() < len {
            self.buf.resize(len, 0);
        }
        let frame = &mut self.buf[..len];
        let result = f(frame);
        let mut file = self.file;
        match file.write(frame) {
            Ok(_) if std::mem::replace(self.failing, false) => {
                log::info!("{}: sending works again", self.name)
            }
            Ok(_) => {}
            // The host's queue for the interface is full: a congested link.
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                log::debug!("{}: host queue full, frame dropped", self.name)
            }
            Err(e) if !std::mem::replace(self.failing, true) => {
                log::warn!(
                    "{}: cannot send ({e}); is the interface down? Frames are dropped until it is up",
                    self.name
                )
            }
            Err(_) => {}
        }
        result
    }
}
