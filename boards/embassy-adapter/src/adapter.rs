//! [`Adapter`]: smoltcp 0.14's `phy::Device` over embassy's `Driver`.
//!
//! The two traits have the same shape — `receive` hands out a pair of
//! tokens, `transmit` one token, and a token does its I/O when consumed — so
//! the adapter mostly forwards. What needs care:
//!
//! - **Waking.** embassy's calls take a `Context`, smoltcp's take a
//!   timestamp. The adapter polls the driver with the waker it was built
//!   with: a no-op one ([`Adapter::new`]), or a [`WakeFlag`](crate::WakeFlag)'s
//!   so the owner can sleep until the driver has work
//!   ([`Adapter::with_waker`]).
//! - **No lost frames.** A driver hands out a receive pair only when it can
//!   also transmit (embassy's contract, which `embassy-stm32` follows), and a
//!   received frame leaves the driver only when smoltcp *consumes* its token.
//!   So when transmit is full the frame waits in the driver's ring; when
//!   smoltcp drops a token unused, the frame is offered again next poll.
//! - **Capabilities.** Both crates define the MTU the same way (the whole
//!   Ethernet frame without FCS: 1514 for a 1500-byte IP MTU), and both
//!   `Checksum` enums mean the same: what the *software* must still do
//!   (`Both`: verify and compute; `None`: the hardware does it all). They are
//!   mapped one to one, once, at construction, after checking that the
//!   medium is one this build of smoltcp speaks and the MTU can carry IPv4.
//!   The burst size too, which smoltcp uses for one thing: it caps every TCP
//!   receive window it advertises at that many segments, so a driver's
//!   receive ring is not overrun (`None`: no cap).

use core::fmt;
use core::task::{Context, Waker};

use embassy_net_driver::{self as driver, Driver, HardwareAddress, LinkState};
use smoltcp::phy::{self, DeviceCapabilities, Medium};
use smoltcp::time::Instant;
use smoltcp::wire::EthernetAddress;

/// Why a driver cannot be adapted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Unsupported {
    /// The driver's medium (from its hardware address) is not one this
    /// build supports: Ethernet always, IP with feature `medium-ip`.
    Medium,
    /// The driver's MTU cannot carry a minimum-size IPv4 packet (576 bytes,
    /// plus the Ethernet header on Ethernet). A driver that forgets to set
    /// its MTU reports 0, `Capabilities::default()`.
    MtuTooSmall {
        /// The driver's MTU.
        mtu: usize,
        /// The least the adapter accepts for this medium.
        min: usize,
    },
}

impl fmt::Display for Unsupported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unsupported::Medium => {
                f.write_str("the driver's medium is not supported by this build")
            }
            Unsupported::MtuTooSmall { mtu, min } => {
                write!(f, "the driver's MTU {mtu} is below the minimum {min}")
            }
        }
    }
}

/// Frames that went through the adapter, for a board's status line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Counters {
    /// Frames smoltcp consumed from the driver.
    pub rx_frames: u32,
    /// Frames smoltcp handed to the driver.
    pub tx_frames: u32,
}

/// A smoltcp `phy::Device` over an embassy-net-driver [`Driver`].
pub struct Adapter<D: Driver> {
    driver: D,
    /// Polls the driver. Drivers that have nothing ready keep it and call it
    /// from their interrupt handler, which is how a poll loop learns it may
    /// stop sleeping.
    waker: Waker,
    /// The driver's capabilities in smoltcp's terms, mapped and checked once
    /// (smoltcp asks for them several times per poll).
    capabilities: DeviceCapabilities,
    counters: Counters,
}

impl<D: Driver> Adapter<D> {
    /// Adapts `driver`, polling it with a no-op waker: the owner polls on a
    /// timer or on its own interrupt flag.
    pub fn new(driver: D) -> Result<Self, Unsupported> {
        Self::with_waker(driver, Waker::noop().clone())
    }

    /// Adapts `driver`, polling it with `waker` (typically
    /// [`WakeFlag::waker`](crate::WakeFlag::waker)), which the driver calls
    /// when a frame arrives or a transmit slot frees up after having had
    /// none.
    pub fn with_waker(driver: D, waker: Waker) -> Result<Self, Unsupported> {
        let capabilities = map_capabilities(driver.capabilities(), driver.hardware_address())?;
        Ok(Adapter {
            driver,
            waker,
            capabilities,
            counters: Counters::default(),
        })
    }

    /// The driver's Ethernet address (`None` for an IP-native driver).
    pub fn ethernet_address(&self) -> Option<EthernetAddress> {
        match self.driver.hardware_address() {
            HardwareAddress::Ethernet(mac) => Some(EthernetAddress(mac)),
            _ => None,
        }
    }

