//! Every port, pool size, buffer size and limit of the services, in one place.
//!
//! Runtime values live in [`Config`], which is `const`-constructible so that a
//! board can size its static memory from it at compile time
//! ([`Config::memory_needs`]). Capacities that fix the *size of a type*
//! (message length, table sizes) are the `const`s below: changing one changes
//! the RAM every session costs, so they are deliberately not runtime knobs.

use smoltcp::time::Duration;

/// Longest message a chat or login client may send, in bytes (after the
/// line terminator is removed). Longer messages get `ERR message too long`.
/// 256 bytes is 85 Chinese characters: plenty for a chat line, and it keeps a
/// session's RAM small enough for a 64 KiB part.
pub const MAX_MESSAGE: usize = 256;

/// Capacity of one session's reply buffer. A chat reply may quote the
/// client's rewritten message (which can grow under the keyword rules), so it
/// holds two messages plus room for the canned answer.
pub const MAX_REPLY: usize = 2 * MAX_MESSAGE + 128;

/// How many UDP hotline clients (distinct address:port) are remembered at
/// once. Client number `HOTLINE_SESSIONS + 1` gets a "busy" reply.
pub const HOTLINE_SESSIONS: usize = 16;

/// How many client IP addresses the login lockout table tracks at once.
pub const LOCKOUT_ENTRIES: usize = 16;

/// The service ports. The defaults are the tutorial's ports plus the
/// well-known echo port 7.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ports {
    /// TCP echo (RFC 862): port 7, and the tutorial's hello port 8898.
    pub tcp_echo: [u16; 2],
    /// UDP echo (RFC 862): port 7, and the tutorial's UDP hello port 9000.
    pub udp_echo: [u16; 2],
    /// The login service (tutorial exercise 1).
    pub login: u16,
    /// The turn-taking TCP chat.
    pub chat: u16,
    /// The UDP "hotline" chat (tutorial exercise 2).
    pub hotline: u16,
}

/// How many TCP sockets listen on each port. smoltcp 0.14 has no listen
/// backlog: one socket serves one connection, so `N` sockets means `N`
/// concurrent clients, and client `N + 1` is refused with a RST.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pools {
    /// Sockets on each TCP echo port, in the order of [`Ports::tcp_echo`]:
    /// a board can give the RFC 862 port many clients and the tutorial's
    /// hello port a few. Every socket costs its buffers and a little time
    /// in each poll (smoltcp walks the whole socket set), so unused ones
    /// are not free.
    pub echo: [usize; 2],
    /// Sockets on the login port.
    pub login: usize,
    /// Sockets on the TCP chat port.
    pub chat: usize,
}

/// Socket buffer sizes. Throughput on the host wants large TCP buffers; a
/// 64 KiB board wants small ones. Both come from here, not from the code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Buffers {
    /// Receive buffer of every TCP socket, in bytes. It is the advertised
    /// window, so it bounds echo throughput.
    pub tcp_rx: usize,
    /// Send buffer of every TCP socket, in bytes.
    pub tcp_tx: usize,
    /// Payload bytes of each UDP socket's receive and send buffers. Must hold
    /// at least one full datagram, or smoltcp drops it.
    pub udp_payload: usize,
    /// Datagrams each UDP socket can queue in each direction.
    pub udp_packets: usize,
}

/// Time and rate limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// A TCP session that receives nothing for this long is told so and closed.
    pub idle_timeout: Duration,
    /// A chat message without a newline is complete once the client has been
    /// quiet for this long (see the framing rule in `chat::framing`).
    pub quiet_flush: Duration,
    /// A UDP hotline session that sends nothing for this long is forgotten.
    pub hotline_idle: Duration,
    /// A peer that acknowledges nothing we send for this long is reset, so a
    /// client that vanished without FIN or RST cannot hold a socket forever.
    pub peer_timeout: Duration,
    /// Failed logins from one IP address that trigger a lockout...
    pub login_max_failures: u8,
    /// ...when they happen within this window.
    pub login_window: Duration,
    /// How long a locked-out address is refused.
    pub login_lockout: Duration,
    /// PBKDF2 iterations done per poll, across all login sessions. This is
    /// what keeps a login from stalling the other services: on a 25 MHz
    /// Cortex-M3 one iteration costs roughly 0.1 ms.
    pub hash_iterations_per_poll: u32,
}

