//! The Stellaris (LM3S6965) Ethernet controller as a smoltcp [`phy::Device`].
//!
//! The controller has no DMA: frames go in and out through one 32-bit FIFO
//! register (`DATA`). The hardware frames each packet with a 2-byte length
//! field, and the two directions disagree on what it counts:
//!
//! ```text
//!  TX: | len - 14 (u16 LE) | dst MAC ... payload |                (written)
//!  RX: | len + 6  (u16 LE) | dst MAC ... payload | FCS (4 bytes) | (read)
//! ```
//!
//! `len` is the Ethernet frame without FCS, the unit smoltcp works in. Both
//! directions therefore stage a frame in a word-aligned buffer *behind* a
//! 2-byte prefix, so that the FIFO moves whole `u32` words and the frame is a
//! plain byte slice at offset 2: one copy per direction, no shifting.
//!
//! Receive is interrupt-driven: [`on_interrupt`] acknowledges the RX
//! interrupt so that it only wakes the core from `WFI`; the frames themselves
//! are drained by [`phy::Device::receive`] from the main loop, which asks the
//! `NP` (number of packets) register rather than a flag, so no wake-up is lost.
//!
//! QEMU's model (`hw/net/stellaris_enet.c`) holds up to 31 frames and
//! applies back-pressure to the network instead of dropping; real silicon has
//! a 2 KiB RX FIFO, room for one full-size frame, which is why
//! [`capabilities`](StellarisEth::capabilities) reports a burst size of one.
//! The PHY (MII management) is not touched: QEMU does not model it and the
//! reset defaults autonegotiate on the evaluation board. This driver has only
//! run under QEMU.

use core::ptr;

use smoltcp::phy::{self, DeviceCapabilities, Medium};
use smoltcp::time::Instant;
use smoltcp::wire::EthernetAddress;

/// Base address of the Ethernet MAC's register block.
const BASE: usize = 0x4004_8000;

/// MAC registers, as byte offsets from [`BASE`].
#[derive(Clone, Copy)]
#[repr(usize)]
enum Reg {
    /// Raw interrupt status (read) / interrupt acknowledge (write 1 to clear).
    RisIack = 0x00,
    /// Interrupt mask: which RIS bits drive the NVIC line.
    Im = 0x04,
    /// Receive control.
    Rctl = 0x08,
    /// Transmit control.
    Tctl = 0x0C,
    /// The FIFO: reads pop the RX FIFO, writes push the TX FIFO.
    Data = 0x10,
    /// MAC address bytes 0..4 (little-endian).
    Ia0 = 0x14,
    /// MAC address bytes 4..6.
    Ia1 = 0x18,
    /// TX threshold; 0x3F (the reset value) means "send only on request".
    Thr = 0x1C,
    /// Number of complete frames waiting in the RX FIFO.
    Np = 0x34,
    /// Transmission request: set NEWTX to send the FIFO; it reads back set
    /// until the frame has left.
    Tr = 0x38,
}

/// RIS/IM/IACK: a frame was received.
const INT_RX: u32 = 1 << 0;
/// RIS/IM/IACK: every interrupt source, for clearing stale status at start.
const INT_ALL: u32 = 0x7F;
/// RCTL: receiver enable.
const RCTL_RXEN: u32 = 1 << 0;
/// RCTL: accept all multicast frames (smoltcp filters by address itself).
const RCTL_AMUL: u32 = 1 << 1;
/// RCTL: drop frames with a bad FCS in hardware.
const RCTL_BADCRC: u32 = 1 << 3;
/// RCTL: flush the RX FIFO.
const RCTL_RSTFIFO: u32 = 1 << 4;
/// TCTL: transmitter enable.
const TCTL_TXEN: u32 = 1 << 0;
/// TCTL: pad short frames to the 60-byte minimum.
const TCTL_PADEN: u32 = 1 << 1;
/// TCTL: append the FCS in hardware.
const TCTL_CRC: u32 = 1 << 2;
/// TCTL: full duplex (QEMU's slirp link is full duplex; so is the EVB's PHY
/// once autonegotiated against a switch).
const TCTL_DUPLEX: u32 = 1 << 4;
/// TR: start transmitting the frame in the TX FIFO.
const TR_NEWTX: u32 = 1 << 0;

/// System control: run-mode clock gating register 2 (Ethernet MAC and PHY).
const SYSCTL_RCGC2: usize = 0x400F_E108;
/// RCGC2 bits that clock the MAC (EMAC0) and the PHY (EPHY0).
const RCGC2_EMAC0_EPHY0: u32 = (1 << 28) | (1 << 30);

/// Largest Ethernet frame handled, without FCS: 1500-byte IP MTU + 14.
pub const MAX_FRAME: usize = 1514;
/// Words in each staging buffer: the 2-byte prefix, the largest frame and the
/// 4-byte FCS that RX appends, rounded up to whole words.
const BUF_WORDS: usize = (2 + MAX_FRAME + 4).div_ceil(4);
/// How many times to poll `TR` for the previous frame to leave before giving
/// up on a transmit. At 10 Mbit/s a full frame takes 1.2 ms, ~15 000 cycles
/// at 12.5 MHz; a poll is a few cycles, so this allows tens of milliseconds.
const TX_WAIT_POLLS: u32 = 100_000;

