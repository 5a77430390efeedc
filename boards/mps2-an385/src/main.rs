//! smoltalk on QEMU's `mps2-an385`: a Cortex-M3 with a LAN9118 Ethernet
//! controller, reached from the host through QEMU user networking.
//!
//! It runs every service of the core — TCP and UDP echo, login, the TCP chat
//! and the UDP hotline — on a static 10.0.2.15/24.
//!
//! # Layout
//!
//! - `main.rs` (this file): the configuration, boot, and the main loop.
//! - [`lan9118`]: the Ethernet driver, a smoltcp `phy::Device`.
//! - [`clock`]: microseconds since boot (SysTick) and the one-shot wake-up
//!   alarm (CMSDK TIMER0).
//! - [`mmio`]: the volatile register wrapper both drivers use.
//! - [`memcpy`]: the copy routine every `copy_from_slice` ends up in, eight
//!   words at a time; checked at boot.
//! - [`profile`]: where the time goes, with the `profile` feature
//!   (`./bench --profile`); nothing without it.
//! - [`rt`]: interrupt dispatch, fault and panic handlers, log timestamps.
//!
//! # The main loop
//!
//! ```text
//!   ┌─> node.poll ─> node.poll_delay ─┬─ a frame in the last 1 ms: spin ──┐
//!   │                                 │  until a frame or the deadline    │
//!   │                                 └─ else: WFI until NIC IRQ 13 (a    │
//!   │                                    frame) or TIMER0 IRQ 8 (deadline)│
//!   └─────────────────────────────────────────────────────────────────────┘
//! ```
//!
//! A frame ends the wait at once, so a round trip costs no timer tick; the
//! alarm covers retransmissions, delayed ACKs, chat flushes and idle timeouts.
//! Right after traffic the core watches the NIC instead of sleeping
//! ([`BUSY_POLL`]): the next frame of a conversation then costs no wake-up.
//! After every poll that did something, the driver learns how many
//! connections share the NIC's receive FIFO (`Lan9118::share_window`).

#![no_std]
#![no_main]
#![deny(unsafe_op_in_unsafe_fn)]

mod clock;
mod lan9118;
mod memcpy;
mod mmio;
mod profile;
mod rt;

use smoltalk::chat::AutoResponder;
use smoltalk::config::{Buffers, Pools};
use smoltalk::login::Store;
use smoltalk::net::ChecksumOffload;
use smoltalk::{Config, NetConfig, Node};
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{Ipv4Address, Ipv4Cidr};
use static_cell::ConstStaticCell;

use crate::clock::Alarm;
use crate::lan9118::Lan9118;

/// Where the AN385 FPGA image puts its peripherals.
mod board {
    /// LAN9118 register block.
    pub const LAN9118_BASE: usize = 0x4020_0000;
    /// CMSDK APB TIMER0, used as the wake-up alarm.
    pub const TIMER0_BASE: usize = 0x4000_0000;
}

/// The services' configuration: the core's small-board defaults, with
/// larger pools and buffers because this board has 4 MiB of RAM.
///
/// - 16 clients at once on the TCP echo port 7, 4 on the tutorial's hello
///   port 8898, 4 for login and 4 for the chat (smoltcp 0.14 has no listen
///   backlog: one socket per client; client `N + 1` is refused with a RST).
///   Every socket also costs time: smoltcp walks the whole socket set a few
///   times per frame (`./bench --profile` puts everything but the FIFOs
///   and frame building at 16 % of the core's time with these 31 sockets,
///   14.5 % with one per service), so the hello port does not get 16 it
///   would not use.
/// - TCP receive buffers of four full segments (5840 bytes): the largest
///   window the driver lets one connection advertise (its share of the
///   NIC's RX FIFO, see `lan9118::share_window`).
/// - 4 KiB TCP send buffers: echoed data waits there for the client's ACK
///   (8 KiB measured no faster).
/// - 8 KiB of UDP payload per socket and direction: a client may have eight
///   1 KiB datagrams in flight before the firmware has to drop one.
/// - All 28 TCP and 3 UDP sockets cost about 370 KiB of the 4 MiB RAM, 11.3
///   KiB per TCP connection (the boot log prints the exact figures).
const CONFIG: Config = Config {
    pools: Pools {
        echo: [16, 4],
        login: 4,
        chat: 4,
    },
    buffers: Buffers {
        tcp_rx: lan9118::TCP_RX_BUFFER,
        tcp_tx: 4096,
        udp_payload: 8192,
        udp_packets: 8,
    },
    ..Config::SMALL
};

