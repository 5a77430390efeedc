//! RFC 862 echo: every byte comes back unchanged and in order.
//!
//! On TCP the echo consumes only as many bytes as its outbox can take, so a
//! client that writes faster than it reads fills its own receive window and
//! is slowed down by flow control: nothing is ever dropped. UDP echo is a
//! one-liner in the binding (each datagram goes back to its sender).

use smoltcp::time::Instant;
use smoltcp::wire::IpAddress;

use crate::outbox::Outbox;
use crate::session::{Protocol, Shared};

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
