//! Where the sockets' memory comes from.
//!
//! The core never allocates. A board hands in static arrays sized at compile
//! time from its [`Config`](crate::Config) ([`StaticMemory`], `static_memory!`); the host
//! uses [`HostMemory`], which owns `Vec`s sized at run time. Either way the
//! node gets one [`Memory`] and carves the socket buffers out of it.

use managed::ManagedSlice;
use smoltcp::iface::SocketStorage;
use smoltcp::socket::udp::PacketMetadata;

#[cfg(feature = "std")]
use crate::config::Config;
use crate::net::tcp_slot::TcpSlot;

/// Memory for one [`crate::net::Node`]. Each part must be at least as large
/// as [`Config::memory_needs`] says.
pub struct Memory<'a> {
    /// Storage of the smoltcp socket set.
    pub sockets: ManagedSlice<'a, SocketStorage<'a>>,
    /// Per-connection protocol state, one per TCP socket.
    pub tcp_slots: &'a mut [TcpSlot],
    /// Datagram metadata for the UDP sockets' queues.
    pub udp_meta: &'a mut [PacketMetadata],
    /// Raw bytes for every socket buffer.
    pub bytes: &'a mut [u8],
}

/// Fixed-size memory for a board: put it in a `static` (const-initialised,
/// so it lands in `.bss` and is never built on the stack), and name the
/// type with [`static_memory!`](crate::static_memory) so its sizes follow
/// the board's `Config`.
pub struct StaticMemory<
    const SOCKETS: usize,
    const SLOTS: usize,
    const META: usize,
    const BYTES: usize,
> {
    sockets: [SocketStorage<'static>; SOCKETS],
    slots: [TcpSlot; SLOTS],
    meta: [PacketMetadata; META],
    bytes: [u8; BYTES],
}

impl<const SOCKETS: usize, const SLOTS: usize, const META: usize, const BYTES: usize>
    StaticMemory<SOCKETS, SLOTS, META, BYTES>
{
    /// All-empty memory; `const` so it can initialise a `static`.
    pub const fn new() -> Self {
        StaticMemory {
            sockets: [SocketStorage::EMPTY; SOCKETS],
            slots: [TcpSlot::EMPTY; SLOTS],
            meta: [PacketMetadata::EMPTY; META],
            bytes: [0; BYTES],
        }
    }

    /// Lends the whole memory to a node for the rest of the program.
    pub fn memory(&'static mut self) -> Memory<'static> {
        Memory {
            sockets: ManagedSlice::Borrowed(&mut self.sockets[..]),
            tcp_slots: &mut self.slots,
            udp_meta: &mut self.meta,
            bytes: &mut self.bytes,
        }
    }
}

impl<const SOCKETS: usize, const SLOTS: usize, const META: usize, const BYTES: usize> Default
    for StaticMemory<SOCKETS, SLOTS, META, BYTES>
{
    fn default() -> Self {
        Self::new()
    }
}

/// The [`StaticMemory`] type that fits a `const` [`Config`]:
///
/// ```
/// const CONFIG: smoltalk::Config = smoltalk::Config::SMALL;
/// type Mem = smoltalk::static_memory!(CONFIG);
/// static MEMORY_SIZE: usize = core::mem::size_of::<Mem>();
/// ```
#[macro_export]
macro_rules! static_memory {
    ($config:path) => {
        $crate::net::StaticMemory<
            { $config.memory_needs().sockets },
            { $config.memory_needs().tcp_slots },
            { $config.memory_needs().udp_meta },
            { $config.memory_needs().bytes },
        >
    };
}

/// Memory owned by `Vec`s, sized from a run-time [`Config`].
#[cfg(feature = "std")]
pub struct HostMemory {
    sockets: usize,
    slots: Vec<TcpSlot>,
    meta: Vec<PacketMetadata>,
    bytes: Vec<u8>,
}

#[cfg(feature = "std")]
impl HostMemory {
    /// Exactly what `config` needs.
    pub fn new(config: &Config) -> Self {
        let needs = config.memory_needs();
        HostMemory {
            sockets: needs.sockets,
            slots: (0..needs.tcp_slots).map(|_| TcpSlot::EMPTY).collect(),
            meta: vec![PacketMetadata::EMPTY; needs.udp_meta],
            bytes: vec![0; needs.bytes],
        }
    }

    /// Lends the memory to a node.
    pub fn memory(&mut self) -> Memory<'_> {
        Memory {
            sockets: ManagedSlice::Owned((0..self.sockets).map(|_| SocketStorage::EMPTY).collect()),
            tcp_slots: &mut self.slots,
            udp_meta: &mut self.meta,
            bytes: &mut self.bytes,
        }
    }
}
