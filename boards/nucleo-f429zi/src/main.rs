//! smoltalk on an ST NUCLEO-F429ZI: the echo, login and chat services of
//! the core, on the STM32F429ZI's own Ethernet MAC and the board's LAN8742A
//! PHY, through `embassy-stm32`'s `Ethernet` driver.
//!
//! # Layout
//!
//! - `main.rs` (this file): [`CONFIG`] and [`FALLBACK_IP`] (what the
//!   services look like on this board); `main`: clocks, the Ethernet driver
//!   behind the shared [`Adapter`] (`boards/embassy-adapter`), the node, and
//!   the loop; [`sleep_until`]: `WFI` until a frame or the deadline.
//! - [`memory`]: the node's socket buffers and session slots, as statics.
//!
//! # The main loop
//!
//! No async executor runs: embassy's driver is polled like any smoltcp
//! device, with a [`WakeFlag`] standing in for a task waker.
//!
//! ```text
//!   ┌─> WOKEN.clear ─> node.poll ─> deadline = node.poll_delay
//!   │                                              │
//!   └── ETH IRQ (frame) / TIM alarm (deadline) <── WFI, unless WOKEN is set
//! ```
//!
//! The ETH interrupt handler (embassy's) wakes the waker the driver was last
//! polled with — [`WOKEN`]'s — and the deadline is an embassy-time timer
//! polled with the same waker, so either sets the flag and ends `WFI`.

#![no_std]
#![no_main]

mod memory;

use core::future::Future;
use core::pin::pin;
use core::task::Context;

use defmt_rtt as _;
use panic_probe as _;

use embassy_stm32::eth::{self, Ethernet, PacketQueue};
use embassy_stm32::peripherals::{ETH, RNG};
use embassy_stm32::rcc::{
    AHBPrescaler, APBPrescaler, Hse, HseMode, Pll, PllMul, PllPDiv, PllPreDiv, PllQDiv, PllSource,
    Sysclk,
};
use embassy_stm32::rng::{self, Rng};
use embassy_stm32::time::Hertz;
use embassy_stm32::{bind_interrupts, uid};
use embassy_time::Timer;
use smoltalk::chat::AutoResponder;
use smoltalk::login::store::DEMO;
use smoltalk::{Config, NetConfig, Node};
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{EthernetAddress, Ipv4Address, Ipv4Cidr};
use smoltcp_embassy_adapter::{Adapter, WakeFlag};
use static_cell::StaticCell;

/// The services on this board: the core's preset for a few hundred KiB of
/// RAM. With 192 KiB that is four clients at once on every TCP port
/// (smoltcp 0.14 has no listen backlog: one socket per client; client five
/// is refused with a RST) and about 105 KiB of socket buffers.
const CONFIG: Config = Config::MEDIUM;

/// The address used when no DHCP server answers within 5 s (the core's
/// `dhcp` feature keeps asking, and a later lease replaces it). Change it
/// here to suit your LAN. No gateway: the firmware answers hosts on its own
/// subnet and routes nowhere else.
const FALLBACK_IP: Ipv4Cidr = Ipv4Cidr::new(Ipv4Address::new(192, 168, 1, 50), 24);

/// How often to log a status line (sessions, frames, link, address).
const STATUS_EVERY: Duration = Duration::from_secs(60);
/// How long to wait at boot for the PHY to report a link.
const LINK_WAIT: embassy_time::Duration = embassy_time::Duration::from_secs(4);
/// How often to read the PHY's link bit (an MDIO transfer, tens of µs).
const LINK_EVERY: Duration = Duration::from_secs(1);

/// Ethernet DMA descriptors and buffers: 4 transmit and 8 receive frames of
/// ~1.5 KiB. The receive ring absorbs bursts that arrive while the loop is
/// busy (a login's password hash runs in slices of a few milliseconds).
type Packets = PacketQueue<4, 8>;

/// Set by the Ethernet interrupt and the deadline timer; cleared before
/// each poll. See the module documentation.
static WOKEN: WakeFlag = WakeFlag::new();

/// The DMA rings; zeroed in place at boot ([`PacketQueue::init`]).
static PACKETS: StaticCell<Packets> = StaticCell::new();

bind_interrupts!(struct Irqs {
    ETH => eth::InterruptHandler;
    HASH_RNG => rng::InterruptHandler<RNG>;
});

