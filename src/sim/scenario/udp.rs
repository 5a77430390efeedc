//! One UDP caller as a non-blocking state machine: send a datagram, wait a
//! while for its reply, send the next — stop-and-wait, as the tutorial's
//! clients do.
//!
//! UDP may lose a datagram or its reply, so the caller only checks what it
//! can: every reply it gets is the exact reply to a datagram it sent (or the
//! hotline's "busy"). Whether every datagram that *reached* the device got
//! exactly one reply is checked at the switch ([`super::ledger`]).

use smoltcp::time::{Duration, Instant};

use crate::chat::Responder;
use crate::sim::scenario::tcp::quote;
use crate::sim::world::{ClientId, UdpConn, World};

/// How long a caller waits for a reply before it sends its next datagram:
/// far longer than any delay the faults add, so a reply that is only slow
/// is not taken for lost.
const PATIENCE: Duration = Duration::from_secs(2);

/// The hotline's answer when its table is full: a reply, just not the
/// caller's own.
const BUSY: &[u8] = b"busy: all hotline lines are taken, try again later";

/// A UDP caller of one service port.
#[derive(Debug)]
pub(crate) struct UdpTask {
    port: u16,
    /// What to send, and the reply each must get.
    calls: Vec<(Vec<u8>, Vec<u8>)>,
    socket: Option<UdpConn>,
    /// Datagrams sent so far.
    sent: usize,
    /// The datagram waiting for its reply, and until when.
    waiting: Option<(usize, Instant)>,
    /// Datagrams whose reply never came within [`PATIENCE`].
    pub(crate) unanswered: u64,
    /// Replies received.
    pub(crate) replies: u64,
}

impl UdpTask {
    pub(crate) fn new(port: u16, calls: Vec<(Vec<u8>, Vec<u8>)>) -> Self {
        UdpTask {
            port,
            calls,
            socket: None,
            sent: 0,
            waiting: None,
            unanswered: 0,
            replies: 0,
        }
    }

    pub(crate) fn wake_at(&self) -> Option<Instant> {
        self.waiting.map(|(_, until)| until)
    }

    pub(crate) fn is_done(&self) -> bool {
        self.socket.is_some() && self.sent == self.calls.len() && self.waiting.is_none()
    }

    pub(crate) fn progress(&self) -> String {
        format!(
            "sent {} of {} datagrams, {} replies, waiting: {:?}",
            self.sent,
            self.calls.len(),
            self.replies,
            self.waiting.map(|(i, _)| i)
        )
    }

    pub(crate) fn drive<R: Responder>(
        &mut self,
        w: &mut World<'_, R>,
        client: ClientId,
    ) -> Result<(), String> {
        let now = w.now();
        let socket = match self.socket {
            Some(s) => s,
            None => *self.socket.insert(w.udp_bind(client)),
        };
        while let Some(reply) = w.udp_try_recv(socket) {
            self.replies += 1;
            if reply == BUSY {
                self.waiting = None;
                continue;
            }
            // Only datagrams already sent can be answered; a duplicate of
            // one may be answered twice.
            let Some(i) = self.calls[..self.sent]
                .iter()
                .position(|(_, r)| *r == reply)
            else {
                return Err(format!(
                    "udp {}: a reply to nothing this caller sent: {}",
                    self.port,
                    quote(&reply)
                ));
            };
            if self.waiting.is_some_and(|(w, _)| w == i) {
                self.waiting = None;
            }
        }
        if let Some((_, until)) = self.waiting
            && now >= until
        {
            self.unanswered += 1;
            self.waiting = None;
        }
        // One datagram at a time, and only once the last has left the
        // client (it may wait for ARP): the device's queues stay bounded.
        if self.waiting.is_none() && self.sent < self.calls.len() && w.udp_sent(socket) {
            let (datagram, _) = &self.calls[self.sent];
            w.udp_send(socket, self.port, datagram)
                .map_err(|e| format!("udp {}: cannot send: {e}", self.port))?;
            self.waiting = Some((self.sent, now + PATIENCE));
            self.sent += 1;
        }
        Ok(())
    }
}