    /// The link state as the driver sees it now. Drivers that poll their
    /// PHY on a timer (embassy-stm32 every 500 ms) register the waker for
    /// the next check.
    pub fn link_state(&mut self) -> LinkState {
        self.driver
            .link_state(&mut Context::from_waker(&self.waker))
    }

    /// Whether the link is up.
    pub fn link_up(&mut self) -> bool {
        self.link_state() == LinkState::Up
    }

    /// Frames moved so far.
    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// The driver, e.g. for its own statistics.
    pub fn driver(&self) -> &D {
        &self.driver
    }

    /// The driver, mutably (interrupt acknowledgement and the like).
    pub fn driver_mut(&mut self) -> &mut D {
        &mut self.driver
    }

    /// Gives the driver back.
    pub fn into_inner(self) -> D {
        self.driver
    }
}

impl<D: Driver> phy::Device for Adapter<D> {
    type RxToken<'a>
        = RxToken<'a, D::RxToken<'a>>
    where
        Self: 'a;
    type TxToken<'a>
        = TxToken<'a, D::TxToken<'a>>
    where
        Self: 'a;

    fn receive(&mut self, _: Instant) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        let mut cx = Context::from_waker(&self.waker);
        let (rx, tx) = self.driver.receive(&mut cx)?;
        let Counters {
            rx_frames,
            tx_frames,
        } = &mut self.counters;
        Some((
            RxToken {
                inner: rx,
                count: rx_frames,
            },
            TxToken {
                inner: tx,
                count: tx_frames,
            },
        ))
    }

    fn transmit(&mut self, _: Instant) -> Option<Self::TxToken<'_>> {
        let mut cx = Context::from_waker(&self.waker);
        let tx = self.driver.transmit(&mut cx)?;
        Some(TxToken {
            inner: tx,
            count: &mut self.counters.tx_frames,
        })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        self.capabilities.clone()
    }
}

/// A received frame; it leaves the driver only when consumed.
pub struct RxToken<'a, T> {
    inner: T,
    count: &'a mut u32,
}

impl<T: driver::RxToken> phy::RxToken for RxToken<'_, T> {
    fn consume<R, F>(self, f: F) -> R
    where
        F: FnOnce(&[u8]) -> R,
    {
        *self.count = self.count.wrapping_add(1);
        self.inner.consume(|frame| f(frame))
    }
}

/// Room for one frame in the driver's transmit queue.
pub struct TxToken<'a, T> {
    inner: T,
    count: &'a mut u32,
}

impl<T: driver::TxToken> phy::TxToken for TxToken<'_, T> {
    fn consume<R, F>(self, len: usize, f: F) -> R
    where
        F: FnOnce(&mut [u8]) -> R,
    {
        *self.count = self.count.wrapping_add(1);
        self.inner.consume(len, f)
    }
}

/// The smallest IPv4 packet every link must carry (RFC 791).
const MIN_IPV4_MTU: usize = 576;
/// Destination, source, EtherType.
const ETHERNET_HEADER: usize = 14;

/// embassy's capabilities and medium in smoltcp's terms; see the module
/// documentation for why each maps as it does.
pub fn map_capabilities(
    caps: driver::Capabilities,
    address: HardwareAddress,
) -> Result<DeviceCapabilities, Unsupported> {
    let (medium, header) = match address {
        HardwareAddress::Ethernet(_) => (Medium::Ethernet, ETHERNET_HEADER),
        #[cfg(feature = "medium-ip")]
        HardwareAddress::Ip => (Medium::Ip, 0),
        _ => return Err(Unsupported::Medium),
    };
    let min = MIN_IPV4_MTU + header;
    if caps.max_transmission_unit < min {
        return Err(Unsupported::MtuTooSmall {
            mtu: caps.max_transmission_unit,
            min,
        });
    }

    // Both structs are `non_exhaustive`: start from smoltcp's defaults
    // (software does every checksum) and fill in what embassy describes.
    let mut out = DeviceCapabilities::default();
    out.medium = medium;
    out.max_transmission_unit = caps.max_transmission_unit;
    out.max_burst_size = caps.max_burst_size;
    let c = &caps.checksum;
    out.checksum.ipv4 = checksum(c.ipv4);
    out.checksum.udp = checksum(c.udp);
    out.checksum.tcp = checksum(c.tcp);
    #[cfg(feature = "proto-ipv4")]
    {
        out.checksum.icmpv4 = checksum(c.icmpv4);
    }
    #[cfg(feature = "proto-ipv6")]
    {
        out.checksum.icmpv6 = checksum(c.icmpv6);
    }
    Ok(out)
}

/// The same four cases, named the same: what software must still do.
fn checksum(c: driver::Checksum) -> phy::Checksum {
    match c {
        driver::Checksum::Both => phy::Checksum::Both,
        driver::Checksum::Rx => phy::Checksum::Rx,
        driver::Checksum::Tx => phy::Checksum::Tx,
        driver::Checksum::None => phy::Checksum::None,
    }
}
