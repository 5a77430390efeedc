//! RFC 862 echo: every byte comes back unchanged and in order.
//!
//! On TCP the echo consumes only as many bytes as it can send back, so a
//! client that writes faster than it reads fills its own receive window and
//! is slowed down by flow control: nothing is ever dropped. UDP echo is a
//! one-liner in the binding (each datagram goes back to its sender).
//!
//! The TCP binding moves echo bytes with [`relay`], straight from the
//! socket's receive buffer to its send buffer. [`Echo`]'s [`Protocol`]
//! implementation is the same service written like every other one, bytes
//! through an [`Outbox`]: the reference the fast path is tested against.

use smoltcp::socket::tcp;
use smoltcp::time::Instant;
use smoltcp::wire::IpAddress;

use crate::outbox::Outbox;
use crate::session::{Protocol, Shared};

/// Bytes [`relay`] copies at a time, through a buffer on the stack for the
/// call. The host moves bulk data, and each copy has a fixed cost (two
/// ring-buffer updates) that a 640-byte reply-sized chunk paid 25 times
/// per 16 KiB; a board keeps its stack small.
pub const RELAY_CHUNK: usize = if cfg!(feature = "std") {
    16 * 1024
} else {
    crate::config::MAX_REPLY
};

/// The TCP echo's fast path: moves every received byte the socket's send
/// buffer has room for into it, and returns how many. That is at most one
/// buffer's worth, so the call is bounded. Bytes leave the receive buffer
/// only once the send buffer has taken them, so none is ever lost; while
/// the send buffer is full, they wait in the receive buffer, the window
/// closes, and the client is slowed down.
pub(crate) fn relay(socket: &mut tcp::Socket) -> usize {
    if relayable(socket) == 0 {
        return 0;
    }
    // Made (and zeroed) only when there is something to move: most calls
    // find nothing.
    let mut chunk = [0; RELAY_CHUNK];
    let mut moved = 0;
    loop {
        let n = relay_once(socket, &mut chunk);
        moved += n;
        if n == 0 {
            return moved;
        }
    }
}

/// How many bytes could move now.
fn relayable(socket: &tcp::Socket) -> usize {
    if !socket.may_send() {
        return 0;
    }
    let room = socket.send_capacity() - socket.send_queue();
    room.min(socket.recv_queue())
}

/// Moves up to one `chunk` of bytes; returns how many.
fn relay_once(socket: &mut tcp::Socket, chunk: &mut [u8]) -> usize {
    let n = relayable(socket).min(chunk.len());
    if n == 0 {
        return 0;
    }
    // `peek` lends the bytes up to the ring buffer's end; the rest, if
    // any, goes in the next round.
    let Ok(data) = socket.peek(n) else { return 0 };
    let chunk = &mut chunk[..data.len()];
    chunk.copy_from_slice(data);
    let sent = socket.send_slice(chunk).unwrap_or(0);
    // Only what is in the send buffer now leaves the receive buffer: the
    // same bytes `peek` lent, so `recv` offers at least `sent` of them.
    socket.recv(|_| (sent, ())).map_or(0, |()| sent)
}

/// One TCP echo connection.
#[derive(Debug, Clone, Default)]
pub struct Echo {
    /// The client closed its sending half: once everything it sent has been
    /// echoed, we close ours.
    peer_closed: bool,
}

impl Echo {
    /// A fresh echo session.
    pub const fn new() -> Self {
        Echo { peer_closed: false }
    }
}

impl Protocol for Echo {
    fn open(&mut self, _: &mut Shared<'_, '_>, _: Instant, _: IpAddress, _: &mut Outbox) {
        self.peer_closed = false;
    }

    fn recv(&mut self, _: &mut Shared<'_, '_>, _: Instant, data: &[u8], out: &mut Outbox) -> usize {
        out.push_partial(data)
    }

    fn peer_closed(&mut self, _: &mut Shared<'_, '_>, _: Instant, _: &mut Outbox) {
        self.peer_closed = true;
    }

    fn poll(&mut self, _: &mut Shared<'_, '_>, _: Instant, _: &mut Outbox) {}

    fn poll_at(&self) -> Option<Instant> {
        None
    }

    fn idle(&mut self, _: &mut Outbox) {}

    fn finished(&self) -> bool {
        self.peer_closed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::MAX_REPLY;
    use crate::testing::{Fixture, t};

    #[test]
    fn takes_only_what_it_can_send_back() {
        let mut fx = Fixture::new();
        let mut e = Echo::new();
        let mut out = Outbox::new();
        let peer = fx.peer();
        e.open(&mut fx.shared(), t(0), peer, &mut out);
        let data = [7u8; MAX_REPLY + 100];
        assert_eq!(e.recv(&mut fx.shared(), t(0), &data, &mut out), MAX_REPLY);
        assert_eq!(
            e.recv(&mut fx.shared(), t(0), &data, &mut out),
            0,
            "full: flow control"
        );
        assert_eq!(out.pending(), &data[..MAX_REPLY]);
    }

    /// The fast path, through a node on the simulated network: odd buffer
    /// sizes, so ring buffers wrap in mid-chunk, a send buffer smaller and
    /// then larger than the receive buffer, and every byte back in order.
    #[test]
    fn relay_is_byte_exact_whatever_the_buffer_sizes() {
        use crate::Config;
        use crate::net::HostMemory;
        use crate::sim::{World, pattern};
        use smoltcp::time::Duration;

        for (rx, tx) in [(6007, 1009), (1009, 6007), (65535, 1 << 20)] {
            let mut config = Config::HOST;
            config.pools.echo = [1, 1];
            config.buffers.tcp_rx = rx;
            config.buffers.tcp_tx = tx;
            let mut mem = HostMemory::new(&config);
            let mut w = World::new(&config, &mut mem, 7).unwrap();
            let c = w.add_client();
            let conn = w.connect(c, 7).unwrap();
            let data = pattern(300_000, 3);
            let got = w.echo_exchange(conn, &data, Duration::from_secs(60));
            assert!(got.unwrap() == data, "rx {rx}, tx {tx}: echo differs");
        }
    }

    #[test]
    fn finishes_when_the_client_closes() {
        let mut fx = Fixture::new();
        let mut e = Echo::new();
        let mut out = Outbox::new();
        assert!(!e.finished());
        e.peer_closed(&mut fx.shared(), t(0), &mut out);
        assert!(e.finished());
    }
}
