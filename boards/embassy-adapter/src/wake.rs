//! A waker for a loop with no executor.
//!
//! An embassy driver reports "there is work" the async way: when it has
//! nothing to give, it keeps the `Waker` it was polled with and calls it from
//! its interrupt handler once a frame has arrived (or a transmit slot has
//! freed up). An executor would reschedule a task. A bare `loop { poll;
//! WFI }` only needs to know whether to sleep, so [`WakeFlag`]'s waker just
//! sets a flag:
//!
//! ```text
//!   flag.clear()          ─ before polling, so nothing after it is missed
//!   node.poll(dev)        ─ drivers that ran dry keep flag.waker()
//!   critical section {    ─ an IRQ here still ends WFI (it pends)
//!       if !flag.is_set() { WFI }
//!   }
//! ```
//!
//! The same waker can be given to a timer (embassy-time's queue), so a
//! deadline sets the flag too. Only atomic loads and stores are used, so it
//! works on cores without compare-and-swap (Cortex-M0+, thumbv6m).

use core::sync::atomic::{AtomicBool, Ordering};
use core::task::{RawWaker, RawWakerVTable, Waker};

/// A flag that a [`Waker`] sets. Keep it in a `static`.
#[derive(Debug, Default)]
pub struct WakeFlag {
    set: AtomicBool,
}

impl WakeFlag {
    /// A cleared flag; `const`, to initialise a `static`.
    pub const fn new() -> Self {
        WakeFlag {
            set: AtomicBool::new(false),
        }
    }

    /// A waker that sets this flag. Cloning and dropping it cost nothing;
    /// all its clones are the same waker (`will_wake` is true between them),
    /// so a timer queue keeps one entry for it, not one per poll.
    pub fn waker(&'static self) -> Waker {
        let raw = RawWaker::new((self as *const WakeFlag).cast(), &VTABLE);
        // SAFETY: the data pointer is a `&'static WakeFlag`, valid forever,
        // and every function of VTABLE only reads through it (an atomic
        // store is a shared access), so the `RawWaker` contract holds from
        // any thread or interrupt.
        unsafe { Waker::from_raw(raw) }
    }

    /// Whether the waker has been called since the last [`clear`](Self::clear).
    pub fn is_set(&self) -> bool {
        self.set.load(Ordering::Acquire)
    }

    /// Forgets earlier wake-ups. Call it *before* polling: a wake-up that
    /// happens during the poll then stays visible to the sleep that follows.
    pub fn clear(&self) {
        self.set.store(false, Ordering::Release);
    }

    /// Sets the flag, as the waker does.
    pub fn set(&self) {
        self.set.store(true, Ordering::Release);
    }
}

static VTABLE: RawWakerVTable = RawWakerVTable::new(clone, wake, wake, drop);

fn flag(data: *const ()) -> &'static WakeFlag {
    // SAFETY: every RawWaker with VTABLE was made by `WakeFlag::waker` from
    // a `&'static WakeFlag`.
    unsafe { &*data.cast::<WakeFlag>() }
}

fn clone(data: *const ()) -> RawWaker {
    RawWaker::new(data, &VTABLE)
}

fn wake(data: *const ()) {
    flag(data).set();
}

fn drop(_: *const ()) {}