/// The address QEMU user networking expects its guest at. No gateway: the
/// firmware answers hosts on its own subnet (slirp's 10.0.2.2, through which
/// every forwarded host connection arrives) and routes nowhere else.
const IP: Ipv4Cidr = Ipv4Cidr::new(Ipv4Address::new(10, 0, 2, 15), 24);

/// The credential store: the tutorial's three demo users, salted and hashed.
static USERS: Store<'static> = smoltalk::login::store::DEMO;

/// Every socket buffer and session slot, sized from [`CONFIG`] at compile
/// time. Const-initialised in a static, so it lands in `.bss` and is never
/// built on the stack.
type Memory = smoltalk::static_memory!(CONFIG);
static MEMORY: ConstStaticCell<Memory> = ConstStaticCell::new(Memory::new());

/// [`CONFIG`] with two more sockets on the echo port: what [`Memory`] would
/// be with two more connections.
const CONFIG_PLUS_TWO: Config = Config {
    pools: Pools {
        echo: [CONFIG.pools.echo[0] + 2, CONFIG.pools.echo[1]],
        ..CONFIG.pools
    },
    ..CONFIG
};
/// The static RAM one more TCP connection costs: its two socket buffers,
/// its smoltcp socket and its session slot. (Nothing else grows with the
/// pools; the stack does not.)
const RAM_PER_CONNECTION: usize =
    (size_of::<smoltalk::static_memory!(CONFIG_PLUS_TWO)>() - size_of::<Memory>()) / 2;

/// The longest the core sleeps while QEMU's user networking may have work
/// that the firmware's own frames created.
///
/// slirp runs in QEMU's main loop, which sleeps on slirp's timers (500 ms
/// when idle) and does not notice slirp work that the guest's frames
/// created — a delayed ACK to send, a newly forwarded connection to poll, a
/// host socket to write — until something wakes it. Arming a guest timer
/// does: QEMU moves its timer deadline and kicks the loop. Measured here:
/// without the cap, a new connection's first bytes waited up to 500 ms and
/// a 1 MiB TCP echo ran at 1.7 MiB/s; with it, at most 50 ms and about 12
/// MiB/s. Only frames the firmware sends create such work, and the first
/// sleep after them kicks the loop, so the cap holds for [`SLIRP_AWAKE`]
/// after the last frame sent; then the core sleeps until its next deadline
/// and QEMU idles at about 0.03% of a host core instead of 0.4-0.6%. (On
/// real hardware the cap only costs those wake-ups.)
const MAX_SLEEP: Duration = Duration::from_millis(50);

/// How long after the firmware's last frame [`MAX_SLEEP`] applies. One kick
/// after the last frame is enough (slirp then re-arms its own timers); the
/// rest is margin, at 20 wake-ups a second.
const SLIRP_AWAKE: Duration = Duration::from_secs(1);

/// How long the core keeps watching the NIC after the last frame it
/// received, instead of sleeping.
///
/// A conversation's next frame (a reply, the next segment of a stream, an
/// ACK) usually follows within a few hundred microseconds. Asleep, it would
/// cost a wake-up; under QEMU that is a thread hand-off in the emulator, 10
/// to 40 µs of every 64 B round trip (`./bench`). On real silicon the
/// wake-up is cheap and this only costs up to a millisecond of awake time
/// per burst; idle, the core still sleeps in `WFI`.
const BUSY_POLL: Duration = Duration::from_micros(1000);

