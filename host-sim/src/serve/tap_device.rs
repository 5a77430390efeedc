//! The TAP interface as a smoltcp `Device` that survives a link going down.
//!
//! smoltcp's `TunTapInterface` panics when a write fails, and writing to a
//! TAP interface that is down fails with `EIO`: `ip link set tap0 down`
//! while a reply is in flight would kill the device. So `TunTapInterface`
//! only attaches to the interface (`TUNSETIFF`, in [`super::tap`]); frames
//! move through a duplicate of its file descriptor, here, and a frame that
//! cannot be sent is dropped, as a NIC with its cable pulled drops it. TCP
//! retransmits once the link is back.

use std::cell::Cell;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};

use smoltcp::phy::{self, Device, DeviceCapabilities, Medium, TunTapInterface};
use smoltcp::time::Instant;

/// A TAP interface, frames in and out.
pub struct TapDevice {
    /// Non-blocking (the flag is shared with the descriptor it duplicates).
    file: File,
    /// Largest frame, Ethernet header included.
    mtu: usize,
    /// Sending fails right now: logged once when it starts, once when it ends.
    tx_failing: Cell<bool>,
    name: String,
}

impl TapDevice {
    /// Takes over the frames of an attached interface.
    pub fn new(attached: TunTapInterface, name: &str) -> io::Result<Self> {
        let mtu = attached.capabilities().max_transmission_unit;
        // The duplicate keeps the interface attached once `attached` closes
        // its own descriptor.
        // SAFETY: the descriptor is open while `attached` lives, which is
        // longer than this borrow; the clone is a new descriptor we own.
        let fd = unsafe { BorrowedFd::borrow_raw(attached.as_raw_fd()) };
        let file = File::from(fd.try_clone_to_owned()?);
        Ok(TapDevice {
            file,
            mtu,
            tx_failing: Cell::new(false),
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
    type RxToken<'a> = RxToken;
    type TxToken<'a> = TxToken<'a>;

    fn receive(&mut self, _: Instant) -> Option<(RxToken, TxToken<'_>)> {
        let mut frame = vec![0; self.mtu];
        match (&self.file).read(&mut frame) {
            Ok(n) => {
                frame.truncate(n);
                Some((RxToken { frame }, self.tx()))
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
        Some(self.tx())
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = self.mtu;
        caps
    }
}

impl TapDevice {
    fn tx(&self) -> TxToken<'_> {
        TxToken {
            file: &self.file,
            failing: &self.tx_failing,
            name: &self.name,
        }
    }
}

/// A received frame.
pub struct RxToken {
    frame: Vec<u8>,
}

impl phy::RxToken for RxToken {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(&self.frame)
    }
}

/// Permission to send one frame.
pub struct TxToken<'a> {
    file: &'a File,
    failing: &'a Cell<bool>,
    name: &'a str,
}

impl phy::TxToken for TxToken<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut frame = vec![0; len];
        let result = f(&mut frame);
        let mut file = self.file;
        match file.write(&frame) {
            Ok(_) if self.failing.replace(false) => {
                log::info!("{}: sending works again", self.name)
            }
            Ok(_) => {}
            // The host's queue for the interface is full: a congested link.
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                log::debug!("{}: host queue full, frame dropped", self.name)
            }
            Err(e) if !self.failing.replace(true) => {
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
