//! Fuzzing harnesses for the smoltalk core, one per `cargo fuzz` target.
//!
//! The targets in `fuzz_targets/` are one line each: they hand the input to
//! a `run` function here. Keeping the harnesses in a library means
//! `cargo test` (stable, no libFuzzer) replays every seed and regression
//! input through exactly the code the fuzzer runs.
//!
//! # Layout
//!
//! - [`script`]: the input format of the stateful targets (data, waits,
//!   events), and a writer for it.
//! - [`fixture`]: a credential store cheap to hash against, the node-wide
//!   state a session borrows, an operator responder.
//! - [`binding`]: a TCP connection driven the way the node's binding drives
//!   it, without smoltcp.
//! - [`login`]: target `login_request`: the request parsers, both forms, and
//!   the login session.
//! - [`chat`]: target `chat_framing`: the framer against a model of its rule,
//!   and the chat session.
//! - [`hotline`]: target `hotline`: the UDP chat's table against a model.
//! - [`node`]: target `node_frames`: a whole node fed Ethernet frames from
//!   several peers.

pub mod binding;
pub mod chat;
pub mod fixture;
pub mod hotline;
pub mod login;
pub mod node;
pub mod script;