/// NOPs between two NIC checks while spinning (see [`spin`]): about a
/// microsecond under QEMU.
const SPIN_PAUSE: u32 = 50;

/// How often the firmware logs a one-line status (sessions, NIC counters).
const STATUS_EVERY: Duration = Duration::from_secs(60);

#[cortex_m_rt::entry]
fn main() -> ! {
    let core = cortex_m::Peripherals::take().expect("core peripherals taken once");
    clock::start(core.SYST);
    defmt::info!(
        "smoltalk {=str} on mps2-an385 (Cortex-M3, LAN9118)",
        env!("CARGO_PKG_VERSION")
    );

    // SAFETY: the AN385 memory map puts a LAN9118 and a CMSDK timer at these
    // addresses, and nothing else in this program touches them.
    let mut nic = match unsafe { Lan9118::new(board::LAN9118_BASE) } {
        Ok(nic) => nic,
        Err(e) => defmt::panic!("LAN9118 init failed: {}", e),
    };
    // SAFETY: as above.
    let alarm = unsafe { Alarm::new(board::TIMER0_BASE) };
    match memcpy::self_test() {
        Ok(cases) => defmt::info!("memcpy self-test passed ({=u32} cases)", cases),
        Err((len, d, s)) => defmt::panic!(
            "memcpy self-test failed: {=usize} bytes, destination offset {=usize}, source offset {=usize}",
            len,
            d,
            s
        ),
    }
    profile::start();
    profile::calibrate(|| nic.id_rev());
    rt::install(nic.interrupt_ack(), alarm);
    defmt::info!(
        "LAN9118 id {=u32:#010x}, mac {}, link {}",
        nic.id_rev(),
        nic.mac_address(),
        nic.link_up().unwrap_or(false)
    );

    // smoltcp sums checksums 16 bits at a time; the wrapper does it a word
    // at a time (src/net/offload.rs in the core).
    let mut nic = ChecksumOffload::new(nic);
    let net = NetConfig {
        mac: nic.mac_address(),
        ip: IP,
        gateway: None,
        // The AN385 has no RNG. Microseconds since reset differ from boot to
        // boot (under QEMU at least), which is enough to vary TCP initial
        // sequence numbers; it is not a secret.
        random_seed: clock::now_us() ^ 0x736d_6f6c_7461_6c6b,
    };
    let memory = MEMORY.take().memory();
    let mut node = match Node::new(
        &CONFIG,
        &net,
        &mut nic,
        memory,
        &USERS,
        AutoResponder::new(),
        clock::now(),
    ) {
        Ok(node) => node,
        Err(e) => defmt::panic!("node setup failed: {}", e),
    };

    // The test harness reads this line to learn the pool sizes, and the
    // benchmark the next one.
    defmt::info!(
        "pools: {=usize} echo on port {=u16}, {=usize} on port {=u16}, {=usize} login, {=usize} chat; tcp buffers {=usize}/{=usize} bytes",
        CONFIG.pools.echo[0],
        CONFIG.ports.tcp_echo[0],
        CONFIG.pools.echo[1],
        CONFIG.ports.tcp_echo[1],
        CONFIG.pools.login,
        CONFIG.pools.chat,
        CONFIG.buffers.tcp_rx,
        CONFIG.buffers.tcp_tx
    );
    defmt::info!(
        "ram: {=usize} bytes for {=usize} tcp and {=usize} udp sockets; {=usize} bytes per tcp connection ({=usize} buffers + {=usize} socket and session)",
        size_of::<Memory>(),
        CONFIG.tcp_sockets(),
        smoltalk::config::UDP_SOCKETS,
        RAM_PER_CONNECTION,
        CONFIG.buffers.tcp_rx + CONFIG.buffers.tcp_tx,
        RAM_PER_CONNECTION - CONFIG.buffers.tcp_rx - CONFIG.buffers.tcp_tx
    );
    rt::unmask_interrupts();
    let mut next_status = clock::now() + STATUS_EVERY;
    // The frames sent and received so far, and when each count last
    // changed (for SLIRP_AWAKE and BUSY_POLL).
    let mut last_tx = (nic.stats().tx_frames, clock::now());
    let mut last_rx = (nic.stats().rx_frames, clock::now());
    loop {
        let now = clock::now();
        // `Node::poll` returns after a round in which nothing happened, or
        // with `poll_delay` at zero when its round budget ran out: either
        // way the sleep below is safe, and no second poll is needed.
        let t = profile::now();
        let busy = node.poll(now, &mut nic);
        profile::add(profile::Phase::Poll, t);
        profile::report(nic.stats().rx_frames, nic.stats().tx_frames);
        if busy {
            // Connections open and close only in a poll.
            nic.share_window(node.usage().tcp_sessions);
        }

        let now = clock::now();
        if now >= next_status {
            next_status = now + STATUS_EVERY;
            let usage = node.usage();
            defmt::info!(
                "status: {=usize} tcp sessions, {=usize} hotline callers, {=usize} locked-out addresses; nic {}, {=u32} dropped, {=u32} bad checksums, tcp window {=u16} bytes",
                usage.tcp_sessions,
                usage.hotline_sessions,
                usage.lockout_entries,
                nic.stats(),
                nic.rx_dropped(),
                nic.bad_checksums(),
                nic.window()
            );
        }
        let until_status = next_status - now;
        let mut delay = node
            .poll_delay(now)
            .map_or(until_status, |d| d.min(until_status));
        let tx = nic.stats().tx_frames;
        if tx != last_tx.0 {
            last_tx = (tx, now);
        }
        if now - last_tx.1 < SLIRP_AWAKE {
            delay = delay.min(MAX_SLEEP);
        }
        let rx = nic.stats().rx_frames;
        if rx != last_rx.0 {
            last_rx = (rx, now);
        }
        let spin_end = last_rx.1 + BUSY_POLL;
        if now < spin_end {
            spin(&nic, (now + delay).min(spin_end));
        } else {
            sleep(&nic, &alarm, delay);
        }
    }
}

