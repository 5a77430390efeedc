//! What every TCP service looks like to the binding.
//!
//! A [`Protocol`] is a sans-IO state machine: it is handed received bytes and
//! the current time, and it writes what to send into an [`Outbox`]. It never
//! sees a socket, so it is unit-tested with plain byte slices. The binding in
//! [`crate::net`] owns the sockets and calls these methods.

use smoltcp::time::Instant;
use smoltcp::wire::IpAddress;

use crate::chat::Responder;
use crate::config::Limits;
use crate::login::{Challenges, Lockout, Store};
use crate::outbox::Outbox;

/// State shared by all sessions of a node, lent to a session while it runs.
pub struct Shared<'s, 'a> {
    /// Timeouts and rate limits.
    pub limits: &'s Limits,
    /// The credential store the login service checks against.
    pub store: &'s Store<'a>,
    /// Failed-login tracking per client IP, shared by every login session.
    pub lockout: &'s mut Lockout,
    /// Server nonces and fake salts for the login's challenge-response.
    pub challenges: &'s mut Challenges,
    /// PBKDF2 iterations still allowed in this poll, across all sessions.
    /// Sessions subtract what they use, so one poll never does more hash work
    /// than `Limits::hash_iterations_per_poll`.
    pub hash_budget: u32,
    /// Who answers chat messages: the auto-responder, or an operator.
    pub responder: &'s mut dyn Responder,
}

/// Names one chat session, for a human operator who picks which client a
/// reply goes to. The generation changes every time a slot is reused, so a
/// late reply never reaches the next client in the same slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SessionId {
    /// TCP chat or UDP hotline.
    pub transport: Transport,
    /// Slot index in the socket pool or hotline table.
    pub index: u8,
    /// Reuse counter of that slot.
    pub generation: u16,
}

/// The transport a chat session runs over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// The turn-taking chat on TCP.
    Tcp,
    /// The hotline chat on UDP.
    Udp,
}

impl core::fmt::Display for SessionId {
    /// `t3.1` is TCP slot 3, generation 1; `u0.7` is hotline slot 0, generation 7.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let t = match self.transport {
            Transport::Tcp => 't',
            Transport::Udp => 'u',
        };
        write!(f, "{}{}.{}", t, self.index, self.generation)
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for SessionId {
    fn format(&self, f: defmt::Formatter) {
        let t = match self.transport {
            Transport::Tcp => 't',
            Transport::Udp => 'u',
        };
        defmt::write!(f, "{}{}.{}", t, self.index, self.generation)
    }
}

/// A TCP service as a state machine.
///
/// The binding promises: `open` first, then any mix of `recv`/`poll`; `recv`
/// only while `out` is empty, so a session answers one request before it
/// reads the next (turn-taking, and flow control for free).
pub trait Protocol {
    /// A client connected from `peer`. Services that speak first (chat) write
    /// their greeting here.
    fn open(&mut self, cx: &mut Shared<'_, '_>, now: Instant, peer: IpAddress, out: &mut Outbox);

    /// Bytes arrived. Returns how many of `data` were consumed; the rest stay
    /// in the socket and are offered again later.
    fn recv(
        &mut self,
        cx: &mut Shared<'_, '_>,
        now: Instant,
        data: &[u8],
        out: &mut Outbox,
    ) -> usize;

    /// The peer closed its sending half (TCP FIN). A message that was still
    /// waiting for its terminator is complete now.
    fn peer_closed(&mut self, cx: &mut Shared<'_, '_>, now: Instant, out: &mut Outbox);

    /// Time passed: run timers and sliced work (password hashing).
    fn poll(&mut self, cx: &mut Shared<'_, '_>, now: Instant, out: &mut Outbox);

    /// The latest time `poll` must run again, if the session has a timer.
    fn poll_at(&self) -> Option<Instant>;

    /// The session received nothing for `Limits::idle_timeout`; it may say
    /// goodbye in `out` before the binding closes the connection.
    fn idle(&mut self, out: &mut Outbox);

    /// Whether the session is over: the binding closes the connection once
    /// `out` has drained.
    fn finished(&self) -> bool;
}
