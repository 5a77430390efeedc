//! The WIZnet W5500 in MACRAW mode, as an embassy-net-driver [`Driver`].
//!
//! The W5500 is normally used with its own TCP/IP stack. In MACRAW mode its
//! socket 0 takes the whole 16 KiB receive and 16 KiB transmit buffers and
//! carries raw Ethernet frames, so smoltcp can do the networking. The
//! `w5500` crate (0.6) does the SPI and MACRAW set-up ([`RawDevice`]); this
//! module gives it the `Driver` interface, so it reaches smoltcp through the
//! same [`Adapter`](crate::Adapter) as every embassy NIC.
//!
//! How the chip's behaviour maps onto tokens:
//!
//! - **Receive.** The chip has no "is a frame waiting" register that the
//!   `w5500` crate exposes short of reading the frame, so `receive` reads
//!   the next frame into a buffer here and hands out a token for it. The
//!   frame stays in that buffer until smoltcp consumes the token, so a token
//!   dropped unused loses nothing.
//! - **Transmit.** `RawDevice::write_frame` waits until the chip has sent
//!   each frame (SEND_OK), so a transmit slot is always free: `transmit`
//!   always returns a token.
//! - **Burst size.** smoltcp reads it as how many frames the device can
//!   *receive* back to back, and caps TCP windows with it: the 10 full
//!   frames the chip's 16 KiB receive buffer holds.
//! - **Errors.** Token consumption cannot fail in either trait, so SPI errors
//!   and frames the chip handed over too long to be Ethernet are counted in
//!   [`Stats`], never dropped silently.
//! - **Waking.** Nothing here takes an interrupt: the board wakes on the
//!   chip's INTn pin ([`W5500::enable_receive_interrupt`]) or polls.
//! - **Link.** After MACRAW set-up the `w5500` crate gives no register
//!   access, so the PHY's link bit can only be read before it ([`link_up`],
//!   and once in [`W5500::new`]); [`Driver::link_state`] reports `Up`.
//!   Frames simply start flowing again when a cable comes back.

use core::fmt;
use core::task::Context;

use embassy_net_driver::{self as driver, Capabilities, Driver, HardwareAddress, LinkState};
use w5500::bus::Bus;
use w5500::raw_device::RawDevice;
use w5500::register::{self, socketn};
use w5500::{InitializeError, MacAddress, UninitializedDevice};

/// The largest Ethernet frame smoltcp sends, without FCS.
pub const MTU: usize = 1514;

/// The receive buffer: larger than [`MTU`] so a VLAN-tagged frame (1518)
/// still fits, and so a frame that *fills* it can be told apart as too long.
const RX_BUFFER: usize = 1536;

/// Full frames the chip's 16 KiB MACRAW receive buffer holds (each with a
/// 2-byte length). smoltcp caps every TCP receive window it advertises at
/// this many segments, so that a peer cannot overrun the buffer.
const RX_BURST: usize = 16 * 1024 / (MTU + 2);

/// What the VERSIONR register of a W5500 reads.
pub const CHIP_VERSION: u8 = 0x04;

/// PHYCFGR bit 0: link up.
const PHY_LINK: u8 = 1 << 0;

/// Why the chip could not be brought up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Error<E> {
    /// The SPI transfer failed.
    Spi(E),
    /// VERSIONR did not read [`CHIP_VERSION`]: no W5500 answers on this bus
    /// (wiring, chip select, SPI mode) or it is still in reset.
    NotAW5500 {
        /// What VERSIONR read.
        version: u8,
    },
}

impl<E: fmt::Debug> fmt::Display for Error<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Spi(e) => write!(f, "SPI error talking to the W5500: {e:?}"),
            Error::NotAW5500 { version } => write!(
                f,
                "VERSIONR reads {version:#04x}, not {CHIP_VERSION:#04x}: no W5500 on this bus"
            ),
        }
    }
}

/// What the driver has done, and what went wrong.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Stats {
    /// Frames read from the chip.
    pub rx_frames: u32,
    /// Frames the chip sent.
    pub tx_frames: u32,
    /// Frames read that filled the whole receive buffer: too long for
    /// Ethernet, so dropped (the chip skips the rest of such a frame).
    pub rx_too_long: u32,
    /// Frames not sent: an SPI error, or the chip took fewer bytes than the
    /// frame has.
    pub tx_failed: u32,
    /// SPI errors while reading.
    pub rx_spi_errors: u32,
}

/// Reads the PHY's link bit (PHYCFGR) straight from the bus, before the
/// chip is handed to [`W5500::new`]: auto-negotiation takes a few seconds
/// after reset, and a board may want to wait for it.
pub fn link_up<B: Bus>(bus: &mut B) -> Result<bool, B::Error> {
    let mut phy = [0];
    bus.read_frame(register::COMMON, register::common::PHY_CONFIG, &mut phy)?;
    Ok(phy[0] & PHY_LINK != 0)
}

/// A W5500 in MACRAW mode.
pub struct W5500<B: Bus> {
    raw: RawDevice<B>,
    mac: [u8; 6],
    /// Whether the PHY had a link when the chip was set up.
    link_at_setup: bool,
    /// The frame read from the chip that smoltcp has not consumed yet
    /// (`rx_len > 0`).
    rx: [u8; RX_BUFFER],
    rx_len: usize,
    /// Where smoltcp writes a frame before it goes over SPI.
    tx: [u8; MTU],
    stats: Stats,
}