/// Watches the NIC until a frame arrives or the clock reaches `until`,
/// without sleeping (see [`BUSY_POLL`]).
fn spin(nic: &Lan9118, until: Instant) {
    while !nic.rx_pending() && clock::now() < until {
        // Each check is two register reads, and under QEMU every register
        // access takes the emulator's global lock, which its network thread
        // needs to deliver the very frame being waited for: pause between
        // checks instead of hammering the lock.
        for _ in 0..SPIN_PAUSE {
            cortex_m::asm::nop();
        }
    }
}

/// Sleeps until a frame arrives or `delay` passes, whichever is first.
///
/// The NIC's interrupt is enabled only here ([`Lan9118::enable_wake`]):
/// awake, the loop reads the FIFO without being interrupted per frame.
/// Interrupts are masked while deciding: a frame that arrives between the
/// `rx_pending` check and `WFI` pends its interrupt, and a pending interrupt
/// ends `WFI` even while masked. Its handler runs when the mask lifts.
///
/// (Masking interrupts for the whole time awake, instead of disabling the
/// NIC's, was measured and is much worse under QEMU: a pending but masked
/// interrupt makes the emulator leave its translated code at every block to
/// re-check it, and the 1 MiB echo fell from 10-11 to 8-9 MiB/s.)
fn sleep(nic: &Lan9118, alarm: &Alarm, delay: Duration) {
    if delay == Duration::ZERO {
        return;
    }
    cortex_m::interrupt::free(|_| {
        nic.enable_wake();
        if !nic.rx_pending() {
            alarm.set(delay);
            cortex_m::asm::wfi();
        }
        nic.disable_wake();
    });
    alarm.cancel();
}