#[cortex_m_rt::entry]
fn main() -> ! {
    let p = embassy_stm32::init(clocks());
    defmt::info!(
        "smoltalk {=str} on NUCLEO-F429ZI",
        env!("CARGO_PKG_VERSION")
    );

    // A fresh TCP sequence-number seed every boot, from the hardware RNG.
    let random_seed = Rng::new(p.RNG, Irqs).next_u64();
    let mac = mac_address();

    let packets = PACKETS.uninit();
    PacketQueue::init(packets);
    // SAFETY: `PacketQueue::init` zeroes the queue, which its documentation
    // guarantees is a valid value.
    let packets = unsafe { packets.assume_init_mut() };
    // NUCLEO-144 RMII wiring (UM1974): REF_CLK PA1, CRS_DV PA7, RXD0 PC4,
    // RXD1 PC5, TXD0 PG13, TXD1 PB13, TX_EN PG11, MDIO PA2, MDC PC1.
    let eth: Ethernet<'static, ETH, _> = Ethernet::new(
        packets, p.ETH, Irqs, p.PA1, p.PA7, p.PC4, p.PC5, p.PG13, p.PB13, p.PG11, mac.0, p.ETH_SMA,
        p.PA2, p.PC1,
    );
    let mut nic = match Adapter::with_waker(eth, WOKEN.waker()) {
        Ok(nic) => nic,
        Err(e) => defmt::panic!("Ethernet driver unusable: {}", e),
    };
    // Auto-negotiation takes a few seconds after the PHY's reset. Wait for
    // it (within reason), so that DHCP's first request is not sent into a
    // dead link and the log says whether a cable is in.
    let waited = embassy_time::Instant::now();
    while !nic.link_up() && waited.elapsed() < LINK_WAIT {
        embassy_time::block_for(embassy_time::Duration::from_millis(50));
    }
    let mut link = nic.link_up();
    defmt::info!(
        "mac {}, link {}",
        mac,
        if link { "up" } else { "down (no cable?)" }
    );

    let net = NetConfig {
        mac,
        ip: FALLBACK_IP,
        gateway: None,
        random_seed,
    };
    let memory = memory::take();
    let mut node = match Node::new(
        &CONFIG,
        &net,
        &mut nic,
        memory,
        &DEMO,
        AutoResponder::new(),
        now(),
    ) {
        Ok(node) => node,
        Err(e) => defmt::panic!("node setup failed: {}", e),
    };

    let mut next_status = now() + STATUS_EVERY;
    let mut next_link = now() + LINK_EVERY;
    loop {
        // Before polling: a frame that lands during the poll sets it again.
        WOKEN.clear();
        let now = now();
        node.poll(now, &mut nic);

        if now >= next_link {
            next_link = now + LINK_EVERY;
            let up = nic.link_up();
            if up != link {
                link = up;
                defmt::info!("link {}", if up { "up" } else { "down" });
            }
        }
        if now >= next_status {
            next_status = now + STATUS_EVERY;
            let usage = node.usage();
            defmt::info!(
                "status: address {}, {=usize} tcp sessions, {=usize} hotline callers, {=usize} locked out; frames {}",
                node.ipv4_addr(),
                usage.tcp_sessions,
                usage.hotline_sessions,
                usage.lockout_entries,
                nic.counters()
            );
        }

        let housekeeping = next_link.min(next_status);
        let deadline = match node.poll_delay(now) {
            Some(Duration::ZERO) => continue,
            Some(delay) => (now + delay).min(housekeeping),
            None => housekeeping,
        };
        sleep_until(deadline);
    }
}

/// Sleeps until [`WOKEN`] is set (a frame, a freed transmit slot, the
/// deadline) or any other interrupt fires.
///
/// The check and the `WFI` run with interrupts masked: an interrupt that
/// fires in between stays pending, and a pending interrupt ends `WFI` even
/// while masked; its handler runs when the mask lifts.
fn sleep_until(deadline: Instant) {
    let at = embassy_time::Instant::from_micros(deadline.total_micros() as u64);
    // Polling the timer once puts WOKEN's waker in embassy-time's queue and
    // arms the alarm. The queue keeps one entry per waker, at the earliest
    // time asked, so a stale, earlier entry only causes an early wake-up.
    let waker = WOKEN.waker();
    if pin!(Timer::at(at))
        .poll(&mut Context::from_waker(&waker))
        .is_ready()
    {
        return;
    }
    cortex_m::interrupt::free(|_| {
        if !WOKEN.is_set() {
            cortex_m::asm::wfi();
        }
    });
}

/// Time since boot, from embassy-time (the HAL's timer, 1 MHz ticks).
fn now() -> Instant {
    Instant::from_micros(embassy_time::Instant::now().as_micros() as i64)
}

/// 168 MHz from the 8 MHz clock the ST-LINK feeds to the chip's HSE pin
/// (MCO, hence bypass): 8 / 4 × 168 = 336 MHz VCO, / 2 = 168 MHz system
/// clock, / 7 = 48 MHz for the RNG. Ethernet needs at least 25 MHz on AHB.
fn clocks() -> embassy_stm32::Config {
    let mut config = embassy_stm32::Config::default();
    config.rcc.hse = Some(Hse {
        freq: Hertz(8_000_000),
        mode: HseMode::Bypass,
    });
    config.rcc.pll_src = PllSource::HSE;
    config.rcc.pll = Some(Pll {
        prediv: PllPreDiv::DIV4,
        mul: PllMul::MUL168,
        divp: Some(PllPDiv::DIV2),
        divq: Some(PllQDiv::DIV7),
        divr: None,
    });
    config.rcc.sys = Sysclk::PLL1_P;
    config.rcc.ahb_pre = AHBPrescaler::DIV1;
    config.rcc.apb1_pre = APBPrescaler::DIV4; // 42 MHz, the most APB1 allows
    config.rcc.apb2_pre = APBPrescaler::DIV2; // 84 MHz
    config
}

/// A locally administered MAC address that stays the same across boots of
/// one chip and differs between chips: the 96-bit unique ID folded into five
/// bytes, after 0x02 (locally administered, unicast).
fn mac_address() -> EthernetAddress {
    // FNV-1a over the unique ID.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in uid::uid() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    let b = h.to_le_bytes();
    EthernetAddress([0x02, b[0], b[1], b[2], b[3], b[4]])
}
