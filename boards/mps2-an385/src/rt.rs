//! The runtime glue: interrupt dispatch, fault and panic handlers, and the
//! timestamp on every log line.
//!
//! No peripheral access crate exists for this board, so cortex-m-rt fills
//! the vector table with its `DefaultHandler`, and the `DefaultHandler` here
//! dispatches on the interrupt number. Both interrupt handlers only
//! acknowledge their device: their job is to end `WFI`; the main loop does
//! the work.

use core::cell::Cell;

use cortex_m::interrupt::InterruptNumber;
use cortex_m::peripheral::NVIC;
use cortex_m_rt::{ExceptionFrame, exception};
use critical_section::Mutex;
// The defmt logger: frames go to QEMU's stdout through semihosting calls.
use defmt_semihosting as _;

use crate::clock::{self, Alarm};
use crate::lan9118::InterruptAck;

/// The AN385 interrupt lines this firmware uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u16)]
enum Irq {
    /// CMSDK APB TIMER0: the wake-up alarm.
    Timer0 = 8,
    /// LAN9118: RX status FIFO level (a frame arrived).
    Ethernet = 13,
}

// SAFETY: the discriminants are valid AN385 interrupt numbers (< 32).
unsafe impl InterruptNumber for Irq {
    fn number(self) -> u16 {
        self as u16
    }
}

/// What the handlers acknowledge; set once by [`install`].
static NIC: Mutex<Cell<Option<InterruptAck>>> = Mutex::new(Cell::new(None));
static ALARM: Mutex<Cell<Option<Alarm>>> = Mutex::new(Cell::new(None));

/// Gives the interrupt handlers the devices they acknowledge.
pub fn install(nic: InterruptAck, alarm: Alarm) {
    critical_section::with(|cs| {
        NIC.borrow(cs).set(Some(nic));
        ALARM.borrow(cs).set(Some(alarm));
    });
}

/// Unmasks the NIC and alarm interrupts in the NVIC. Call after [`install`]
/// and after the NIC's `IRQ_CFG` is written (see `lan9118`).
pub fn unmask_interrupts() {
    // SAFETY: both handlers only acknowledge their device and share nothing
    // with the main loop except through critical sections, so unmasking
    // cannot break a critical section elsewhere.
    unsafe {
        NVIC::unmask(Irq::Timer0);
        NVIC::unmask(Irq::Ethernet);
    }
}

#[exception]
unsafe fn DefaultHandler(irqn: i16) {
    if irqn == Irq::Ethernet as i16 {
        critical_section::with(|cs| NIC.borrow(cs).get().map(|nic| nic.acknowledge()));
    } else if irqn == Irq::Timer0 as i16 {
        critical_section::with(|cs| ALARM.borrow(cs).get().map(|alarm| alarm.acknowledge()));
    } else {
        defmt::panic!("unexpected exception or interrupt {=i16}", irqn);
    }
}

#[exception]
unsafe fn HardFault(frame: &ExceptionFrame) -> ! {
    defmt::error!(
        "HardFault at pc {=u32:#010x}, lr {=u32:#010x}",
        frame.pc(),
        frame.lr()
    );
    semihosting::process::exit(1)
}

/// A Rust panic: log it (message and location) and end QEMU with status 1,
/// so a test run fails instead of hanging.
#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    defmt::error!("panic: {}", defmt::Display2Format(info));
    semihosting::process::exit(1)
}

/// `defmt::panic!` has already logged its message.
#[defmt::panic_handler]
fn defmt_panic() -> ! {
    semihosting::process::exit(1)
}

defmt::timestamp!("{=u64:us}", clock::now_us());
