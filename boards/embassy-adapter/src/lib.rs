//! # smoltcp-embassy-adapter
//!
//! Brings any network driver written for embassy — the `Driver` trait of
//! [`embassy_net_driver`] 0.2, which `embassy-stm32`'s `Ethernet`, the WIZnet
//! and CYW43 drivers and others implement — to a [smoltcp] **0.14** stack,
//! such as the smoltalk core's `Node`, without an async executor.
//!
//! Why it exists: every released crate that joins an embassy driver to
//! smoltcp (`embassy-net`) pins an older smoltcp, and two smoltcp versions in
//! one build do not mix (`phy::Device` from one is not the other's). The
//! adapter is small because the two token APIs are nearly the same; what it
//! adds is a plain poll loop's way of waiting ([`WakeFlag`]) and a careful
//! mapping of capabilities.
//!
//! ```text
//!   embassy HAL driver ──Driver──> Adapter ──phy::Device──> smoltcp Interface
//!   (stm32 ETH, W5500, …)          (this crate)             (smoltalk Node)
//! ```
//!
//! # Layout
//!
//! - [`adapter`]: [`Adapter`], the `phy::Device` over a `Driver`, and how
//!   capabilities map.
//! - [`wake`]: [`WakeFlag`], a waker that sets a flag, so a loop can sleep
//!   (`WFI`) until the driver's interrupt or a timer says there is work.
//! - `w5500` (feature `w5500`): the WIZnet W5500 in MACRAW mode over the
//!   `w5500` crate, as a `Driver`, so it goes through the same adapter.
//!
//! # Use
//!
//! ```
//! use smoltcp_embassy_adapter::{Adapter, WakeFlag};
//!
//! static WOKEN: WakeFlag = WakeFlag::new();
//!
//! fn bring_up<D: embassy_net_driver::Driver>(driver: D) {
//!     let mut device = match Adapter::with_waker(driver, WOKEN.waker()) {
//!         Ok(device) => device,
//!         Err(e) => panic!("unusable driver: {e}"),
//!     };
//!     let _mac = device.ethernet_address();
//!     // Hand `&mut device` to smoltcp's `Interface::poll` (or smoltalk's
//!     // `Node::poll`) in a loop; between polls:
//!     //   WOKEN.clear(); poll; then sleep unless WOKEN.is_set().
//!     let _up = device.link_up();
//! }
//! ```
//!
//! Nothing here allocates, and nothing drops a frame: a received frame stays
//! in the driver until smoltcp consumes its token (see [`adapter`]).

#![no_std]
#![warn(missing_docs)]

pub mod adapter;
#[cfg(feature = "w5500")]
pub mod w5500;
pub mod wake;

pub use adapter::{Adapter, Unsupported};
pub use embassy_net_driver::LinkState;
pub use wake::WakeFlag;
