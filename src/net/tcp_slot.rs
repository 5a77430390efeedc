//! One TCP socket of a service pool, and the session running on it.
//!
//! smoltcp 0.14 has no listen backlog: a listening socket becomes the
//! connection. So each service keeps a pool of sockets listening on its
//! port; each slot here drives one of them through its life:
//!
//! ```text
//!   listen ──SYN──▶ open session ──▶ feed / flush ──▶ close ──▶ listen again
//!                                         │ RST, idle, peer timeout ┘
//! ```
//!
//! While every socket of a pool is busy, smoltcp answers a new SYN with a
//! RST: client `N + 1` is refused at once, and the others carry on.

use smoltcp::iface::SocketSet;
use smoltcp::socket::tcp::{self, State};
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::IpEndpoint;

use crate::chat::ChatSession;
use crate::echo::{self, Echo};
use crate::login::LoginSession;
use crate::outbox::Outbox;
use crate::session::{Protocol, SessionId, Shared, Transport};

/// Which service a slot's pool serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// RFC 862 echo.
    Echo,
    /// The login service.
    Login,
    /// The turn-taking chat.
    Chat,
}

/// The protocol state of a live connection.
// One slot holds one kind of session at a time, and there is no heap to box
// the larger one: the enum's size is the price of a slot that can serve any
// service.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Proto {
    Echo(Echo),
    Login(LoginSession),
    Chat(ChatSession),
}

/// A live connection.
pub(crate) struct Conn {
    pub(crate) proto: Proto,
    /// Replies not yet in the socket.
    pub(crate) out: Outbox,
    /// The client, for logs.
    peer: IpEndpoint,
    /// Last time the client sent anything: the idle timer.
    last_rx: Instant,
    /// The client closed its sending half (FIN seen and handled).
    fin_seen: bool,
    /// When we called `close()`, if we did: the socket is finishing its
    /// close. A peer that never sends its FIN would hold the socket in
    /// FIN-WAIT-2 forever, so after `Limits::peer_timeout` it is aborted.
    closed_at: Option<Instant>,
    /// The idle timeout has fired.
    idle_fired: bool,
}

/// One socket of a pool and its session. `EMPTY` until the node assigns it.
pub struct TcpSlot {
    /// The socket this slot drives.
    pub(crate) handle: Option<smoltcp::iface::SocketHandle>,
    /// What runs on it.
    pub(crate) service: Service,
    /// Port to listen on again after each connection.
    pub(crate) port: u16,
    /// Counts connections served, so a chat [`SessionId`] names one
    /// connection, not the slot.
    pub(crate) generation: u16,
    /// The connection in progress.
    pub(crate) conn: Option<Conn>,
    /// The socket was already half-open (SYN-RECEIVED) when the services
    /// last ran, so its SYN-ACK is out: it is the original handshake when a
    /// duplicate SYN lands in another socket of the pool.
    pub(crate) half_open: bool,
}

impl TcpSlot {
    /// An unassigned slot, for static arrays.
    pub const EMPTY: TcpSlot = TcpSlot {
        handle: None,
        service: Service::Echo,
        port: 0,
        generation: 0,
        conn: None,
        half_open: false,
    };

    /// Whether a connection is in progress.
    pub fn busy(&self) -> bool {
        self.conn.is_some()
    }

    /// Moves this slot's socket and session forward. Returns whether
    /// anything happened (bytes moved, state changed).
    pub(crate) fn poll(
        &mut self,
        index: usize,
        socket: &mut tcp::Socket,
        cx: &mut Shared<'_, '_>,
        now: Instant,
    ) -> bool {
        let state = socket.state();
        let Some(conn) = self.conn.as_mut() else {
            return self.accept(index, socket, cx, now);
        };
        // A reset during the handshake sends a passively opened socket back
        // to LISTEN by itself; any other end leaves it CLOSED or TIME-WAIT.
        if matches!(state, State::Closed | State::TimeWait | State::Listen) {
            if !conn.fin_seen && conn.closed_at.is_none() {
                warn!("tcp {}: connection from {} reset", self.port, conn.peer);
            } else {
                debug!("tcp {}: connection from {} closed", self.port, conn.peer);
            }
            if let Proto::Chat(chat) = &conn.proto {
                cx.responder.ended(chat.id());
            }
            self.conn = None;
            if state != State::Listen {
                self.listen(socket);
            }
            return true;
        }
        conn.drive(socket, cx, now)
    }

