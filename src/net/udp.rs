//! The UDP services: echo (RFC 862) and the hotline chat.
//!
//! Each is a loop over the datagrams a socket holds, bounded by the socket's
//! queue. A datagram is only taken from the receive queue when the send
//! queue has room for the reply, so a burst waits in smoltcp instead of
//! being read and then thrown away.
//!
//! A `Watchdog` guards each socket's send queue: a reply to an address
//! that never answers ARP would otherwise block every reply after it, for
//! good.

use smoltcp::socket::udp;
use smoltcp::time::{Duration, Instant};

use crate::chat::hotline::{Hotline, Outcome};
use crate::chat::responder::{Reply, Responder};

/// The largest datagram the services read: a full Ethernet payload.
/// Larger ones are counted and dropped by smoltcp or here.
pub const MAX_DATAGRAM: usize = 1472;

/// How long the head of a UDP send queue may wait to leave. smoltcp asks
/// for an unknown address once a second and never gives up; three
/// unanswered requests is when Linux, too, declares a neighbour failed.
pub(crate) const STALL_LIMIT: Duration = Duration::from_secs(3);

/// Watches one UDP socket's send queue for a reply that cannot leave.
///
/// smoltcp keeps a UDP socket's outgoing datagrams in one queue, in order,
/// and holds the first until its destination's Ethernet address is known.
/// A datagram from an address that never answers ARP — a caller that left,
/// or a forged source — got a reply that waited forever, and every reply
/// to every other caller waited behind it: one datagram silenced the
/// service. When the queue has not moved for [`STALL_LIMIT`], the watchdog
/// empties the socket (smoltcp cannot drop only the head), losing the
/// replies queued behind it and any datagrams not yet read, and the
/// service answers again.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Watchdog {
    /// Since when the queue has not moved, if it holds anything.
    since: Option<Instant>,
    /// Bytes queued after the service last ran: less at the next poll
    /// means a datagram left.
    queued: usize,
}

impl Watchdog {
    pub(crate) const NEW: Watchdog = Watchdog {
        since: None,
        queued: 0,
    };

    /// Runs `service` on `socket`, first emptying a queue stuck for too
    /// long. Returns whether anything happened.
    pub(crate) fn guard(
        &mut self,
        socket: &mut udp::Socket,
        now: Instant,
        service: impl FnOnce(&mut udp::Socket) -> bool,
    ) -> bool {
        let queued = socket.send_queue();
        let mut any = false;
        if queued == 0 || queued < self.queued {
            self.since = (queued > 0).then_some(now);
        } else if self.since.is_some_and(|at| now >= at + STALL_LIMIT) {
            let endpoint = socket.endpoint();
            warn!(
                "udp {}: a reply could not be sent for {} s (its address never answered ARP); \
                 dropping {} queued bytes",
                endpoint.port,
                STALL_LIMIT.secs(),
                queued
            );
            socket.close();
            let _ = socket.bind(endpoint);
            self.since = None;
            any = true;
        } else if self.since.is_none() {
            self.since = Some(now);
        }
        any |= service(socket);
        self.queued = socket.send_queue();
        any
    }

    /// When the watchdog must look again.
    pub(crate) fn poll_at(&self) -> Option<Instant> {
        self.since.map(|at| at + STALL_LIMIT)
    }
}

/// Echoes every queued datagram to its sender. Returns whether any moved.
pub(crate) fn echo(socket: &mut udp::Socket) -> bool {
    // Most polls find nothing: return before zeroing the buffer (a
    // measurable share of a board's time while it streams TCP).
    if !socket.can_recv() {
        return false;
    }
    let mut buf = [0u8; MAX_DATAGRAM];
    let mut any = false;
    while socket.can_recv() && socket.can_send() {
        match socket.recv_slice(&mut buf) {
            Ok((n, meta)) => {
                if socket.send_slice(&buf[..n], meta.endpoint).is_err() {
                    warn!(
                        "udp echo: reply to {} dropped, send buffer full",
                        meta.endpoint
                    );
                }
                any = true;
            }
            Err(udp::RecvError::Truncated) => {
                warn!("udp echo: datagram over {} bytes dropped", MAX_DATAGRAM);
                any = true;
            }
            Err(udp::RecvError::Exhausted) => break,
        }
    }
    any
}

/// Answers every queued hotline datagram, and expires idle callers.
pub(crate) fn hotline(
    socket: &mut udp::Socket,
    hotline: &mut Hotline,
    responder: &mut dyn Responder,
    now: Instant,
    idle: Duration,
) -> bool {
    let any = socket.can_recv() && answer(socket, hotline, responder, now, idle);
    hotline.expire(responder, now, idle);
    any
}

/// The hotline's datagram loop, apart so that its buffers are only made
/// (and zeroed) when a datagram is waiting.
fn answer(
    socket: &mut udp::Socket,
    hotline: &mut Hotline,
    responder: &mut dyn Responder,
    now: Instant,
    idle: Duration,
) -> bool {
    let mut buf = [0u8; MAX_DATAGRAM];
    let mut reply = Reply::new();
    let mut any = false;
    while socket.can_recv() && socket.can_send() {
        let (n, meta) = match socket.recv_slice(&mut buf) {
            Ok(got) => got,
            Err(udp::RecvError::Truncated) => {
                warn!("hotline: datagram over {} bytes dropped", MAX_DATAGRAM);
                continue;
            }
            Err(udp::RecvError::Exhausted) => break,
        };
        any = true;
        let from = meta.endpoint;
        match hotline.on_datagram(responder, now, idle, from, &buf[..n], &mut reply) {
            Outcome::Reply => {
                if socket.send_slice(reply.as_bytes(), from).is_err() {
                    warn!("hotline: reply to {} dropped, send buffer full", from);
                }
            }
            Outcome::Deferred(id) => debug!("hotline {}: waiting for the operator", id),
        }
    }
    any
}
