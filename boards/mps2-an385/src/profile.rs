//! Where the core's time goes, for `./bench --profile` (cargo feature
//! `profile`; without it every function here is empty and compiles away).
//!
//! Under QEMU the firmware's cost is dominated by something a host profiler
//! cannot attribute: every access to a LAN9118 register is a call into the
//! emulator's device model, and every frame moves through the FIFOs one
//! 32-bit access at a time. This module measures that directly, on the
//! target, with a second CMSDK timer (TIMER1, 25 MHz) running freely:
//!
//! - [`Phase::RxFifo`]: reading frames out of the RX data FIFO;
//! - [`Phase::RxProcess`]: smoltcp taking in a frame read (parsing,
//!   checksums, copying the payload into the socket);
//! - [`Phase::TxFill`]: smoltcp building a frame in the driver's buffer;
//! - [`Phase::TxFifo`]: writing frames into the TX data FIFO. QEMU hands the
//!   frame to slirp inside the last write, and slirp sends its payload to
//!   the host socket there and then, so this includes that `send()`;
//! - [`Phase::Poll`]: all of `Node::poll` (the three above included).
//!
//! [`report`] logs the running totals each time 512 more frames have been
//! received (about twice per MiB echoed, so the log costs nothing
//! measurable); the benchmark takes the difference across its 1 MiB echoes. At
//! boot, [`calibrate`] logs what one register read costs, and what copying
//! a MiB costs (`src/memcpy.rs`), with the source aligned and not.
//!
//! A timer read is itself a register access (about a tenth of a microsecond
//! under QEMU), and there are about six per frame: the profile build is a few
//! percent slower than the plain one, and the benchmark says so.

/// The phases timed; see the module documentation.
#[derive(Clone, Copy)]
pub enum Phase {
    RxFifo = 0,
    RxProcess = 1,
    TxFill = 2,
    TxFifo = 3,
    Poll = 4,
}

#[cfg(feature = "profile")]
mod imp {
    use core::sync::atomic::{AtomicU32, Ordering::Relaxed};

    use super::Phase;
    use crate::mmio::{Block, Reg};

    /// CMSDK APB TIMER1, free for this purpose.
    const TIMER1_BASE: usize = 0x4000_1000;
    const CTRL: Reg = Reg(0x00);
    const VALUE: Reg = Reg(0x04);
    const RELOAD: Reg = Reg(0x08);
    /// Timer ticks per microsecond (the 25 MHz APB clock).
    const TICKS_PER_US: u32 = 25;
    /// How often [`report`] logs, in received frames.
    const REPORT_EVERY: u32 = 512;

    // SAFETY: TIMER1 exists at this address on the AN385 and nothing else
    // in the firmware uses it.
    const TIMER: Block = unsafe { Block::new(TIMER1_BASE) };

    /// Ticks spent in each [`Phase`], wrapping (the benchmark takes
    /// differences over well under the 171 s a wrap takes).
    static TICKS: [AtomicU32; 5] = [const { AtomicU32::new(0) }; 5];

    pub fn start() {
        TIMER.write(CTRL, 0);
        TIMER.write(RELOAD, u32::MAX);
        TIMER.write(VALUE, u32::MAX);
        TIMER.write(CTRL, 1);
    }

    /// The free-running count, made to go up.
    #[inline(always)]
    pub fn now() -> u32 {
        !TIMER.read(VALUE)
    }

    #[inline(always)]
    pub fn add(phase: Phase, since: u32) {
        TICKS[phase as usize].fetch_add(now().wrapping_sub(since), Relaxed);
    }

    /// The received-frame count at which [`report`] logs next.
    static NEXT: AtomicU32 = AtomicU32::new(0);

    pub fn report(rx_frames: u32, tx_frames: u32) {
        if rx_frames < NEXT.load(Relaxed) {
            return;
        }
        NEXT.store(rx_frames + REPORT_EVERY, Relaxed);
        let us = |p: Phase| TICKS[p as usize].load(Relaxed) / TICKS_PER_US;
        defmt::info!(
            "profile: at {=u32} us, rx {=u32} tx {=u32} frames; us in poll {=u32}, rx fifo {=u32}, tx fill {=u32}, tx fifo {=u32}, rx process {=u32}",
            now() / TICKS_PER_US,
            rx_frames,
            tx_frames,
            us(Phase::Poll),
            us(Phase::RxFifo),
            us(Phase::TxFill),
            us(Phase::TxFifo),
            us(Phase::RxProcess)
        );
    }

    /// Source and destination of [`copy_cost`]: 16 KiB each, and one word
    /// more so that the source can start a byte in.
    static mut FROM: [u32; 4097] = [0; 4097];
    static mut TO: [u32; 4096] = [0; 4096];

    /// Microseconds `copy_from_slice` (the firmware's `memcpy`) takes for
    /// 1 MiB, in 16 KiB copies, with the source `offset` bytes past a word.
    fn copy_cost(offset: usize) -> u32 {
        const CHUNK: usize = 16 * 1024;
        // SAFETY: only this function touches the two statics, and the
        // profile calibration runs once, before interrupts are enabled.
        let (from, to) = unsafe {
            (
                &*core::ptr::addr_of!(FROM).cast::<[u8; 4 * 4097]>(),
                &mut *core::ptr::addr_of_mut!(TO).cast::<[u8; CHUNK]>(),
            )
        };
        let t0 = now();
        for _ in 0..64 {
            core::hint::black_box(&mut *to)
                .copy_from_slice(core::hint::black_box(&from[offset..offset + CHUNK]));
        }
        now().wrapping_sub(t0) / TICKS_PER_US
    }

    pub fn calibrate(read: impl Fn() -> u32) {
        defmt::info!(
            "profile: copying 1 MiB costs {=u32} us word-aligned, {=u32} us a byte off",
            copy_cost(0),
            copy_cost(1)
        );
        const READS: u32 = 100_000;
        let t0 = now();
        let mut sink = 0u32;
        for _ in 0..READS {
            sink = sink.wrapping_add(read());
        }
        let ticks = now().wrapping_sub(t0);
        core::hint::black_box(sink);
        defmt::info!(
            "profile: one LAN9118 register read costs {=u32} ns ({=u32} reads)",
            ticks * (1000 / TICKS_PER_US) / READS,
            READS
        );
    }
}

#[cfg(not(feature = "profile"))]
mod imp {
    use super::Phase;

    pub fn start() {}
    #[inline(always)]
    pub fn now() -> u32 {
        0
    }
    #[inline(always)]
    pub fn add(_: Phase, _: u32) {}
    pub fn report(_: u32, _: u32) {}
    pub fn calibrate(_: impl Fn() -> u32) {}
}

/// Starts the profiling timer (TIMER1). Call once at boot.
pub fn start() {
    imp::start()
}

/// A timestamp to pass to [`add`].
#[inline(always)]
pub fn now() -> u32 {
    imp::now()
}

/// Adds the time since `since` (from [`now`]) to `phase`.
#[inline(always)]
pub fn add(phase: Phase, since: u32) {
    imp::add(phase, since)
}

/// Logs the running totals if 512 frames have been received since the last
/// time. Call after every poll.
pub fn report(rx_frames: u32, tx_frames: u32) {
    imp::report(rx_frames, tx_frames)
}

/// Logs the cost of one register `read`, averaged over many, and of
/// copying a MiB.
pub fn calibrate(read: impl Fn() -> u32) {
    imp::calibrate(read)
}