/// The whole service configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// Which port each service listens on.
    pub ports: Ports,
    /// How many clients each TCP service serves at once.
    pub pools: Pools,
    /// Socket buffer sizes.
    pub buffers: Buffers,
    /// Timeouts and rate limits.
    pub limits: Limits,
}

/// How much caller-provided memory a [`Config`] needs; see [`crate::net::Memory`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryNeeds {
    /// Entries in the smoltcp socket set.
    pub sockets: usize,
    /// TCP session slots (one per TCP socket).
    pub tcp_slots: usize,
    /// UDP packet metadata entries (per direction, all UDP sockets).
    pub udp_meta: usize,
    /// Bytes of socket buffers.
    pub bytes: usize,
}

/// Number of UDP sockets: two echo ports and the hotline.
pub const UDP_SOCKETS: usize = 3;

/// Sockets that are not services: the DHCP client, with feature `dhcp`.
pub const EXTRA_SOCKETS: usize = cfg!(feature = "dhcp") as usize;

impl Config {
    /// Defaults for a host: the tutorial's ports, 8 clients per TCP port and
    /// 64 KiB TCP buffers. The receive buffer is 65535, not 65536: one byte
    /// more turns on window scaling, and smoltcp 0.14 can then shrink a
    /// scaled window by rounding and ignore the client's acknowledgements
    /// (a hang seen about once in 135 bulk runs).
    pub const HOST: Config = Config {
        ports: Ports::TUTORIAL,
        pools: Pools {
            echo: [8, 8],
            login: 8,
            chat: 8,
        },
        buffers: Buffers {
            tcp_rx: 65535,
            tcp_tx: 65536,
            udp_payload: 4096,
            udp_packets: 16,
        },
        limits: Limits::DEFAULT,
    };

    /// Defaults for a microcontroller with tens of KiB of RAM.
    pub const SMALL: Config = Config {
        ports: Ports::TUTORIAL,
        pools: Pools {
            echo: [2, 2],
            login: 2,
            chat: 2,
        },
        buffers: Buffers {
            tcp_rx: 1024,
            tcp_tx: 1024,
            udp_payload: 1536,
            udp_packets: 4,
        },
        limits: Limits::DEFAULT,
    };

    /// Defaults for a microcontroller with a few hundred KiB of RAM (the
    /// real dev boards): four clients at once on every TCP port, 4 KiB
    /// receive windows, 2 KiB send buffers (replies are short). About
    /// 105 KiB of socket buffers.
    pub const MEDIUM: Config = Config {
        ports: Ports::TUTORIAL,
        pools: Pools {
            echo: [4, 4],
            login: 4,
            chat: 4,
        },
        buffers: Buffers {
            tcp_rx: 4096,
            tcp_tx: 2048,
            udp_payload: 1536,
            udp_packets: 4,
        },
        limits: Limits::DEFAULT,
    };

    /// Total TCP sockets: every echo port, login and chat.
    pub const fn tcp_sockets(&self) -> usize {
        self.pools.echo[0] + self.pools.echo[1] + self.pools.login + self.pools.chat
    }

    /// The memory [`crate::net::Node::new`] needs for this configuration.
    pub const fn memory_needs(&self) -> MemoryNeeds {
        let tcp = self.tcp_sockets();
        let b = &self.buffers;
        MemoryNeeds {
            sockets: tcp + UDP_SOCKETS + EXTRA_SOCKETS,
            tcp_slots: tcp,
            udp_meta: UDP_SOCKETS * 2 * b.udp_packets,
            bytes: tcp * (b.tcp_rx + b.tcp_tx) + UDP_SOCKETS * 2 * b.udp_payload,
        }
    }
}

impl Ports {
    /// The tutorial's ports, plus echo on 7.
    pub const TUTORIAL: Ports = Ports {
        tcp_echo: [7, 8898],
        udp_echo: [7, 9000],
        login: 8083,
        chat: 8081,
        hotline: 8086,
    };
}

impl Limits {
    /// Limits suitable everywhere.
    pub const DEFAULT: Limits = Limits {
        idle_timeout: Duration::from_secs(300),
        quiet_flush: Duration::from_millis(30),
        hotline_idle: Duration::from_secs(120),
        peer_timeout: Duration::from_secs(30),
        login_max_failures: 5,
        login_window: Duration::from_secs(60),
        login_lockout: Duration::from_secs(60),
        hash_iterations_per_poll: 16,
    };
}

impl Default for Config {
    fn default() -> Self {
        Config::HOST
    }
}
