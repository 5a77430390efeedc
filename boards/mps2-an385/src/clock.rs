//! Time for smoltcp: a monotonic microsecond clock and a one-shot wake-up.
//!
//! - [`now`]: SysTick runs freely from the 1 MHz reference clock over its
//!   full 24-bit range (16.8 s). Each reading adds the ticks since the
//!   previous reading to a 64-bit total, so the clock only needs to be read
//!   once per period: the SysTick interrupt does that, once every 16.8 s,
//!   instead of a 1 kHz tick.
//! - [`Alarm`]: the CMSDK APB TIMER0 (25 MHz, IRQ 8) in one-shot mode wakes
//!   the core from `WFI` when smoltcp's next deadline (a retransmission, a
//!   delayed ACK, an idle timeout) comes due. Frames wake it through the NIC
//!   interrupt instead, so a round trip never waits for a timer.
//!
//! Under QEMU both clocks follow the host's wall clock (without `-icount`).

use core::cell::Cell;

use cortex_m::peripheral::SYST;
use cortex_m::peripheral::syst::SystClkSource;
use cortex_m_rt::exception;
use critical_section::Mutex;
use smoltcp::time::{Duration, Instant};

use crate::mmio::{Block, Reg};

/// SysTick's reload value: the whole 24-bit range, so wraps are rare.
const SYST_RELOAD: u32 = 0x00FF_FFFF;
/// SysTick counts the external reference clock: 1 MHz on MPS2, one tick per µs.
const SYST_TICKS_PER_US: u64 = 1;

/// The software extension of the 24-bit counter.
#[derive(Clone, Copy)]
struct Extended {
    /// Phase of the counter at the previous reading (see [`phase`]).
    phase: u32,
    /// Ticks since [`start`] at the previous reading.
    ticks: u64,
}

static CLOCK: Mutex<Cell<Extended>> = Mutex::new(Cell::new(Extended { phase: 0, ticks: 0 }));

/// Starts the monotonic clock. Call once, before [`now`].
pub fn start(mut syst: SYST) {
    syst.disable_counter();
    syst.set_clock_source(SystClkSource::External);
    syst.set_reload(SYST_RELOAD);
    syst.clear_current();
    syst.enable_interrupt();
    syst.enable_counter();
}

/// Reads the clock once per SysTick period, so no wrap goes unseen. (The
/// wrap count is *not* kept here: under QEMU the exception can be raised
/// milliseconds after the counter has already reloaded, and counting it
/// would make time jump.)
#[exception]
fn SysTick() {
    now_us();
}

/// How far the down-counter is into its period: 0 at `count == 0` (where
/// the period ends and the exception is raised), 1 just after the reload to
/// `SYST_RELOAD`, and so on. Unlike `count`, it grows by one per tick,
/// modulo 2^24.
fn phase(count: u32) -> u32 {
    (SYST_RELOAD + 1).wrapping_sub(count) & SYST_RELOAD
}

/// Microseconds since [`start`]: monotonic, 64-bit.
///
/// Right after [`start`] the counter reads 0 until its first reload (QEMU
/// takes up to a few milliseconds to get there); time then stays at 0.
pub fn now_us() -> u64 {
    critical_section::with(|cs| {
        let cell = CLOCK.borrow(cs);
        let mut clock = cell.get();
        let phase = phase(SYST::get_current());
        clock.ticks += u64::from(phase.wrapping_sub(clock.phase) & SYST_RELOAD);
        clock.phase = phase;
        cell.set(clock);
        clock.ticks / SYST_TICKS_PER_US
    })
}

/// [`now_us`] as a smoltcp [`Instant`].
pub fn now() -> Instant {
    Instant::from_micros(now_us() as i64)
}

/// CMSDK APB timer registers.
mod timer {
    use super::Reg;
    pub const CTRL: Reg = Reg(0x00);
    pub const VALUE: Reg = Reg(0x04);
    pub const RELOAD: Reg = Reg(0x08);
    pub const INTSTATUS: Reg = Reg(0x0C);

    pub const CTRL_ENABLE: u32 = 1 << 0;
    pub const CTRL_IRQ_ENABLE: u32 = 1 << 3;
}

/// The timer's input clock: the MPS2 system clock.
const TIMER_HZ: u64 = 25_000_000;

/// A one-shot wake-up timer on a CMSDK APB timer.
///
/// With `RELOAD` = 0 the timer counts `VALUE` down once, raises its
/// interrupt at zero and stops: exactly one wake-up per [`Alarm::set`].
#[derive(Clone, Copy)]
pub struct Alarm {
    regs: Block,
}

impl Alarm {
    /// The timer at `base`, stopped.
    ///
    /// # Safety
    ///
    /// `base` must be a CMSDK APB timer that nothing else uses.
    pub unsafe fn new(base: usize) -> Self {
        // SAFETY: forwarded to the caller.
        let alarm = Alarm {
            regs: unsafe { Block::new(base) },
        };
        alarm.cancel();
        alarm.regs.write(timer::RELOAD, 0);
        alarm
    }

    /// Fires the timer's interrupt after `delay` (at least one timer tick;
    /// delays beyond the 32-bit range, 171 s, are cut short, which only
    /// costs one extra poll). Replaces any earlier setting.
    pub fn set(&self, delay: Duration) {
        let ticks = (delay.total_micros().saturating_mul(TIMER_HZ) / 1_000_000)
            .clamp(1, u64::from(u32::MAX));
        self.cancel();
        self.regs.write(timer::VALUE, ticks as u32);
        self.regs
            .write(timer::CTRL, timer::CTRL_ENABLE | timer::CTRL_IRQ_ENABLE);
    }

    /// Stops the timer and clears a pending expiry.
    pub fn cancel(&self) {
        self.regs.write(timer::CTRL, 0);
        self.acknowledge();
    }

    /// Clears the expiry flag, which drives the (level) interrupt line.
    /// Called by the interrupt handler.
    pub fn acknowledge(&self) {
        self.regs.write(timer::INTSTATUS, 1);
    }
}
