//! The tutorial's two chats, as sans-IO state machines.
//!
//! - [`tcp_chat`]: the turn-taking chat on TCP 8081. The server speaks first;
//!   every client message gets exactly one reply; `byebye` from either side
//!   ends the session.
//! - [`hotline`]: the "10086" customer-service hotline on UDP 8086. Each
//!   datagram is one message and gets one reply; many clients at once, one
//!   session per client address in a bounded table.
//!
//! Both share the message [`framing`] rules (TCP only), the keyword [`rules`]
//! that rewrite what clients say, and a [`Responder`] that writes the answers:
//! the [`AutoResponder`] on boards, or a human operator on the host.

pub mod framing;
pub mod hotline;
pub mod responder;
pub mod rules;
pub mod tcp_chat;

pub use hotline::Hotline;
pub use responder::{Answer, AutoResponder, Responder};
pub use tcp_chat::ChatSession;

/// The word that ends a chat session, from either side.
pub const BYEBYE: &str = "byebye";
