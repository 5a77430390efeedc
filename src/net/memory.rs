//! Where the sockets' memory comes from.
//!
//! The core never allocates. A board hands in static arrays sized at compile
//! time from its [`Config`](crate::Config) ([`StaticMemory`], `static_memory!`); the host
//! uses [`HostMemory`], which owns `Vec`s sized at run time. Either way the
//! node gets one [`Memory`] and carves the socket buffers out of it.

use core::mem::MaybeUninit;

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
///
/// The socket storage, slots and metadata start *uninitialised* and are
/// filled in by [`StaticMemory::memory`]. Their "empty" values are not all
/// zero bytes, so const-initialising them would put the whole struct in
/// `.data`: tens of KiB of flash holding a copy of nothing.
pub struct StaticMemory<
    const SOCKETS: usize,
    const SLOTS: usize,
    const META: usize,
    const BYTES: usize,
> {
    sockets: MaybeUninit<[SocketStorage<'static>; SOCKETS]>,
    slots: MaybeUninit<[TcpSlot; SLOTS]>,
    meta: MaybeUninit<[PacketMetadata; META]>,
    bytes: [u8; BYTES],
}

impl<const SOCKETS: usize, const SLOTS: usize, const META: usize, const BYTES: usize>
    StaticMemory<SOCKETS, SLOTS, META, BYTES>
{
    /// Uninitialised tables and zeroed buffers; `const` so it can
    /// initialise a `static` that lives in `.bss`.
    pub const fn new() -> Self {
        StaticMemory {
            sockets: MaybeUninit::uninit(),
            slots: MaybeUninit::uninit(),
            meta: MaybeUninit::uninit(),
            bytes: [0; BYTES],
        }
    }

    /// Fills the tables with empty entries and lends the whole memory to a
    /// node for the rest of the program. Taking `&'static mut self` means
    /// it can run only once per static.
    pub fn memory(&'static mut self) -> Memory<'static> {
        Memory {
            sockets: ManagedSlice::Borrowed(fill(&mut self.sockets, || SocketStorage::EMPTY)),
            tcp_slots: fill(&mut self.slots, || TcpSlot::EMPTY),
            udp_meta: fill(&mut self.meta, || PacketMetadata::EMPTY),
            bytes: &mut self.bytes,
        }
    }
}

/// Writes `make()` into every element of an uninitialised array and returns
/// it initialised.
#[allow(unsafe_code)]
fn fill<T, const N: usize>(array: &mut MaybeUninit<[T; N]>, make: impl Fn() -> T) -> &mut [T] {
    let first = array.as_mut_ptr().cast::<T>();
    for i in 0..N {
        // SAFETY: `i < N`, so `first.add(i)` stays inside the array, which
        // `array` borrows exclusively. `write` does not drop the old,
        // uninitialised value.
        unsafe { first.add(i).write(make()) };
    }
    // SAFETY: every element was written just above.
    unsafe { array.assume_init_mut() }
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

impl<const SOCKETS: usize, const SLOTS: usize, const META: usize, const BYTES: usize> Default
    for StaticMemory<SOCKETS, SLOTS, META, BYTES>
{
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::Hub;

    const CONFIG: Config = Config::SMALL;
    type Mem = crate::static_memory!(CONFIG);

    #[test]
    fn static_memory_fits_its_config_and_builds_a_node() {
        let mem: &'static mut Mem = Box::leak(Box::new(Mem::new()));
        let memory = mem.memory();
        let needs = CONFIG.memory_needs();
        assert_eq!(memory.sockets.len(), needs.sockets);
        assert_eq!(memory.tcp_slots.len(), needs.tcp_slots);
        assert!(memory.tcp_slots.iter().all(|s| !s.busy()));
        let net = crate::NetConfig {
            mac: smoltcp::wire::EthernetAddress([2, 0, 0, 0, 0, 9]),
            ip: smoltcp::wire::Ipv4Cidr::new(smoltcp::wire::Ipv4Address::new(10, 0, 2, 15), 24),
            gateway: None,
            random_seed: 1,
        };
        let mut port = Hub::new(1).add_port();
        let store = crate::login::store::DEMO;
        let node = crate::Node::new(
            &CONFIG,
            &net,
            &mut port,
            memory,
            Box::leak(Box::new(store)),
            crate::chat::AutoResponder::new(),
            smoltcp::time::Instant::ZERO,
        );
        assert!(node.is_ok());
    }

    /// What `Node::new` says about `config` with `mem`, if it refuses.
    fn setup_error(config: &Config, mem: &mut HostMemory) -> Option<String> {
        let mut port = Hub::new(1).add_port();
        let net = crate::NetConfig {
            mac: smoltcp::wire::EthernetAddress([2, 0, 0, 0, 0, 9]),
            ip: smoltcp::wire::Ipv4Cidr::new(smoltcp::wire::Ipv4Address::new(10, 0, 2, 15), 24),
            gateway: None,
            random_seed: 1,
        };
        let store = crate::login::store::DEMO;
        crate::Node::new(
            config,
            &net,
            &mut port,
            mem.memory(),
            &store,
            crate::chat::AutoResponder::new(),
            smoltcp::time::Instant::ZERO,
        )
        .err()
        .map(|e| e.to_string())
    }

    #[test]
    fn too_little_memory_is_a_clear_error() {
        let mut config = Config::SMALL;
        let mut mem = HostMemory::new(&config);
        config.pools.chat += 1;
        assert_eq!(
            setup_error(&config, &mut mem).as_deref(),
            Some("not enough memory for sockets: need 12, got 11")
        );
    }

    /// Session ids number TCP sockets with a `u8`: more would alias.
    #[test]
    fn more_tcp_sockets_than_session_ids_is_a_clear_error() {
        let mut config = Config::SMALL;
        config.buffers.tcp_rx = 64;
        config.buffers.tcp_tx = 64;
        config.pools.echo = [200, 52];
        let mut mem = HostMemory::new(&config);
        assert_eq!(setup_error(&config, &mut mem), None, "256 is the limit");
        config.pools.echo = [200, 53];
        let mut mem = HostMemory::new(&config);
        assert_eq!(
            setup_error(&config, &mut mem).as_deref(),
            Some("the pools add up to 257 TCP sockets; at most 256")
        );
    }
}
