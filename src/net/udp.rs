//! The UDP services: echo (RFC 862) and the hotline chat.
//!
//! Each is a loop over the datagrams a socket holds, bounded by the socket's
//! queue. A datagram is only taken from the receive queue when the send
//! queue has room for the reply, so a burst waits in smoltcp instead of
//! being read and then thrown away.

use smoltcp::socket::udp;
use smoltcp::time::{Duration, Instant};

use crate::chat::hotline::{Hotline, Outcome};
use crate::chat::responder::{Reply, Responder};

/// The largest datagram the services read: a full Ethernet payload.
/// Larger ones are counted and dropped by smoltcp or here.
pub const MAX_DATAGRAM: usize = 1472;

/// Echoes every queued datagram to its sender. Returns whether any moved.
pub(crate) fn echo(socket: &mut udp::Socket) -> bool {
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
    hotline.expire(responder, now, idle);
    any
}
