//! smoltalk on a WIZnet W5500-EVB-Pico: the echo, login and chat services
//! of the core on an RP2040, with the on-board W5500 Ethernet chip in MACRAW
//! mode (raw frames; smoltcp, not the chip, does TCP/IP).
//!
//! # Layout
//!
//! - `main.rs` (this file): [`CONFIG`] and [`FALLBACK_IP`] (what the
//!   services look like on this board); `main`: the W5500's SPI bus and
//!   reset, the chip behind the shared adapter (`boards/embassy-adapter`,
//!   features `w5500`), the node, and the loop; [`sleep_until`].
//! - [`memory`]: the node's socket buffers and session slots, as statics.
//!
//! # The main loop
//!
//! No async executor runs. The W5500 pulls its INTn pin low when a frame
//! has arrived; the GPIO interrupt and the deadline timer both set
//! [`WOKEN`], and the core sleeps in `WFI` otherwise.
//!
//! ```text
//!   ┌─> WOKEN.clear ─> ack W5500 interrupt ─> node.poll ─> node.poll_delay
//!   │                                                           │
//!   └── GPIO21 low (INTn: a frame) / timer (deadline) <── WFI, unless WOKEN is set
//! ```

#![no_std]
#![no_main]

mod memory;

use core::future::Future;
use core::pin::pin;
use core::task::Context;

use defmt_rtt as _;
use panic_probe as _;

use embassy_rp::clocks::RoscRng;
use embassy_rp::flash::{Blocking, Flash};
use embassy_rp::gpio::{Input, Level, Output, Pull};
use embassy_rp::peripherals::FLASH;
use embassy_rp::spi::{self, Spi};
use embassy_time::{Delay, Timer};
use embedded_hal_bus::spi::ExclusiveDevice;
use smoltalk::chat::AutoResponder;
use smoltalk::login::store::DEMO;
use smoltalk::{Config, NetConfig, Node};
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{EthernetAddress, Ipv4Address, Ipv4Cidr};
use smoltcp_embassy_adapter::w5500::{W5500, link_up as w5500_link_up};
use smoltcp_embassy_adapter::{Adapter, WakeFlag};
use w5500::bus::FourWire;

/// The services on this board: the core's preset for a few hundred KiB of
/// RAM. With 256 KiB that is four clients at once on every TCP port
/// (smoltcp 0.14 has no listen backlog: one socket per client; client five
/// is refused with a RST) and about 105 KiB of socket buffers.
const CONFIG: Config = Config::MEDIUM;

/// The address used when no DHCP server answers within 5 s (the core's
/// `dhcp` feature keeps asking, and a later lease replaces it). Change it
/// here to suit your LAN. No gateway: the firmware answers hosts on its own
/// subnet and routes nowhere else.
const FALLBACK_IP: Ipv4Cidr = Ipv4Cidr::new(Ipv4Address::new(192, 168, 1, 50), 24);

/// How often to log a status line (sessions, frames, driver counters).
const STATUS_EVERY: Duration = Duration::from_secs(60);

/// The SPI clock asked for. WIZnet guarantees the W5500 to 33.3 MHz; the
/// RP2040 divides its 125 MHz peripheral clock by even numbers, so this
/// gives 31.25 MHz.
const SPI_HZ: u32 = 33_000_000;

/// How long to wait at boot for the W5500's PHY to report a link.
const LINK_WAIT: embassy_time::Duration = embassy_time::Duration::from_secs(4);

/// The size of the board's flash (W25Q16JV), for the flash driver that reads
/// its unique ID.
const FLASH_SIZE: usize = 2 * 1024 * 1024;

/// Set by the W5500's interrupt pin and the deadline timer; cleared before
/// each poll. See the module documentation.
static WOKEN: WakeFlag = WakeFlag::new();

