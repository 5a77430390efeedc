//! An in-process virtual network, for the demo, the integration tests and
//! the simulator (feature `std`).
//!
//! Every node — the device under test and any number of clients — is a full
//! smoltcp interface. Their Ethernet frames pass through a [`Hub`] (a
//! learning switch) that can drop frames and record them to a pcap file.
//! Time is simulated: nothing sleeps, and a run with the same seed replays
//! frame for frame.
//!
//! - [`hub`]: the switch, its ports (each a `phy::Device`) and its faults.
//! - [`pcap`]: writes what crosses the hub in a format Wireshark opens.
//! - [`pattern()`]: deterministic payloads for byte-exact echo checks.
//! - [`world`]: the device node plus client nodes, a clock, and blocking
//!   helpers (`connect`, `send`, `recv_until`…) that tests read like scripts.

pub mod hub;
mod pattern;
pub mod pcap;
pub mod world;

pub use hub::{Faults, Hub, Port};
pub use pattern::pattern;
pub use world::{ClientId, Conn, SimError, UdpConn, World};
