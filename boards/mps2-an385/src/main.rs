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
//! - [`rt`]: interrupt dispatch, fault and panic handlers, log timestamps.
//!
//! # The main loop
//!
//! ```text
//!   ┌─> acknowledge NIC interrupt ─> node.poll ─> node.poll_delay
//!   │                                                   │
//!   └── NIC IRQ 13 (a frame) or TIMER0 IRQ 8 (deadline) <── WFI
//! ```
//!
//! A frame wakes the core at once, so a round trip costs no timer tick; the
//! alarm covers retransmissions, delayed ACKs, chat flushes and idle timeouts.
//! After every poll that did something, the driver learns how many
//! connections share the NIC's receive FIFO (`Lan9118::share_window`).

#![no_std]
#![no_main]
#![deny(unsafe_op_in_unsafe_fn)]

mod clock;
mod lan9118;
mod mmio;
mod rt;

use smoltalk::chat::AutoResponder;
use smoltalk::config::{Buffers, Pools};
use smoltalk::login::Store;
use smoltalk::{Config, NetConfig, Node};
use smoltcp::time::Duration;
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
/// - 16 clients at once per TCP echo port, 4 for login and 4 for the chat
///   (smoltcp 0.14 has no listen backlog: one socket per client; client
///   `N + 1` is refused with a RST).
/// - TCP receive buffers of four full segments (5840 bytes): the largest
///   window the driver lets one connection advertise (its share of the
///   NIC's RX FIFO, see `lan9118::share_window`).
/// - 4 KiB TCP send buffers: echoed data waits there for the client's ACK
///   (8 KiB measured no faster).
/// - 8 KiB of UDP payload per socket and direction: a client may have eight
///   1 KiB datagrams in flight before the firmware has to drop one.
/// - All 40 TCP and 3 UDP sockets cost about 500 KiB of the 4 MiB RAM, 11.3
///   KiB per TCP connection (the boot log prints the exact figures).
const CONFIG: Config = Config {
    pools: Pools {
        echo: 16,
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

/// [`CONFIG`] with one more socket on each echo port: what [`Memory`] would
/// be with two more connections.
const CONFIG_PLUS_TWO: Config = Config {
    pools: Pools {
        echo: CONFIG.pools.echo + 1,
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
    rt::install(nic.interrupt_ack(), alarm);
    defmt::info!(
        "LAN9118 id {=u32:#010x}, mac {}, link {}",
        nic.id_rev(),
        nic.mac_address(),
        nic.link_up().unwrap_or(false)
    );

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
        "pools: {=usize} echo per port, {=usize} login, {=usize} chat; tcp buffers {=usize}/{=usize} bytes",
        CONFIG.pools.echo,
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
    // The frames sent so far, and when that count last changed.
    let mut last_tx = (nic.stats().tx_frames, clock::now());
    loop {
        // Before polling, so a frame that lands after the FIFO is drained
        // raises the interrupt again and ends the WFI below.
        nic.acknowledge_interrupt();
        let now = clock::now();
        // Poll until nothing more happens: `Node::poll` does a bounded number
        // of rounds, and work left for a next round is not always visible to
        // `poll_delay`. An extra poll costs microseconds.
        if node.poll(now, &mut nic) {
            // Connections open and close only in a poll.
            nic.share_window(node.usage().tcp_sessions);
            continue;
        }

        let now = clock::now();
        if now >= next_status {
            next_status = now + STATUS_EVERY;
            let usage = node.usage();
            defmt::info!(
                "status: {=usize} tcp sessions, {=usize} hotline callers, {=usize} locked-out addresses; nic {}, {=u32} dropped, tcp window {=u16} bytes",
                usage.tcp_sessions,
                usage.hotline_sessions,
                usage.lockout_entries,
                nic.stats(),
                nic.rx_dropped(),
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
        sleep(&nic, &alarm, delay);
    }
}

/// Sleeps until a frame arrives or `delay` passes, whichever is first.
///
/// Interrupts are masked while deciding: a frame that arrives between the
/// `rx_pending` check and `WFI` pends its interrupt, and a pending interrupt
/// ends `WFI` even while masked. Its handler runs when the mask lifts.
fn sleep(nic: &Lan9118, alarm: &Alarm, delay: Duration) {
    if delay == Duration::ZERO {
        return;
    }
    cortex_m::interrupt::free(|_| {
        if nic.rx_pending() {
            return;
        }
        alarm.set(delay);
        cortex_m::asm::wfi();
    });
    alarm.cancel();
}
