//! smoltalk on the TI Stellaris LM3S6965 evaluation board: the echo, login
//! and chat services of the core, on a Cortex-M3 with 64 KiB of RAM.
//!
//! # Layout
//!
//! - `main.rs` (this file): the configuration, the static memory it needs,
//!   and the poll-then-sleep loop.
//! - [`stellaris_eth`]: the Ethernet controller as a smoltcp `phy::Device`.
//! - [`clock`]: time from SysTick, wake-ups from timer 0A (tickless).
//! - [`vectors`]: the interrupt table, and panics/faults ending QEMU.
//! - [`stack`]: how deep the stack has grown (the RAM budget's other half).
//!
//! # RAM budget
//!
//! Everything large is a `static` sized at compile time from [`CONFIG`]:
//! socket buffers, TCP sessions, the two frame buffers. What is left of the
//! 64 KiB is the stack, and memory.x refuses to link a build that leaves it
//! less than 16 KiB. The [`smoltalk::Node`] itself lives in `main`'s frame,
//! which never returns; the stack high-water mark (logged) includes it.
#![no_std]
#![no_main]

mod clock;
mod stack;
mod stellaris_eth;
mod vectors;

use defmt_semihosting as _;

use cortex_m::peripheral::NVIC;
use cortex_m_rt::entry;
use smoltalk::chat::responder::AutoResponder;
use smoltalk::config::Config;
use smoltalk::login::store::DEMO;
use smoltalk::{Memory, NetConfig, Node};
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{Ipv4Address, Ipv4Cidr};
use static_cell::ConstStaticCell;

use stellaris_eth::{FrameBuffers, StellarisEth};

/// The services, sized for this part: the core's small profile, two
/// clients per TCP port with 1 KiB TCP buffers, and UDP buffers that hold
/// one full datagram (1536 bytes) or four small ones. With it, static RAM
/// leaves ~22 KiB for the stack (see README.md, "RAM and flash").
const CONFIG: Config = Config::SMALL;

/// The firmware's address on QEMU's user network (slirp's default guest
/// address). No gateway: it answers its own LAN and nothing else.
const IP: Ipv4Cidr = Ipv4Cidr::new(Ipv4Address::new(10, 0, 2, 15), 24);

/// How often to check the stack high-water mark. The check scans the unused
/// stack, ~20 000 cycles: 0.2 % of a 12.5 MHz core at this rate.
const REPORT_EVERY: Duration = Duration::from_secs(1);

/// The node's memory, sized from [`CONFIG`] at compile time. `StaticMemory`
/// is const-initialised to zeros and uninitialised tables, so it lives in
/// `.bss` (no flash copy) and is never built on the stack.
type NodeMemory = smoltalk::static_memory!(CONFIG);
static MEMORY: ConstStaticCell<NodeMemory> = ConstStaticCell::new(NodeMemory::new());
static FRAMES: ConstStaticCell<FrameBuffers> = ConstStaticCell::new(FrameBuffers::new());

/// Lends the static memory to the node, for the rest of the program.
fn memory() -> Memory<'static> {
    // `take` succeeds: this runs once, at boot.
    MEMORY.take().memory()
}

#[entry]
fn main() -> ! {
    // `take` succeeds: this is its first and only call.
    let core = cortex_m::Peripherals::take().unwrap();
    clock::start(core.SYST);
    // SAFETY: the only instance of the driver.
    let mut eth = unsafe { StellarisEth::new(FRAMES.take()) };
    defmt::info!(
        "lm3s6965evb: MAC {}, {} KiB of socket buffers, stack {} bytes",
        eth.mac(),
        CONFIG.memory_needs().bytes / 1024,
        stack::size()
    );

    let net = NetConfig {
        mac: eth.mac(),
        ip: IP,
        gateway: None,
        random_seed: seed(&eth),
    };
    let mut node = match Node::new(
        &CONFIG,
        &net,
        &mut eth,
        memory(),
        &DEMO,
        AutoResponder::new(),
        clock::now(),
    ) {
        Ok(node) => node,
        Err(e) => defmt::panic!("node setup failed: {}", e),
    };
    defmt::info!(
        "node: {} bytes in main's stack frame",
        core::mem::size_of_val(&node)
    );

    // Frames that arrived during setup are still counted by NP; clear the
    // stale line so the first interrupt is a real one.
    for irq in [vectors::ETHERNET, vectors::TIMER0A] {
        NVIC::unpend(irq);
        // SAFETY: both handlers only clear their device's status bit; they
        // share no data with this loop.
        unsafe { NVIC::unmask(irq) };
    }

    let mut next_report = clock::now() + REPORT_EVERY;
    let mut deepest = 0;
    loop {
        let now = clock::now();
        node.poll(now, &mut eth);
        if now >= next_report {
            next_report = now + REPORT_EVERY;
            let depth = stack::high_water();
            if depth > deepest {
                deepest = depth;
                defmt::info!("stack: deepest use {} of {} bytes", depth, stack::size());
            }
            let usage = node.usage();
            defmt::debug!(
                "tcp sessions {}, hotline callers {}, locked-out addresses {}; eth {}",
                usage.tcp_sessions,
                usage.hotline_sessions,
                usage.lockout_entries,
                eth.stats()
            );
        }
        let deadline = match node.poll_delay(now) {
            Some(Duration::ZERO) => continue,
            Some(delay) => (now + delay).min(next_report),
            None => next_report,
        };
        sleep_until(&eth, deadline);
    }
}

/// Sleeps until a frame is waiting or `deadline` has passed.
///
/// The alarm is armed for the deadline, then the check and the `WFI` run
/// with interrupts masked: a frame or the alarm arriving in between pends
/// its interrupt, and a pending interrupt ends `WFI` even while masked, so
/// no wake-up is lost. The handlers run when the mask lifts. Other wake-ups
/// (the SysTick wrap every 1.34 s) just go round the loop, which the alarm
/// bounds by `deadline`.
fn sleep_until(eth: &StellarisEth, deadline: Instant) {
    clock::set_alarm(deadline);
    loop {
        let wake = cortex_m::interrupt::free(|_| {
            let wake = eth.rx_pending() || clock::now() >= deadline;
            if !wake {
                cortex_m::asm::wfi();
            }
            wake
        });
        if wake {
            return;
        }
    }
}

/// A per-boot seed for TCP initial sequence numbers. This chip has no
/// random number generator: mix the MAC address with the SysTick count after
/// the first log line, whose semihosting round trip to the host takes a
/// variable time. Enough to keep sequence numbers from repeating across
/// reboots; not a secret. A product would sample ADC noise as well.
fn seed(eth: &StellarisEth) -> u64 {
    let mac = eth.mac().0;
    let mut seed = u64::from_le_bytes([mac[0], mac[1], mac[2], mac[3], mac[4], mac[5], 0, 0]);
    seed ^= clock::jitter() << 24;
    seed ^= (clock::now().total_micros() as u64) << 40;
    // SplitMix64's finaliser, so every input bit moves every output bit.
    seed = (seed ^ (seed >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    seed = (seed ^ (seed >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    seed ^ (seed >> 31)
}
