//! An in-process virtual network, for the demo, the integration tests and
//! the simulator (feature `std`).
//!
//! Every node — the device under test and any number of clients — is a full
//! smoltcp interface. Their Ethernet frames pass through a [`Hub`] (a
//! learning switch) whose links can lose, duplicate, reorder, delay, corrupt
//! and drop frames while down, and which can record them to a pcap file.
//! Time is simulated and there are no threads: a run with the same seed
//! replays frame for frame.
//!
//! - [`hub`]: the switch, its ports (each a `phy::Device`) and its
//!   in-flight frames.
//! - [`faults`]: what a link does to frames, and the counts of what it did.
//! - [`rng`]: the seeded dice behind every random choice.
//! - [`pcap`]: writes what crosses the hub in a format Wireshark opens.
//! - [`pattern()`]: deterministic payloads for byte-exact echo checks.
//! - [`world`]: the device node plus client nodes and an event-driven clock,
//!   with blocking helpers (`connect`, `send`, `recv_until`…) that tests
//!   read like scripts, and non-blocking ones for many clients at once.
//! - [`scenario`]: the deterministic simulation: a seed picks faults and a
//!   mixed workload of concurrent clients, runs it, and checks the
//!   invariants every service promises.

pub mod faults;
pub mod hub;
mod pattern;
pub mod pcap;
pub mod rng;
pub mod scenario;
pub mod world;

pub use faults::{FaultCounts, Faults, Flap};
pub use hub::{Hub, HubStats, Port};
pub use pattern::pattern;
pub use rng::Rng;
pub use world::{ClientId, Conn, SimError, UdpConn, World};
