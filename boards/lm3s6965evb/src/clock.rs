//! Time since boot, and a wake-up alarm: the firmware is tickless.
//!
//! - **Time** comes from SysTick, free-running over its full 24 bits: an
//!   interrupt counts wraps (every 1.34 s) and [`now`] adds the current
//!   count, so time has 80 ns resolution and does not drift. (A 1 kHz tick
//!   that counted interrupts lost about 3 % of its ticks under QEMU, because
//!   each late interrupt was a lost millisecond; reading the counter cannot
//!   lose time.)
//! - **Wake-ups** come from general-purpose timer 0A in one-shot mode
//!   ([`set_alarm`]): when the stack has nothing to do until a deadline, the
//!   core sleeps in `WFI` until that alarm or a frame. No tick wakes it in
//!   between; only the SysTick wrap does, every 1.34 s.
//!
//! Both count core cycles: 12.5 MHz after reset under QEMU. (On silicon the
//! reset clock is the internal oscillator, 12 MHz ±30 %; a product would
//! switch to the PLL and change [`CORE_HZ`].) QEMU runs both on virtual time,
//! which tracks wall time when `-icount` is off.

use core::cell::Cell;
use core::ptr;

use cortex_m::peripheral::syst::SystClkSource;
use cortex_m::peripheral::{SCB, SYST};
use cortex_m_rt::exception;
use critical_section::Mutex;
use smoltcp::time::Instant;

/// Core clock after reset, in Hz.
pub const CORE_HZ: u64 = 12_500_000;
/// Microseconds per cycle as the smallest fraction, `US_NUM / US_DEN`
/// (2/25 at 12.5 MHz), so the conversions neither round nor overflow.
const US_NUM: u64 = 1_000_000 / gcd(1_000_000, CORE_HZ);
const US_DEN: u64 = CORE_HZ / gcd(1_000_000, CORE_HZ);
/// SysTick counts down from this to 0, then reloads: the full 24 bits.
const SYST_RELOAD: u32 = 0x00FF_FFFF;
/// Cycles per SysTick wrap.
const CYCLES_PER_WRAP: u64 = SYST_RELOAD as u64 + 1;

/// SysTick wraps since [`start`]. Incremented only by the SysTick handler;
/// read with the counter under a critical section (see [`now`]).
static WRAPS: Mutex<Cell<u64>> = Mutex::new(Cell::new(0));

/// General-purpose timer 0 (GPTM0) registers: the alarm.
const GPTM0: usize = 0x4003_0000;
/// GPTM configuration: 0 = one 32-bit timer.
const GPTM_CFG: usize = 0x00;
/// Timer A mode: 1 = one-shot.
const GPTM_TAMR: usize = 0x04;
/// Control: bit 0 enables timer A.
const GPTM_CTL: usize = 0x0C;
/// Interrupt mask: bit 0 = timer A time-out.
const GPTM_IMR: usize = 0x18;
/// Interrupt clear: write 1 to bit 0 to clear the time-out.
const GPTM_ICR: usize = 0x24;
/// Timer A interval load: cycles until the time-out.
const GPTM_TAILR: usize = 0x28;
/// Timer A's time-out bit in IMR/ICR, and its enable bit in CTL.
const TIMER_A: u32 = 1 << 0;
/// System control: run-mode clock gating register 1; bit 16 clocks GPTM0.
const SYSCTL_RCGC1: usize = 0x400F_E104;
const RCGC1_TIMER0: u32 = 1 << 16;

fn gptm_write(offset: usize, value: u32) {
    // SAFETY: GPTM0 is an always-mapped peripheral; `offset` is one of the
    // register offsets above. Only this module touches GPTM0.
    unsafe { ptr::write_volatile((GPTM0 + offset) as *mut u32, value) }
}

/// Starts the clock and prepares the alarm. The caller unmasks the alarm's
/// interrupt ([`crate::vectors::TIMER0A`]) in the NVIC.
pub fn start(mut syst: SYST) {
    syst.set_clock_source(SystClkSource::Core);
    syst.set_reload(SYST_RELOAD);
    syst.clear_current();
    syst.enable_interrupt();
    syst.enable_counter();

    // SAFETY: RCGC1 is a clock-gating register; setting the TIMER0 bit
    // affects only GPTM0.
    unsafe {
        let rcgc1 = SYSCTL_RCGC1 as *mut u32;
        ptr::write_volatile(rcgc1, ptr::read_volatile(rcgc1) | RCGC1_TIMER0);
    }
    gptm_write(GPTM_CTL, 0);
    gptm_write(GPTM_CFG, 0);
    gptm_write(GPTM_TAMR, 1);
    gptm_write(GPTM_ICR, TIMER_A);
    gptm_write(GPTM_IMR, TIMER_A);
}

/// Cycles since [`start`].
fn cycles_since_start() -> u64 {
    critical_section::with(|cs| {
        let mut wraps = WRAPS.borrow(cs).get();
        let mut count = SYST::get_current();
        // A wrap that happened inside this critical section has not been
        // counted yet: its interrupt is pending. Count it, and re-read the
        // counter, which may have been read just before the wrap.
        if SCB::is_pendst_pending() {
            wraps += 1;
            count = SYST::get_current();
        }
        wraps * CYCLES_PER_WRAP + u64::from(SYST_RELOAD - count)
    })
}

/// The current time, for smoltcp.
pub fn now() -> Instant {
    Instant::from_micros((cycles_since_start() * US_NUM / US_DEN) as i64)
}

const fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// Low bits of the cycle counter, as a (weak) source of boot-time jitter.
pub fn jitter() -> u64 {
    u64::from(SYST::get_current())
}

/// Arms the alarm to interrupt at `deadline` (or at once if it has passed).
/// Only ends a `WFI`: the caller re-checks the time after waking.
pub fn set_alarm(deadline: Instant) {
    let wait_us = (deadline - now()).total_micros();
    // At least one cycle; at most 2^32 cycles (5.7 minutes): a longer
    // sleep just wakes up early and re-arms.
    let cycles = (wait_us * US_DEN / US_NUM).clamp(1, u64::from(u32::MAX)) as u32;
    gptm_write(GPTM_CTL, 0);
    gptm_write(GPTM_TAILR, cycles);
    gptm_write(GPTM_CTL, TIMER_A);
}

/// The alarm's interrupt: clears the time-out so the line drops. Waking
/// from `WFI` was its whole job.
pub fn on_alarm() {
    gptm_write(GPTM_ICR, TIMER_A);
}

#[exception]
fn SysTick() {
    critical_section::with(|cs| {
        let wraps = WRAPS.borrow(cs);
        wraps.set(wraps.get() + 1);
    });
}
