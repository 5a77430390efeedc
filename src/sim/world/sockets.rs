//! Non-blocking client calls: none of these steps the world, so any number
//! of clients can be driven at once as state machines, each moving when
//! the world has stepped. A call that changes what a client has to send
//! (bytes written, bytes read and so a window to open, a FIN) marks it to
//! be polled at the next step; one that only looks does not, so that a
//! driver can look at every client after every step for free.

use smoltcp::socket::{tcp, udp};
use smoltcp::time::Duration;
use smoltcp::wire::IpEndpoint;

use super::{CLIENT_BUFFER, Client, ClientId, Conn, SimError, UdpConn, World};
use crate::chat::Responder;

impl Client {
    /// The next ephemeral port of this client.
    pub(super) fn take_port(&mut self) -> u16 {
        let local = self.next_port;
        self.next_port = if local == u16::MAX { 49152 } else { local + 1 };
        local
    }
}

impl<R: Responder> World<'_, R> {
    /// Starts a TCP connection from `client` to the device's `port` and
    /// returns at once; the handshake runs as the world steps
    /// ([`World::state`] leaves `SynSent`).
    pub fn open(&mut self, client: ClientId, port: u16) -> Result<Conn, SimError> {
        let c = self.client(client.0);
        let mut socket = tcp::Socket::new(
            tcp::SocketBuffer::new(vec![0; CLIENT_BUFFER]),
            tcp::SocketBuffer::new(vec![0; CLIENT_BUFFER]),
        );
        let local = c.take_port();
        socket
            .connect(
                c.iface.context(),
                IpEndpoint::new(Self::SERVER_IP.into(), port),
                local,
            )
            .map_err(|_| SimError::Refused)?;
        Ok(Conn {
            client: client.0,
            handle: c.sockets.add(socket),
        })
    }

    /// The client's socket of a connection, for what the helpers do not wrap.
    pub fn tcp(&mut self, conn: Conn) -> &mut tcp::Socket<'static> {
        self.client(conn.client)
            .sockets
            .get_mut::<tcp::Socket>(conn.handle)
    }

    /// The connection's TCP state, client side.
    pub fn state(&mut self, conn: Conn) -> tcp::State {
        self.clients[conn.client]
            .sockets
            .get::<tcp::Socket>(conn.handle)
            .state()
    }

    /// Queues as much of `data` as the send buffer takes right now.
    /// Returns how many bytes were queued.
    pub fn write_some(&mut self, conn: Conn, data: &[u8]) -> usize {
        let c = &mut self.clients[conn.client];
        let n = c
            .sockets
            .get_mut::<tcp::Socket>(conn.handle)
            .send_slice(data)
            .unwrap_or(0);
        c.wake.dirty |= n > 0;
        n
    }

    /// Hands everything received so far to `f`, in order (first what a
    /// blocking helper left over). Returns whether the peer has finished
    /// sending: a FIN after the last byte, or a reset.
    pub fn drain(&mut self, conn: Conn, mut f: impl FnMut(&[u8])) -> bool {
        let c = &mut self.clients[conn.client];
        if let Some(left) = c.inbox.remove(&conn.handle) {
            f(&left);
        }
        let s = c.sockets.get_mut::<tcp::Socket>(conn.handle);
        let mut read = false;
        while s.can_recv() {
            let _ = s.recv(|b| {
                f(b);
                (b.len(), ())
            });
            read = true;
        }
        // Reading opens the receive window: the client may owe an update.
        c.wake.dirty |= read;
        !s.may_recv()
    }

    /// Closes our sending half (FIN). Clients are smoltcp too, with the
    /// device's FIN bug (`net::tcp_slot::FIN_RESCUE`), and the same cure.
    pub fn close(&mut self, conn: Conn) {
        let s = self.tcp(conn);
        s.close();
        s.set_keep_alive(Some(Duration::from_secs(1)));
    }

    /// A client's UDP socket.
    pub(super) fn udp(&mut self, u: UdpConn) -> &mut udp::Socket<'static> {
        self.client(u.client)
            .sockets
            .get_mut::<udp::Socket>(u.handle)
    }

    /// One datagram received on `u`, if any, without stepping.
    pub fn udp_try_recv(&mut self, u: UdpConn) -> Option<Vec<u8>> {
        // Reading a datagram makes nothing to send: no poll needed.
        let s = self.clients[u.client]
            .sockets
            .get_mut::<udp::Socket>(u.handle);
        s.recv().ok().map(|(data, _)| data.to_vec())
    }

    /// Whether everything sent on `u` has left the client (nothing waits
    /// for an ARP reply, say).
    pub fn udp_sent(&mut self, u: UdpConn) -> bool {
        self.clients[u.client]
            .sockets
            .get::<udp::Socket>(u.handle)
            .send_queue()
            == 0
    }
}
