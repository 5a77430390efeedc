//! The device half of the vector table, and what happens when things go wrong.
//!
//! cortex-m-rt lays out the Cortex-M exceptions; with its `device` feature the
//! interrupt entries are ours to supply. The firmware uses two interrupts, so
//! a 43-entry table (IRQ 0..=42) written out here replaces a whole PAC.
//!
//! Failure policy: a panic, a HardFault or an interrupt nobody enabled logs
//! over defmt and ends QEMU through semihosting with a failing exit status,
//! so a test harness or `cargo run` sees the failure instead of a hang.

use cortex_m::interrupt::InterruptNumber;
use cortex_m_rt::{ExceptionFrame, exception};

use crate::{clock, stellaris_eth};

/// An NVIC interrupt line of the LM3S6965.
#[derive(Clone, Copy)]
pub struct Irq(u16);

// SAFETY: the numbers below are valid interrupt lines of this chip, and
// `number` returns them unchanged.
unsafe impl InterruptNumber for Irq {
    fn number(self) -> u16 {
        self.0
    }
}

/// General-purpose timer 0A: the wake-up alarm ([`clock::set_alarm`]).
pub const TIMER0A: Irq = Irq(19);
/// The Ethernet controller's interrupt.
pub const ETHERNET: Irq = Irq(42);

unsafe extern "C" {
    /// cortex-m-rt's catch-all handler (ends up in our `DefaultHandler`).
    fn DefaultHandler();
}

/// Ethernet interrupt: only wakes the main loop; see
/// [`stellaris_eth::on_interrupt`].
extern "C" fn ethernet() {
    stellaris_eth::on_interrupt();
}

/// Timer 0A interrupt: only wakes the main loop; see [`clock::on_alarm`].
extern "C" fn timer0a() {
    clock::on_alarm();
}

/// Device interrupt vectors, placed right after the 16 core exceptions.
#[unsafe(link_section = ".vector_table.interrupts")]
#[unsafe(no_mangle)]
static __INTERRUPTS: [unsafe extern "C" fn(); 43] = {
    let mut table = [DefaultHandler as unsafe extern "C" fn(); 43];
    table[TIMER0A.0 as usize] = timer0a;
    table[ETHERNET.0 as usize] = ethernet;
    table
};

#[exception]
unsafe fn DefaultHandler(irqn: i16) {
    defmt::error!("unexpected exception or interrupt {}", irqn);
    semihosting::process::exit(1)
}

#[exception]
unsafe fn HardFault(frame: &ExceptionFrame) -> ! {
    defmt::error!(
        "HardFault at pc={:#010x} lr={:#010x}",
        frame.pc(),
        frame.lr()
    );
    semihosting::process::exit(1)
}

/// Logs where the panic happened. Not the message: formatting it would link
/// `core::fmt`'s `Display` machinery for ~450 bytes of flash, and the
/// location finds the cause. `defmt::panic!` and `defmt::unwrap!` log their
/// own message before they get here.
#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    match info.location() {
        Some(at) => defmt::error!("panic at {=str}:{=u32}", at.file(), at.line()),
        None => defmt::error!("panic"),
    }
    semihosting::process::exit(1)
}
