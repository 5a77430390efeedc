//! The thin layer that binds the sans-IO protocols to smoltcp sockets.
//!
//! [`Node`] owns a smoltcp `Interface`, a socket set carved out of
//! caller-provided [`Memory`], and the shared service state (credential
//! store, lockout table, hotline table, responder). Each call to
//! [`Node::poll`] moves frames through smoltcp, then moves bytes between
//! sockets and protocol state machines. Nothing here knows what the bytes
//! mean.
//!
//! - [`checksum`] and [`offload`]: TCP and UDP checksums a word at a time,
//!   and a device wrapper that takes them off smoltcp.
//! - [`memory`]: where socket buffers come from (static on boards, `Vec` on
//!   the host).
//! - [`node`]: the node and its poll loop.
//! - `syn_watch`: tells the node which frames could start a handshake.
//! - [`tcp_slot`]: one TCP socket of a pool: accept, feed, flush, close,
//!   re-listen.
//! - [`udp`]: UDP echo and the hotline.
//! - `dhcp` (feature `dhcp`): DHCP with a static fallback.

pub mod checksum;
#[cfg(feature = "dhcp")]
mod dhcp;
pub mod memory;
pub mod node;
pub mod offload;
mod syn_watch;
pub mod tcp_slot;
pub mod udp;

#[cfg(feature = "std")]
pub use memory::HostMemory;
pub use memory::{Memory, StaticMemory};
pub use node::{MAX_TCP_SOCKETS, NetConfig, Node, OperatorError, SetupError, Usage};
pub use offload::ChecksumOffload;
pub use tcp_slot::{Service, TcpSlot};
