//! A TCP connection as the node's binding drives it, without smoltcp.
//!
//! [`Binding::drive`] follows `net::tcp_slot::Conn::drive` step for step
//! (flush, feed, FIN, poll; idle timer; close once finished and drained),
//! over an in-memory receive buffer and send window instead of a socket.
//! So a sans-IO session meets exactly the call order it meets on a node,
//! and each call's output can be checked on its own.

use smoltalk::config::Limits;
use smoltalk::outbox::Outbox;
use smoltalk::session::{Protocol, Shared};
use smoltcp::time::Instant;
use smoltcp::wire::IpAddress;

/// What the binding called, for the checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call<'a> {
    /// `open`.
    Open,
    /// `recv`, which consumed these bytes.
    Recv(&'a [u8]),
    /// `peer_closed`.
    PeerClosed,
    /// `poll`.
    Poll,
    /// `idle`.
    Idle,
}

/// The receive buffer of a SMALL board's socket: what the peer may have
/// in flight unread. More is not accepted (the window is closed).
pub const RX_BUFFER: usize = 1024;

/// Rounds per drive, as in the binding.
const ROUNDS: usize = 64;

/// A check run after every call, with the bytes that call added to the
/// outbox.
pub type Check<'c, P> = &'c mut dyn FnMut(&P, Call<'_>, &[u8]);

/// One connection: a session, its outbox, and the socket's buffers.
pub struct Binding<P> {
    /// The session.
    pub proto: P,
    /// Its replies not yet in the socket.
    pub out: Outbox,
    /// Received, not yet consumed.
    rx: Vec<u8>,
    /// Bytes the socket takes per drive (the peer's receive window).
    pub tx_window: usize,
    /// Everything the client has been sent.
    pub sent: Vec<u8>,
    /// The client sent FIN.
    fin: bool,
    /// ... and the session was told.
    fin_seen: bool,
    /// The binding closed the connection.
    pub closed: bool,
    idle_fired: bool,
    last_rx: Instant,
}

impl<P: Protocol> Binding<P> {
    /// Accepts a connection from `peer` and opens the session.
    pub fn open(
        mut proto: P,
        cx: &mut Shared<'_, '_>,
        now: Instant,
        peer: IpAddress,
        check: Check<'_, P>,
    ) -> Self {
        let mut out = Outbox::new();
        proto.open(cx, now, peer, &mut out);
        check(&proto, Call::Open, out.pending());
        Binding {
            proto,
            out,
            rx: Vec::new(),
            tx_window: usize::MAX,
            sent: Vec::new(),
            fin: false,
            fin_seen: false,
            closed: false,
            idle_fired: false,
            last_rx: now,
        }
    }

    /// Bytes arrive from the client; those beyond the window are refused.
    pub fn receive(&mut self, bytes: &[u8]) {
        if self.fin || self.closed {
            return;
        }
        let room = RX_BUFFER - self.rx.len();
        self.rx.extend_from_slice(&bytes[..bytes.len().min(room)]);
    }

    /// The client closes its sending half.
    pub fn fin(&mut self) {
        self.fin = true;
    }

    /// Moves bytes and runs the session at `now`, as `Conn::drive` does.
    pub fn drive(
        &mut self,
        cx: &mut Shared<'_, '_>,
        limits: &Limits,
        now: Instant,
        check: Check<'_, P>,
    ) {
        if self.closed {
            self.flush(usize::MAX);
            return;
        }
        for _ in 0..ROUNDS {
            let mut moved = self.flush(self.tx_window) > 0;

            if self.out.is_empty() && !self.proto.finished() && !self.rx.is_empty() {
                let n = self.proto.recv(cx, now, &self.rx, &mut self.out);
                assert!(
                    n <= self.rx.len(),
                    "recv consumed {n} of {} bytes",
                    self.rx.len()
                );
                check(&self.proto, Call::Recv(&self.rx[..n]), self.out.pending());
                self.rx.drain(..n);
                if n > 0 {
                    self.last_rx = now;
                    moved = true;
                }
                moved |= !self.out.is_empty();
            }

            if self.fin && !self.fin_seen && self.rx.is_empty() {
                self.fin_seen = true;
                let before = self.out.pending().len();
                self.proto.peer_closed(cx, now, &mut self.out);
                check(&self.proto, Call::PeerClosed, &self.out.pending()[before..]);
                moved = true;
            }

            if self.out.is_empty() {
                self.proto.poll(cx, now, &mut self.out);
                check(&self.proto, Call::Poll, self.out.pending());
                moved |= !self.out.is_empty();
            }

            if !moved {
                break;
            }
        }

        if !self.idle_fired && now >= self.last_rx + limits.idle_timeout {
            self.idle_fired = true;
            let before = self.out.pending().len();
            self.proto.idle(&mut self.out);
            check(&self.proto, Call::Idle, &self.out.pending()[before..]);
        }

        if self.out.is_empty() && (self.proto.finished() || self.idle_fired) {
            self.closed = true;
        }
    }

    /// Hands up to `window` pending bytes to the "socket". Returns how many.
    fn flush(&mut self, window: usize) -> usize {
        let pending = self.out.pending();
        let n = pending.len().min(window);
        self.sent.extend_from_slice(&pending[..n]);
        self.out.advance(n);
        n
    }
}