impl<B: Bus> W5500<B> {
    /// Checks that a W5500 answers on `bus`, reads its link state, resets it
    /// and puts it in MACRAW mode with MAC filtering for `mac` (its own and
    /// broadcast frames; multicast other than broadcast is not received).
    ///
    /// Release the chip's RSTn pin (and wait ~2 ms) before calling this.
    pub fn new(mut bus: B, mac: [u8; 6]) -> Result<Self, Error<B::Error>> {
        let mut version = [0];
        bus.read_frame(register::COMMON, register::common::VERSION, &mut version)
            .map_err(Error::Spi)?;
        if version[0] != CHIP_VERSION {
            return Err(Error::NotAW5500 {
                version: version[0],
            });
        }
        let link_at_setup = link_up(&mut bus).map_err(Error::Spi)?;
        let raw = UninitializedDevice::new(bus)
            .initialize_macraw(MacAddress { octets: mac })
            .map_err(|e| match e {
                InitializeError::SpiError(e) => Error::Spi(e),
                // MACRAW set-up never checks the chip version; it was checked above.
                _ => Error::NotAW5500 {
                    version: version[0],
                },
            })?;
        Ok(W5500 {
            raw,
            mac,
            link_at_setup,
            rx: [0; RX_BUFFER],
            rx_len: 0,
            tx: [0; MTU],
            stats: Stats::default(),
        })
    }

    /// Whether the PHY had a link when [`W5500::new`] ran.
    pub fn link_at_setup(&self) -> bool {
        self.link_at_setup
    }

    /// Makes INTn go low while a received frame's RECV interrupt is pending.
    pub fn enable_receive_interrupt(&mut self) -> Result<(), B::Error> {
        self.raw
            .enable_interrupts(socketn::Interrupt::Receive as u8)
    }

    /// Acknowledges the chip's interrupts, so INTn goes high until the next
    /// frame. Call it *before* draining frames: a frame that arrives after it
    /// pulls INTn low again.
    pub fn clear_interrupts(&mut self) -> Result<(), B::Error> {
        self.raw.clear_interrupts()
    }

    /// Counters.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Reads the next frame from the chip into `rx`, unless one is already
    /// waiting there. Whether a frame is waiting.
    fn fill(&mut self) -> bool {
        if self.rx_len > 0 {
            return true;
        }
        match self.raw.read_frame(&mut self.rx) {
            Ok(0) => false,
            Ok(n) if n >= RX_BUFFER => {
                // read_frame truncates to the buffer and skips the rest in
                // the chip: this frame is lost, and counted.
                self.stats.rx_too_long += 1;
                false
            }
            Ok(n) => {
                self.stats.rx_frames += 1;
                self.rx_len = n;
                true
            }
            Err(_) => {
                // The chip's read pointer moves only at the end of a
                // successful read, so the frame is still in the chip.
                self.stats.rx_spi_errors += 1;
                false
            }
        }
    }
}

impl<B: Bus> Driver for W5500<B> {
    type RxToken<'a>
        = RxToken<'a>
    where
        Self: 'a;
    type TxToken<'a>
        = TxToken<'a, B>
    where
        Self: 'a;

    fn receive(&mut self, _: &mut Context) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        if !self.fill() {
            return None;
        }
        let W5500 {
            raw,
            rx,
            rx_len,
            tx,
            stats,
            ..
        } = self;
        Some((RxToken { rx, len: rx_len }, TxToken { raw, tx, stats }))
    }

    fn transmit(&mut self, _: &mut Context) -> Option<Self::TxToken<'_>> {
        Some(TxToken {
            raw: &mut self.raw,
            tx: &mut self.tx,
            stats: &mut self.stats,
        })
    }

    fn link_state(&mut self, _: &mut Context) -> LinkState {
        LinkState::Up
    }

    fn capabilities(&self) -> Capabilities {
        // The chip computes no checksums in MACRAW mode: leave them all to
        // software (the default).
        let mut caps = Capabilities::default();
        caps.max_transmission_unit = MTU;
        caps.max_burst_size = Some(RX_BURST);
        caps
    }

    fn hardware_address(&self) -> HardwareAddress {
        HardwareAddress::Ethernet(self.mac)
    }
}

/// The frame waiting in the driver's receive buffer.
pub struct RxToken<'a> {
    rx: &'a mut [u8; RX_BUFFER],
    len: &'a mut usize,
}

impl driver::RxToken for RxToken<'_> {
    fn consume<R, F>(self, f: F) -> R
    where
        F: FnOnce(&mut [u8]) -> R,
    {
        let len = core::mem::take(self.len);
        f(&mut self.rx[..len])
    }
}

/// Sends one frame when consumed.
pub struct TxToken<'a, B: Bus> {
    raw: &'a mut RawDevice<B>,
    tx: &'a mut [u8; MTU],
    stats: &'a mut Stats,
}

impl<B: Bus> driver::TxToken for TxToken<'_, B> {
    /// # Panics
    ///
    /// If `len` exceeds [`MTU`], which the driver's capabilities forbid.
    fn consume<R, F>(self, len: usize, f: F) -> R
    where
        F: FnOnce(&mut [u8]) -> R,
    {
        let frame = &mut self.tx[..len];
        let r = f(frame);
        match self.raw.write_frame(frame) {
            Ok(n) if n == len => self.stats.tx_frames += 1,
            _ => self.stats.tx_failed += 1,
        }
        r
    }
}