    /// Opens a session once a client has connected, or re-listens a socket
    /// whose last connection is over.
    fn accept(
        &mut self,
        index: usize,
        socket: &mut tcp::Socket,
        cx: &mut Shared<'_, '_>,
        now: Instant,
    ) -> bool {
        self.half_open = socket.state() == State::SynReceived;
        match socket.state() {
            State::Listen | State::SynReceived | State::SynSent => false,
            State::Closed | State::TimeWait => self.listen(socket),
            _ => {
                let Some(peer) = socket.remote_endpoint() else {
                    return false;
                };
                self.generation = self.generation.wrapping_add(1);
                socket.set_timeout(Some(cx.limits.peer_timeout));
                // The last connection's FIN rescue (see `FIN_RESCUE`) must
                // not outlive it: `listen` keeps socket options.
                socket.set_keep_alive(None);
                let proto = match self.service {
                    Service::Echo => Proto::Echo(Echo::new()),
                    Service::Login => Proto::Login(LoginSession::new()),
                    Service::Chat => Proto::Chat(ChatSession::new(SessionId {
                        transport: Transport::Tcp,
                        // `Node::new` refuses more than 256 TCP sockets.
                        index: index as u8,
                        generation: self.generation,
                    })),
                };
                info!("tcp {}: accepted {}", self.port, peer);
                let mut conn = Conn {
                    proto,
                    out: Outbox::new(),
                    peer,
                    last_rx: now,
                    fin_seen: false,
                    closed_at: None,
                    idle_fired: false,
                };
                conn.proto.open(cx, now, peer.addr, &mut conn.out);
                self.conn = Some(conn);
                true
            }
        }
    }

    /// Puts the socket back to listening. Returns whether it did.
    fn listen(&mut self, socket: &mut tcp::Socket) -> bool {
        // A socket in TIME-WAIT is reused at once (smoltcp allows `listen`
        // from TIME-WAIT): holding the slot for the TIME-WAIT period would
        // refuse clients for nothing, since a client's next connection comes
        // from a new port.
        match socket.listen(self.port) {
            Ok(()) => true,
            Err(_) => {
                warn!("tcp {}: cannot listen", self.port);
                false
            }
        }
    }
}

impl Conn {
    /// Feeds received bytes to the protocol and flushes replies until
    /// neither moves. Bounded: each round moves bytes or ends the loop,
    /// and the round count is capped.
    fn drive(&mut self, socket: &mut tcp::Socket, cx: &mut Shared<'_, '_>, now: Instant) -> bool {
        let mut any = false;
        for _ in 0..ROUNDS {
            let mut moved = false;

            if !self.out.is_empty() && socket.can_send() {
                let n = socket.send_slice(self.out.pending()).unwrap_or(0);
                self.out.advance(n);
                moved |= n > 0;
            }

            let reading = self.out.is_empty()
                && self.closed_at.is_none()
                && !self.proto.finished()
                && socket.can_recv();
            if reading && matches!(self.proto, Proto::Echo(_)) {
                // Echo bytes go from the receive buffer straight to the
                // send buffer, a chunk at a time: no outbox in between.
                if echo::relay(socket) > 0 {
                    self.last_rx = now;
                    moved = true;
                }
            } else if reading {
                let (proto, out) = (&mut self.proto, &mut self.out);
                let n = socket.recv(|data| {
                    let n = proto.recv(cx, now, data, out);
                    (n, n)
                });
                if let Ok(1..) = n {
                    self.last_rx = now;
                    moved = true;
                }
                // A session may answer without consuming anything (a
                // password check that finished inside `recv`): that reply
                // must be flushed now, not when the client next speaks.
                moved |= !self.out.is_empty();
            }

            if !self.fin_seen && peer_finished(socket) {
                self.fin_seen = true;
                self.proto.peer_closed(cx, now, &mut self.out);
                moved = true;
            }

            if self.out.is_empty() && self.closed_at.is_none() {
                self.proto.poll(cx, now, &mut self.out);
                moved |= !self.out.is_empty();
            }

            any |= moved;
            if !moved {
                break;
            }
        }

        if self.closed_at.is_none()
            && !self.idle_fired
            && now >= self.last_rx + cx.limits.idle_timeout
        {
            info!("tcp: {} idle, closing", self.peer);
            self.idle_fired = true;
            self.proto.idle(&mut self.out);
            any = true;
        }

        match self.closed_at {
            None if self.out.is_empty() && (self.proto.finished() || self.idle_fired) => {
                socket.close();
                socket.set_keep_alive(Some(FIN_RESCUE));
                self.closed_at = Some(now);
                any = true;
            }
            Some(at) if now >= at + cx.limits.peer_timeout => {
                info!("tcp: {} never finished closing, aborted", self.peer);
                socket.abort();
                any = true;
            }
            _ => {}
        }
        any
    }