/// The two staging buffers. They are 3 KiB together, so they live in a
/// `static` (see [`FrameBuffers::new`]) rather than inside the driver value,
/// which would otherwise be built on the stack and moved.
pub struct FrameBuffers {
    /// One received frame, with its length prefix and FCS.
    rx: [u32; BUF_WORDS],
    /// One frame being built by smoltcp, behind the TX length prefix.
    tx: [u32; BUF_WORDS],
}

impl FrameBuffers {
    /// Zeroed buffers, for a `static` initializer.
    pub const fn new() -> Self {
        FrameBuffers {
            rx: [0; BUF_WORDS],
            tx: [0; BUF_WORDS],
        }
    }
}

/// Counters kept so that no frame is lost silently; logged by the board.
#[derive(Clone, Copy, Default, defmt::Format)]
pub struct Stats {
    /// Frames handed to smoltcp.
    pub rx_frames: u32,
    /// Frames drained and dropped because they exceeded [`MAX_FRAME`] or
    /// were shorter than an Ethernet header.
    pub rx_dropped: u32,
    /// Frames sent.
    pub tx_frames: u32,
    /// Frames dropped because the transmitter stayed busy
    /// ([`TX_WAIT_POLLS`]); TCP will retransmit them.
    pub tx_dropped: u32,
}

/// The controller's registers. Zero-sized: every access is a volatile
/// read or write at a fixed address.
#[derive(Clone, Copy)]
struct Regs;

impl Regs {
    fn read(self, reg: Reg) -> u32 {
        // SAFETY: `BASE + reg` is a 4-byte aligned register of the always
        // mapped Ethernet block; reading it has no memory-safety effect (a
        // DATA read pops the FIFO, which only `StellarisEth` does).
        unsafe { ptr::read_volatile((BASE + reg as usize) as *const u32) }
    }

    fn write(self, reg: Reg, value: u32) {
        // SAFETY: as in `read`; writes change only the controller's state.
        unsafe { ptr::write_volatile((BASE + reg as usize) as *mut u32, value) }
    }
}

/// The Ethernet controller, owning its register block and staging buffers.
pub struct StellarisEth {
    regs: Regs,
    bufs: &'static mut FrameBuffers,
    mac: EthernetAddress,
    stats: Stats,
}

impl StellarisEth {
    /// Clocks and resets the controller, and enables the transmitter, the
    /// receiver and the RX interrupt (the caller unmasks it in the NVIC).
    ///
    /// The MAC address is the one in `IA0`/`IA1`: QEMU preloads it (from
    /// `-nic ...,mac=`); on hardware, boot code copies it there from the
    /// `USER0`/`USER1` flash registers.
    ///
    /// # Safety
    /// At most one `StellarisEth` may exist: it assumes it alone pops the RX
    /// FIFO and pushes the TX FIFO.
    pub unsafe fn new(bufs: &'static mut FrameBuffers) -> Self {
        // SAFETY: RCGC2 is a plain read-modify-write clock gate register in
        // the system control block; setting the Ethernet bits affects only
        // the Ethernet block.
        unsafe {
            let rcgc2 = SYSCTL_RCGC2 as *mut u32;
            ptr::write_volatile(rcgc2, ptr::read_volatile(rcgc2) | RCGC2_EMAC0_EPHY0);
        }
        let regs = Regs;
        // Quiet everything and flush whatever arrived before we were ready.
        regs.write(Reg::Im, 0);
        regs.write(Reg::Rctl, RCTL_RSTFIFO);
        regs.write(Reg::Tctl, 0);
        regs.write(Reg::RisIack, INT_ALL);
        // Send only on an explicit NEWTX, never on a FIFO threshold.
        regs.write(Reg::Thr, 0x3F);
        regs.write(Reg::Tctl, TCTL_TXEN | TCTL_PADEN | TCTL_CRC | TCTL_DUPLEX);
        regs.write(
            Reg::Rctl,
            RCTL_RXEN | RCTL_AMUL | RCTL_BADCRC | RCTL_RSTFIFO,
        );
        regs.write(Reg::Im, INT_RX);

        let [a0, a1, a2, a3] = regs.read(Reg::Ia0).to_le_bytes();
        let [a4, a5, _, _] = regs.read(Reg::Ia1).to_le_bytes();
        let mac = EthernetAddress([a0, a1, a2, a3, a4, a5]);
        StellarisEth {
            regs,
            bufs,
            mac,
            stats: Stats::default(),
        }
    }

    /// The controller's MAC address.
    pub fn mac(&self) -> EthernetAddress {
        self.mac
    }

    /// Frame counters since start.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Whether a received frame is waiting. The main loop checks this with
    /// interrupts masked right before `WFI`, so a frame that arrives after
    /// the check still pends the interrupt and ends the `WFI` at once.
    pub fn rx_pending(&self) -> bool {
        self.regs.read(Reg::Np) != 0
    }

