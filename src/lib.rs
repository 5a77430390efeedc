//! # smoltalk
//!
//! The services of a classic socket tutorial — echo, login and chat — written
//! once as a `no_std`, heap-free protocol core on top of [smoltcp], so that the
//! same code answers from a Linux TAP device, from an in-process virtual
//! network, and from a microcontroller.
//!
//! The core is built in three layers, each of which knows nothing about the one
//! above it:
//!
//! ```text
//!  ┌────────────────────────────────────────────────────────────┐
//!  │ protocols (sans-IO)  echo · login · chat · hotline         │  bytes + time in,
//!  │                      src/echo.rs src/login/ src/chat/      │  bytes out
//!  ├────────────────────────────────────────────────────────────┤
//!  │ binding              src/net/                              │  smoltcp sockets,
//!  │                      socket pools, re-listen, idle timers  │  one Node
//!  ├────────────────────────────────────────────────────────────┤
//!  │ device               smoltcp::phy::Device                  │  TAP, virtual wire,
//!  │                      host-sim/, src/sim/, boards/*         │  LAN9118, Stellaris…
//!  └────────────────────────────────────────────────────────────┘
//! ```
//!
//! # Layout
//!
//! - [`config`]: every port, pool size, buffer size and limit, in one type.
//! - `log`: `debug!`/`info!`/`warn!` that go to `defmt` on boards and to
//!   the `log` crate on the host, from the same call sites.
//! - [`outbox`]: the bounded reply buffer every TCP session writes into.
//! - [`session`]: the [`session::Protocol`] trait that every TCP service implements.
//! - [`echo`]: RFC 862 echo.
//! - [`login`]: the login service: request parsing (line form and the tutorial's
//!   dict form), salted PBKDF2 done in slices, the credential store, lockout.
//! - [`chat`]: the turn-taking TCP chat, the UDP "hotline", framing and the
//!   auto-responder.
//! - [`net`]: the thin layer that binds the protocols to smoltcp sockets
//!   ([`net::Node`]).
//! - `sim` (feature `std`): an in-process virtual Ethernet with fault injection,
//!   used by the demo, the integration tests and the simulator.
//!
//! Nothing in this crate allocates: every table has a fixed capacity, and the
//! socket buffers come from memory the caller hands in ([`net::Memory`]).

#![cfg_attr(not(feature = "std"), no_std)]
// The only `unsafe` is the in-place initialisation of a board's static
// memory (`net::memory`), allowed there alone.
#![deny(unsafe_code)]
#![warn(missing_docs)]

#[macro_use]
mod log;

pub mod chat;
pub mod config;
pub mod echo;
pub mod login;
pub mod net;
pub mod outbox;
pub mod session;
#[cfg(feature = "std")]
pub mod sim;
#[cfg(test)]
mod testing;

pub use config::Config;
pub use net::{Memory, NetConfig, Node};