    /// The earliest time this connection needs a poll.
    pub(crate) fn poll_at(
        &self,
        idle_timeout: Duration,
        peer_timeout: Duration,
    ) -> Option<Instant> {
        let idle = match self.closed_at {
            Some(at) => Some(at + peer_timeout),
            None if !self.idle_fired => Some(self.last_rx + idle_timeout),
            None => None,
        };
        match (self.proto.poll_at(), idle) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// Drops a handshake that duplicates one already in progress.
///
/// smoltcp hands a segment to the first socket that accepts it, and a
/// listening socket accepts any SYN. So when a client retransmits its SYN
/// (its SYN-ACK was lost), a *second* listening socket of the pool can take
/// it: two half-open connections with different sequence numbers, and the
/// client's connection ends in a reset. Called after each received SYN
/// (so before egress, and before the next segment of that client can reach
/// the duplicate; `syn_watch` tells which frames those are), this returns
/// such a socket to listening before it answers; the first socket
/// retransmits its own SYN-ACK.
///
/// The socket kept is the one that already has a session or was already
/// half-open before this poll (its SYN-ACK is out, and the client may have
/// answered it). Only when both copies arrived in the same poll does the
/// lower socket win. The index alone cannot tell: a lower socket of the
/// pool may have gone back to listening between the two copies.
pub(crate) fn drop_duplicate_handshakes(slots: &mut [TcpSlot], sockets: &mut SocketSet<'_>) {
    for i in 0..slots.len() {
        let Some(handle) = slots[i].handle else {
            continue;
        };
        if slots[i].conn.is_some() {
            continue;
        }
        let socket = sockets.get::<tcp::Socket>(handle);
        if socket.state() != State::SynReceived {
            continue;
        }
        let tuple = (socket.local_endpoint(), socket.remote_endpoint());
        let mine = slots[i].half_open;
        let duplicate = slots.iter().enumerate().any(|(j, other)| {
            let Some(h) = other.handle else { return false };
            let s = sockets.get::<tcp::Socket>(h);
            let older = other.conn.is_some()
                || (other.half_open && !mine)
                || (other.half_open == mine && j < i);
            j != i
                && older
                && !matches!(s.state(), State::Listen | State::Closed | State::TimeWait)
                && (s.local_endpoint(), s.remote_endpoint()) == tuple
        });
        if duplicate {
            debug!("tcp {}: duplicate SYN dropped", slots[i].port);
            let socket = sockets.get_mut::<tcp::Socket>(handle);
            // `abort` then `listen` in the same poll: the reset is never sent,
            // because `listen` forgets the connection first.
            socket.abort();
            let _ = socket.listen(slots[i].port);
        }
    }
}

/// Keep-alive interval while a connection closes: works around a smoltcp
/// 0.14 bug. When our FIN is the only thing unacknowledged and three
/// duplicate ACKs arrive (the client dropped the FIN because it came out
/// of order, and acknowledges the data again), smoltcp's fast retransmit
/// finds no data to resend, sends nothing and stops the retransmission
/// timer: the FIN is never sent again, and the client waits for the close
/// until the peer timeout resets the connection. A keep-alive timer makes
/// smoltcp build a segment again, and the pending fast retransmit then
/// carries the FIN. While the FIN is in flight normally, the
/// retransmission timer runs instead and this costs nothing; after it is
/// acknowledged (FIN-WAIT-2), it costs one probe per interval.
const FIN_RESCUE: Duration = Duration::from_secs(1);

/// Upper bound on feed/flush rounds per poll of one connection. Each round
/// moves up to a reply's worth of bytes (an echo: [`echo::RELAY_CHUNK`]);
/// the cap keeps one busy client from starving the others within a poll.
const ROUNDS: usize = 64;

/// The client sent FIN and everything before it has been read.
fn peer_finished(socket: &tcp::Socket) -> bool {
    !socket.can_recv()
        && matches!(
            socket.state(),
            State::CloseWait | State::LastAck | State::Closing | State::TimeWait
        )
}

impl Proto {
    fn as_protocol(&mut self) -> &mut dyn Protocol {
        match self {
            Proto::Echo(p) => p,
            Proto::Login(p) => p,
            Proto::Chat(p) => p,
        }
    }

    fn open(
        &mut self,
        cx: &mut Shared<'_, '_>,
        now: Instant,
        peer: smoltcp::wire::IpAddress,
        out: &mut Outbox,
    ) {
        self.as_protocol().open(cx, now, peer, out)
    }
    fn recv(
        &mut self,
        cx: &mut Shared<'_, '_>,
        now: Instant,
        data: &[u8],
        out: &mut Outbox,
    ) -> usize {
        self.as_protocol().recv(cx, now, data, out)
    }
    fn peer_closed(&mut self, cx: &mut Shared<'_, '_>, now: Instant, out: &mut Outbox) {
        self.as_protocol().peer_closed(cx, now, out)
    }
    fn poll(&mut self, cx: &mut Shared<'_, '_>, now: Instant, out: &mut Outbox) {
        self.as_protocol().poll(cx, now, out)
    }
    fn idle(&mut self, out: &mut Outbox) {
        self.as_protocol().idle(out)
    }
    fn finished(&self) -> bool {
        match self {
            Proto::Echo(p) => p.finished(),
            Proto::Login(p) => p.finished(),
            Proto::Chat(p) => p.finished(),
        }
    }
    fn poll_at(&self) -> Option<Instant> {
        match self {
            Proto::Echo(p) => p.poll_at(),
            Proto::Login(p) => p.poll_at(),
            Proto::Chat(p) => p.poll_at(),
        }
    }
}