    /// Pops the next frame into the RX buffer and returns its length, or
    /// `None` if the FIFO is empty. Frames too large for the buffer or too
    /// short to be Ethernet are drained, counted and skipped.
    fn pop_frame(&mut self) -> Option<usize> {
        // Bounded: each pass consumes one of at most 31 queued frames (the
        // model's queue; the hardware holds fewer).
        for _ in 0..32 {
            if self.regs.read(Reg::Np) == 0 {
                return None;
            }
            let first = self.regs.read(Reg::Data);
            // The count covers the prefix, the frame and the FCS.
            let count = (first & 0xFFFF) as usize;
            let words = count.div_ceil(4);
            // Read exactly `words` words: one more would start on the next
            // frame. The first is already read.
            if count < 6 + 14 || words > BUF_WORDS {
                for _ in 1..words {
                    let _ = self.regs.read(Reg::Data);
                }
                self.stats.rx_dropped += 1;
                continue;
            }
            self.bufs.rx[0] = first;
            for w in &mut self.bufs.rx[1..words] {
                *w = self.regs.read(Reg::Data);
            }
            self.stats.rx_frames += 1;
            return Some(count - 6);
        }
        None
    }
}

/// Acknowledges the RX interrupt. Call it from the Ethernet interrupt
/// handler (IRQ 42): its only job is to end `WFI`, so it leaves the frames in
/// the FIFO for the main loop and just clears the status bit that keeps the
/// level-triggered line asserted.
pub fn on_interrupt() {
    // A write-1-to-clear of RIS never disturbs a FIFO transfer that the
    // interrupted main loop may be in the middle of.
    Regs.write(Reg::RisIack, INT_RX);
}

/// Views a word buffer as bytes. Words are stored little-endian, the order in
/// which the controller shifts FIFO bytes onto the wire.
fn as_bytes(words: &[u32]) -> &[u8] {
    // SAFETY: u8 has no alignment or validity requirements, and the byte
    // length equals the words' size; the borrow keeps `words` alive.
    unsafe { core::slice::from_raw_parts(words.as_ptr().cast(), words.len() * 4) }
}

/// Mutable byte view of a word buffer; see [`as_bytes`].
fn as_bytes_mut(words: &mut [u32]) -> &mut [u8] {
    // SAFETY: as in `as_bytes`; any byte pattern is a valid u32.
    unsafe { core::slice::from_raw_parts_mut(words.as_mut_ptr().cast(), words.len() * 4) }
}

/// A received frame, already copied out of the FIFO.
pub struct RxToken<'a> {
    frame: &'a [u8],
}

impl phy::RxToken for RxToken<'_> {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(self.frame)
    }
}

/// Permission to send one frame.
pub struct TxToken<'a> {
    regs: Regs,
    buf: &'a mut [u32; BUF_WORDS],
    stats: &'a mut Stats,
}

impl phy::TxToken for TxToken<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        // smoltcp never asks for more than the MTU we report.
        let len = len.clamp(14, MAX_FRAME);
        let bytes = as_bytes_mut(self.buf);
        let result = f(&mut bytes[2..2 + len]);
        // The length prefix counts the bytes after the Ethernet header.
        bytes[..2].copy_from_slice(&((len - 14) as u16).to_le_bytes());

        // The FIFO holds one frame: wait for the previous one to leave.
        // Under QEMU it already has; on hardware this is at most one frame
        // time.
        let mut polls = 0;
        while self.regs.read(Reg::Tr) & TR_NEWTX != 0 {
            polls += 1;
            if polls == TX_WAIT_POLLS {
                self.stats.tx_dropped += 1;
                defmt::warn!("eth: transmitter stuck, frame of {} bytes dropped", len);
                return result;
            }
        }
        for &word in &self.buf[..(2 + len).div_ceil(4)] {
            self.regs.write(Reg::Data, word);
        }
        self.regs.write(Reg::Tr, TR_NEWTX);
        self.stats.tx_frames += 1;
        result
    }
}

impl phy::Device for StellarisEth {
    type RxToken<'a> = RxToken<'a>;
    type TxToken<'a> = TxToken<'a>;

    fn receive(&mut self, _timestamp: Instant) -> Option<(RxToken<'_>, TxToken<'_>)> {
        let len = self.pop_frame()?;
        let FrameBuffers { rx, tx } = &mut *self.bufs;
        Some((
            RxToken {
                frame: &as_bytes(rx)[2..2 + len],
            },
            TxToken {
                regs: self.regs,
                buf: tx,
                stats: &mut self.stats,
            },
        ))
    }

    fn transmit(&mut self, _timestamp: Instant) -> Option<TxToken<'_>> {
        Some(TxToken {
            regs: self.regs,
            buf: &mut self.bufs.tx,
            stats: &mut self.stats,
        })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = MAX_FRAME;
        // The silicon's RX FIFO holds one full-size frame; a TCP window of
        // more than one segment would overrun it at line rate.
        caps.max_burst_size = Some(1);
        caps
    }
}