#[cortex_m_rt::entry]
fn main() -> ! {
    let p = embassy_rp::init(Default::default());
    defmt::info!(
        "smoltalk {=str} on W5500-EVB-Pico",
        env!("CARGO_PKG_VERSION")
    );

    // A fresh TCP sequence-number seed every boot, from the ring
    // oscillator's random bit.
    let random_seed = RoscRng.next_u64();
    let mac = mac_address(Flash::<_, Blocking, FLASH_SIZE>::new_blocking(p.FLASH));

    // The board's wiring (W5500-EVB-Pico schematic): SPI0 with SCK GPIO18,
    // MOSI GPIO19, MISO GPIO16, chip select GPIO17; RSTn GPIO20; INTn GPIO21.
    let mut spi_config = spi::Config::default();
    spi_config.frequency = SPI_HZ;
    let spi = Spi::new_blocking(p.SPI0, p.PIN_18, p.PIN_19, p.PIN_16, spi_config);
    let cs = Output::new(p.PIN_17, Level::High);
    let Ok(spi) = ExclusiveDevice::new(spi, cs, Delay);
    let mut reset = Output::new(p.PIN_20, Level::Low);
    let mut int = Input::new(p.PIN_21, Pull::Up);
    // RSTn low for at least 500 µs, then the chip needs ~1 ms (PLL lock).
    embassy_time::block_for(embassy_time::Duration::from_millis(1));
    reset.set_high();
    embassy_time::block_for(embassy_time::Duration::from_millis(2));

    // Auto-negotiation takes a few seconds after reset. Wait for it (within
    // reason), so that DHCP's first request is not sent into a dead link and
    // the log says whether a cable is in.
    let mut bus = FourWire::new(spi);
    let waited = embassy_time::Instant::now();
    while !w5500_link_up(&mut bus).unwrap_or(true) && waited.elapsed() < LINK_WAIT {
        embassy_time::block_for(embassy_time::Duration::from_millis(50));
    }
    let mut w5500 = match W5500::new(bus, mac.0) {
        Ok(chip) => chip,
        Err(e) => defmt::panic!("W5500 set-up failed: {}", defmt::Display2Format(&e)),
    };
    defmt::info!(
        "mac {}, link {}",
        mac,
        if w5500.link_at_setup() {
            "up"
        } else {
            "down (no cable? frames flow once it is up)"
        }
    );
    if let Err(e) = w5500.enable_receive_interrupt() {
        defmt::panic!("W5500 interrupt set-up failed: {}", defmt::Debug2Format(&e));
    }
    let mut nic = match Adapter::new(w5500) {
        Ok(nic) => nic,
        Err(e) => defmt::panic!("W5500 driver unusable: {}", e),
    };

    let net = NetConfig {
        mac,
        ip: FALLBACK_IP,
        gateway: None,
        random_seed,
    };
    let mut node = match Node::new(
        &CONFIG,
        &net,
        &mut nic,
        memory::take(),
        &DEMO,
        AutoResponder::new(),
        now(),
    ) {
        Ok(node) => node,
        Err(e) => defmt::panic!("node setup failed: {}", e),
    };

    let mut next_status = now() + STATUS_EVERY;
    loop {
        // Both before polling: a frame that lands during the poll pulls INTn
        // low again, and sets WOKEN through the pin interrupt.
        WOKEN.clear();
        if let Err(e) = nic.driver_mut().clear_interrupts() {
            defmt::warn!(
                "W5500: clearing interrupts failed: {}",
                defmt::Debug2Format(&e)
            );
        }
        let now = now();
        node.poll(now, &mut nic);

        if now >= next_status {
            next_status = now + STATUS_EVERY;
            let usage = node.usage();
            defmt::info!(
                "status: address {}, {=usize} tcp sessions, {=usize} hotline callers, {=usize} locked out; frames {}; w5500 {}",
                node.ipv4_addr(),
                usage.tcp_sessions,
                usage.hotline_sessions,
                usage.lockout_entries,
                nic.counters(),
                nic.driver().stats()
            );
        }

        let deadline = match node.poll_delay(now) {
            Some(Duration::ZERO) => continue,
            Some(delay) => (now + delay).min(next_status),
            None => next_status,
        };
        sleep_until(deadline, &mut int);
    }
}

/// Sleeps until INTn is low (a frame is waiting in the W5500), the deadline
/// passes, or any other interrupt fires.
///
/// The check and the `WFI` run with interrupts masked: an interrupt that
/// fires in between stays pending, and a pending interrupt ends `WFI` even
/// while masked; its handler runs when the mask lifts.
fn sleep_until(deadline: Instant, int: &mut Input<'_>) {
    let waker = WOKEN.waker();
    let mut cx = Context::from_waker(&waker);
    // Polling the timer once puts WOKEN's waker in embassy-time's queue and
    // arms the alarm. The queue keeps one entry per waker, at the earliest
    // time asked, so a stale, earlier entry only causes an early wake-up.
    let at = embassy_time::Instant::from_micros(deadline.total_micros() as u64);
    if pin!(Timer::at(at)).poll(&mut cx).is_ready() {
        return;
    }
    // Arms the pin's level-low interrupt; ready at once if INTn is low.
    if pin!(int.wait_for_low()).poll(&mut cx).is_ready() {
        return;
    }
    cortex_m::interrupt::free(|_| {
        if !WOKEN.is_set() {
            cortex_m::asm::wfi();
        }
    });
}

/// Time since boot, from embassy-time (the RP2040's 1 MHz timer).
fn now() -> Instant {
    Instant::from_micros(embassy_time::Instant::now().as_micros() as i64)
}

/// A locally administered MAC address that stays the same across boots of
/// one board and differs between boards: the flash chip's 64-bit unique ID
/// folded into five bytes, after 0x02 (locally administered, unicast). The
/// RP2040 itself has no unique ID.
fn mac_address(mut flash: Flash<'_, FLASH, Blocking, FLASH_SIZE>) -> EthernetAddress {
    let mut id = [0; 8];
    if flash.blocking_unique_id(&mut id).is_err() {
        defmt::warn!("flash unique ID unreadable; using a fixed MAC address");
    }
    // FNV-1a over the unique ID.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in id {
        h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    let b = h.to_le_bytes();
    EthernetAddress([0x02, b[0], b[1], b[2], b[3], b[4]])
}
