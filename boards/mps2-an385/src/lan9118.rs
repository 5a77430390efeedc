//! SMSC LAN9118 Ethernet controller as a smoltcp [`Device`].
//!
//! The LAN9118 (a LAN9220 on the real MPS2 board, software-compatible) has no
//! DMA: frames move through FIFOs that the CPU reads and writes one 32-bit
//! word at a time. That makes a driver short:
//!
//! - **Receive**: the RX *status* FIFO holds one word per frame (its length,
//!   FCS included, and error bits); the RX *data* FIFO holds the frames
//!   themselves. [`Lan9118::receive`] pops one status, reads exactly
//!   `ceil((2 + len) / 4)` data words into a buffer, and hands smoltcp the
//!   frame without its 4-byte FCS.
//! - **Transmit**: two command words (segment flags and lengths) followed by
//!   the frame's words go into the TX data FIFO; the chip appends the FCS.
//! - **Alignment**: both directions put the frame 2 bytes into its first
//!   FIFO word (`RX_CFG.RXDOFF`, TX command A's data start offset), so the
//!   IP header and the TCP payload of a full segment sit on 4-byte
//!   boundaries in the buffers. smoltcp's payload copies to and from the
//!   socket buffers are then word copies, three times faster than the
//!   byte-shifting copies an Ethernet header of 14 bytes would cause.
//! - **Interrupts**: only "RX status FIFO level", and only while the core
//!   sleeps ([`Lan9118::enable_wake`]): its one job is to end `WFI` when a
//!   frame arrives. Awake, the main loop drains the FIFO itself, so frames
//!   then raise no interrupt (each would only add an exception entry and
//!   return to the work). The handler just acknowledges
//!   it ([`InterruptAck`]); all FIFO work happens in the main loop, so the
//!   FIFOs have a single owner and need no locking.
//!
//! Three facts about QEMU's model shape the code (see the board notes):
//!
//! 1. With `IRQ_CFG` left at 0 the interrupt output is active-low, so an idle
//!    NIC holds NVIC line 13 asserted forever. [`Lan9118::new`] writes
//!    `IRQ_CFG` (enabled, active-high, push-pull) before anything unmasks it.
//! 2. Reading one data word too many eats the first word of the *next* frame,
//!    which is then lost. The word count comes from the status word alone.
//! 3. When its RX FIFO is full QEMU *drops* the frame (no back-pressure), and
//!    the FIFO is the only buffer between slirp and the firmware: slirp sends
//!    whatever the open TCP windows allow the moment they open, often while
//!    the guest cannot run. The windows of all connections *together* must
//!    therefore fit the FIFO (six full frames). The driver shares that
//!    budget out: it lowers the window field of every TCP segment it sends
//!    to [`Lan9118::share_window`]'s share, from four frames for a lone
//!    connection down to one frame each from four connections on. Less than
//!    one frame would stall slirp (see [`MIN_WINDOW_FRAMES`]), so from seven
//!    connections streaming at once the windows can exceed the FIFO, and
//!    QEMU drops a frame now and then (slirp retransmits it). The receive
//!    path does nothing but copy, and smoltcp's `poll` keeps calling it
//!    until the FIFO is empty.
//!
//! Register names and bits follow the LAN9118 datasheet.

use smoltcp::phy::{self, Device, DeviceCapabilities, Medium};

use crate::profile::{self, Phase};
use smoltcp::time::Instant;
use smoltcp::wire::EthernetAddress;

use crate::mmio::{Block, Reg};

/// System control and status registers (byte offsets).
mod csr {
    use super::Reg;
    pub const RX_DATA_FIFO: Reg = Reg(0x00);
    pub const TX_DATA_FIFO: Reg = Reg(0x20);
    pub const RX_STATUS_FIFO: Reg = Reg(0x40);
    pub const TX_STATUS_FIFO: Reg = Reg(0x48);
    pub const ID_REV: Reg = Reg(0x50);
    pub const IRQ_CFG: Reg = Reg(0x54);
    pub const INT_STS: Reg = Reg(0x58);
    pub const INT_EN: Reg = Reg(0x5C);
    pub const BYTE_TEST: Reg = Reg(0x64);
    pub const FIFO_INT: Reg = Reg(0x68);
    pub const RX_CFG: Reg = Reg(0x6C);
    pub const TX_CFG: Reg = Reg(0x70);
    pub const HW_CFG: Reg = Reg(0x74);
    pub const RX_FIFO_INF: Reg = Reg(0x7C);
    pub const TX_FIFO_INF: Reg = Reg(0x80);
    pub const PMT_CTRL: Reg = Reg(0x84);
    pub const RX_DROP: Reg = Reg(0xA0);
    pub const MAC_CSR_CMD: Reg = Reg(0xA4);
    pub const MAC_CSR_DATA: Reg = Reg(0xA8);
}

/// MAC registers: reached indirectly through `MAC_CSR_CMD`/`MAC_CSR_DATA`.
mod mac {
    pub const CR: u32 = 1;
    pub const ADDRH: u32 = 2;
    pub const ADDRL: u32 = 3;
    pub const MII_ACC: u32 = 6;
    pub const MII_DATA: u32 = 7;

    pub const CR_RXEN: u32 = 1 << 2;
    pub const CR_TXEN: u32 = 1 << 3;
    pub const CR_FDPX: u32 = 1 << 20;
}

/// Bits and fields of the system registers.
mod bits {
    /// `BYTE_TEST` always reads this; anything else means no chip, or a bus
    /// configured with the wrong width or byte order.
    pub const BYTE_TEST_MAGIC: u32 = 0x8765_4321;
    pub const HW_CFG_SRST: u32 = 1 << 0;
    pub const PMT_CTRL_READY: u32 = 1 << 0;
    /// `IRQ_CFG`: IRQ_EN | IRQ_POL (active high) | IRQ_TYPE (push-pull).
    pub const IRQ_CFG_ENABLE_HIGH_PUSH_PULL: u32 = (1 << 8) | (1 << 4) | (1 << 0);
    /// `INT_STS`/`INT_EN`: RX status FIFO level crossed `FIFO_INT[7:0]`.
    pub const INT_RSFL: u32 = 1 << 3;
    pub const TX_CFG_TX_ON: u32 = 1 << 1;
    /// Let the TX status FIFO overrun instead of stalling transmission: the
    /// driver reads statuses only to count errors.
    pub const TX_CFG_TXSAO: u32 = 1 << 2;
    pub const MAC_CSR_BUSY: u32 = 1 << 31;
    pub const MAC_CSR_READ: u32 = 1 << 30;
    pub const MII_BUSY: u32 = 1 << 0;
    /// Internal PHY address on the LAN9118.
    pub const MII_PHY_ADDR: u32 = 1 << 11;
    /// PHY basic status register, link-up bit.
    pub const PHY_BMSR: u32 = 1;
    pub const BMSR_LINK_UP: u16 = 1 << 2;
    /// RX status word: error summary.
    pub const RX_STS_ERROR: u32 = 1 << 15;
    /// TX status word: error summary.
    pub const TX_STS_ERROR: u32 = 1 << 15;
    /// TX command A: first segment, last segment.
    pub const TX_CMD_A_FIRST: u32 = 1 << 13;
    pub const TX_CMD_A_LAST: u32 = 1 << 12;
    /// TX command A: data start offset, bytes 20:16.
    pub const TX_CMD_A_OFFSET_SHIFT: u32 = 16;
    /// `RX_CFG`: RX data offset (`RXDOFF`), bits 12:8.
    pub const RX_CFG_RXDOFF_SHIFT: u32 = 8;
}

/// Largest frame smoltcp may send or receive, without FCS: 1500 bytes of IP
/// plus the 14-byte Ethernet header.
pub const MTU: usize = 1514;
/// The Ethernet frame check sequence the chip appends on receive.
const FCS_LEN: usize = 4;
/// Where a frame starts in its buffer and in its first FIFO word, in both
/// directions: 2 bytes in, so that the 14-byte Ethernet header ends on a
/// 4-byte boundary (see "Alignment" above).
const FRAME_OFFSET: usize = 2;
/// Frame buffer size: the offset plus the largest received frame including
/// FCS (1518), rounded up to whole FIFO words.
const BUF_LEN: usize = (FRAME_OFFSET + MTU + FCS_LEN).next_multiple_of(4);
/// The RX data FIFO, in 32-bit words (with QEMU's and the chip's default
/// `HW_CFG`): 10 KiB.
const RX_FIFO_WORDS: usize = 2640;
/// Full-size frames the RX data FIFO holds at once: six (380 words each).
const RX_FIFO_FRAMES: usize = RX_FIFO_WORDS / (BUF_LEN / 4);
/// The TCP payload of a full frame: what one frame of window is worth.
const SEGMENT: usize = MTU - 14 - 20 - 20;
/// The most window one connection gets, in full frames: when it is the only
/// one open. Four frames cut QEMU's CPU time per MiB echoed by about 10%
/// against one (fewer polls per frame); more buys nothing measurable, and
/// four leave room in the FIFO for the next connection's first segments.
pub const MAX_WINDOW_FRAMES: usize = 4;
/// The least: one full segment. A smaller window would stall slirp, whose
/// sender-side silly-window avoidance sends less than a full segment only
/// into a window at least half the largest it has seen on the connection,
/// and otherwise waits for its persist timer (seconds).
pub const MIN_WINDOW_FRAMES: usize = 1;
const _: () = assert!(MAX_WINDOW_FRAMES < RX_FIFO_FRAMES && MIN_WINDOW_FRAMES >= 1);
/// The TCP receive buffer that lets a lone connection use its whole share:
/// smoltcp advertises the free space of the buffer, and the driver lowers it.
pub const TCP_RX_BUFFER: usize = MAX_WINDOW_FRAMES * SEGMENT;
/// Spin budget for register handshakes (soft reset, MAC/MII busy bits). The
/// real chip finishes in microseconds; QEMU at once. A chip that never does
/// is reported as an [`Error`] rather than hanging the boot.
const SPIN_LIMIT: u32 = 1_000_000;

/// Why [`Lan9118::new`] failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, defmt::Format)]
pub enum Error {
    /// `BYTE_TEST` did not read `0x8765_4321`; holds what it read.
    NotFound(u32),
    /// A busy bit did not clear within the spin budget; names the register.
    Timeout(&'static str),
}

/// Counters a board can log to see what the NIC did. Cheap to keep, and the
/// only way to notice errors the chip reports.
#[derive(Debug, Default, Clone, Copy, defmt::Format)]
pub struct Stats {
    /// Frames handed to smoltcp.
    pub rx_frames: u32,
    /// Frames the chip flagged as bad (CRC, runt, ...), discarded.
    pub rx_errors: u32,
    /// Frames longer than [`MTU`], discarded.
    pub rx_oversize: u32,
    /// Frames written to the TX FIFO.
    pub tx_frames: u32,
    /// TX status words with the error bit.
    pub tx_errors: u32,
}

/// A frame buffer, word-aligned so the FIFO copy loops stay simple.
#[repr(C, align(4))]
struct FrameBuf([u8; BUF_LEN]);

/// The driver: owns the register block and one frame buffer per direction.
pub struct Lan9118 {
    /// The chip's registers. Popping a FIFO has side effects, so this struct
    /// is their only user (the interrupt handler writes `INT_STS` alone).
    regs: Block,
    /// The station address, read back from the chip after reset (QEMU fills
    /// it from `-nic ...,mac=`; a real board from its EEPROM).
    mac: EthernetAddress,
    /// Where a received frame is copied before smoltcp parses it.
    rx: FrameBuf,
    /// Where smoltcp builds a frame before it is written to the TX FIFO.
    tx: FrameBuf,
    /// See [`Stats`].
    stats: Stats,
    /// The largest TCP window any segment may advertise now, in bytes: this
    /// connection's share of the RX FIFO (see [`Lan9118::share_window`]).
    window: u16,
}

impl Lan9118 {
    /// Resets the chip at `base` and configures it: MAC RX/TX on, full
    /// duplex, no promiscuous mode, RX-status interrupt enabled at the chip
    /// (the caller unmasks it in the NVIC).
    ///
    /// # Safety
    ///
    /// `base` must be the address of a LAN9118 register block, and no other
    /// code may access that block while the returned driver exists (except
    /// through [`InterruptAck`]).
    pub unsafe fn new(base: usize) -> Result<Self, Error> {
        // SAFETY: forwarded to the caller.
        let regs = unsafe { Block::new(base) };
        let byte_test = regs.read(csr::BYTE_TEST);
        if byte_test != bits::BYTE_TEST_MAGIC {
            return Err(Error::NotFound(byte_test));
        }
        let mut nic = Lan9118 {
            regs,
            mac: EthernetAddress([0; 6]),
            rx: FrameBuf([0; BUF_LEN]),
            tx: FrameBuf([0; BUF_LEN]),
            stats: Stats::default(),
            window: window_for(0),
        };
        nic.reset()?;
        Ok(nic)
    }

    fn reset(&mut self) -> Result<(), Error> {
        let r = self.regs;
        r.write(csr::HW_CFG, bits::HW_CFG_SRST);
        spin_until(
            || r.read(csr::HW_CFG) & bits::HW_CFG_SRST == 0,
            "HW_CFG.SRST",
        )?;
        spin_until(
            || r.read(csr::PMT_CTRL) & bits::PMT_CTRL_READY != 0,
            "PMT_CTRL.READY",
        )?;

        // First, before any interrupt is unmasked: drive the IRQ pin
        // active-high so an idle chip leaves NVIC line 13 quiet.
        r.write(csr::INT_EN, 0);
        r.write(csr::INT_STS, u32::MAX);
        r.write(csr::IRQ_CFG, bits::IRQ_CFG_ENABLE_HIGH_PUSH_PULL);

        // The chip keeps its address across the soft reset (from EEPROM, or
        // from QEMU's -nic option). A blank one gets a fixed locally
        // administered address so the board still comes up.
        let lo = self.mac_read(mac::ADDRL)?.to_le_bytes();
        let hi = self.mac_read(mac::ADDRH)?.to_le_bytes();
        let addr = EthernetAddress([lo[0], lo[1], lo[2], lo[3], hi[0], hi[1]]);
        self.mac = if addr.is_unicast() && addr != EthernetAddress([0; 6]) {
            addr
        } else {
            let fallback = EthernetAddress([0x02, 0x00, 0x00, 0x12, 0x34, 0x56]);
            self.mac_write(mac::ADDRL, u32::from_le_bytes([2, 0, 0, 0x12]))?;
            self.mac_write(mac::ADDRH, u32::from_le_bytes([0x34, 0x56, 0, 0]))?;
            fallback
        };

        // RX: the frame starts 2 bytes into its first word (see
        // `FRAME_OFFSET`), no end padding, so a frame is exactly
        // ceil((2 + len) / 4) words. Interrupt as soon as one status is queued.
        r.write(
            csr::RX_CFG,
            (FRAME_OFFSET as u32) << bits::RX_CFG_RXDOFF_SHIFT,
        );
        r.write(csr::FIFO_INT, r.read(csr::FIFO_INT) & !0xFF);
        r.write(csr::TX_CFG, bits::TX_CFG_TX_ON | bits::TX_CFG_TXSAO);
        // Reset leaves the MAC promiscuous; this write turns that off and
        // keeps broadcast (ARP) on.
        self.mac_write(mac::CR, mac::CR_RXEN | mac::CR_TXEN | mac::CR_FDPX)?;
        // The RX interrupt stays disabled until the first `enable_wake`.
        Ok(())
    }

    /// The station address in use.
    pub fn mac_address(&self) -> EthernetAddress {
        self.mac
    }

    /// The chip's `ID_REV` register (0x0118_0001 on QEMU), for the boot log.
    pub fn id_rev(&self) -> u32 {
        self.regs.read(csr::ID_REV)
    }

    /// Whether the PHY reports link up.
    pub fn link_up(&mut self) -> Result<bool, Error> {
        Ok(self.phy_read(bits::PHY_BMSR)? & bits::BMSR_LINK_UP != 0)
    }

    /// Whether a received frame is waiting. The main loop checks this with
    /// interrupts masked just before `WFI`, so a frame that arrived after
    /// the last poll is never slept on.
    pub fn rx_pending(&self) -> bool {
        self.rx_statuses() != 0
    }

    /// Frames the chip dropped for lack of FIFO space (always 0 on QEMU,
    /// whose model does not count them).
    pub fn rx_dropped(&self) -> u32 {
        self.regs.read(csr::RX_DROP)
    }

    /// See [`Stats`].
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Shares the RX FIFO among `connections` open TCP connections: from now
    /// on no TCP segment sent advertises more than its share as window (see
    /// fact 3 above). The main loop calls it with the node's session count
    /// after every poll that did something (connections open and close only
    /// then).
    pub fn share_window(&mut self, connections: usize) {
        self.window = window_for(connections);
    }

    /// The TCP window each connection gets now, in bytes.
    pub fn window(&self) -> u16 {
        self.window
    }

    /// A handle the interrupt handler uses to acknowledge the RX interrupt.
    pub fn interrupt_ack(&self) -> InterruptAck {
        InterruptAck { regs: self.regs }
    }

    /// Lets the next frame raise the RX interrupt, to end a `WFI`. The
    /// latched status is cleared first, so that only a frame arriving from
    /// now on does; the caller then checks [`Lan9118::rx_pending`] for one
    /// that came before.
    pub fn enable_wake(&self) {
        self.regs.write(csr::INT_STS, bits::INT_RSFL);
        self.regs.write(csr::INT_EN, bits::INT_RSFL);
    }

    /// Frames raise no interrupt again: the core is awake and polls.
    pub fn disable_wake(&self) {
        self.regs.write(csr::INT_EN, 0);
    }

    /// Statuses in the RX status FIFO (`RX_FIFO_INF[23:16]`).
    fn rx_statuses(&self) -> u32 {
        (self.regs.read(csr::RX_FIFO_INF) >> 16) & 0xFF
    }

    /// Reads the next good frame into `self.rx` (at [`FRAME_OFFSET`]) and
    /// returns its length without FCS, discarding bad and oversized frames on
    /// the way.
    fn read_frame(&mut self) -> Option<usize> {
        while self.rx_statuses() != 0 {
            let status = self.regs.read(csr::RX_STATUS_FIFO);
            let len = ((status >> 16) & 0x3FFF) as usize;
            let words = (FRAME_OFFSET + len).div_ceil(4);
            let keep =
                status & bits::RX_STS_ERROR == 0 && (FCS_LEN + 14..=MTU + FCS_LEN).contains(&len);
            if keep {
                let t = profile::now();
                read_fifo(self.regs, &mut self.rx.0[..words * 4]);
                profile::add(Phase::RxFifo, t);
                self.stats.rx_frames += 1;
                return Some(len - FCS_LEN);
            }
            // Drain the bad frame word by word. (The chip's fast-forward,
            // RX_DP_CTRL, is not used: QEMU's model of it does not update the
            // FIFO fill level.)
            for _ in 0..words {
                self.regs.read(csr::RX_DATA_FIFO);
            }
            if status & bits::RX_STS_ERROR != 0 {
                self.stats.rx_errors += 1;
            } else {
                self.stats.rx_oversize += 1;
            }
        }
        None
    }

    /// Whether the TX data FIFO can take a full-size frame plus its two
    /// command words. Also drains TX statuses, counting errors.
    fn tx_ready(&mut self) -> bool {
        let inf = self.regs.read(csr::TX_FIFO_INF);
        for _ in 0..(inf >> 16) & 0xFF {
            if self.regs.read(csr::TX_STATUS_FIFO) & bits::TX_STS_ERROR != 0 {
                self.stats.tx_errors += 1;
            }
        }
        (inf & 0xFFFF) as usize >= BUF_LEN + 8
    }

    fn mac_wait(&self) -> Result<(), Error> {
        spin_until(
            || self.regs.read(csr::MAC_CSR_CMD) & bits::MAC_CSR_BUSY == 0,
            "MAC_CSR_CMD",
        )
    }

    fn mac_read(&self, index: u32) -> Result<u32, Error> {
        self.mac_wait()?;
        self.regs.write(
            csr::MAC_CSR_CMD,
            bits::MAC_CSR_BUSY | bits::MAC_CSR_READ | index,
        );
        self.mac_wait()?;
        Ok(self.regs.read(csr::MAC_CSR_DATA))
    }

    fn mac_write(&self, index: u32, value: u32) -> Result<(), Error> {
        self.mac_wait()?;
        self.regs.write(csr::MAC_CSR_DATA, value);
        self.regs
            .write(csr::MAC_CSR_CMD, bits::MAC_CSR_BUSY | index);
        self.mac_wait()
    }

    fn phy_read(&self, reg: u32) -> Result<u16, Error> {
        let mii_idle = || Ok::<_, Error>(self.mac_read(mac::MII_ACC)? & bits::MII_BUSY == 0);
        spin_until_ok(mii_idle, "MII_ACC")?;
        self.mac_write(
            mac::MII_ACC,
            bits::MII_PHY_ADDR | (reg << 6) | bits::MII_BUSY,
        )?;
        spin_until_ok(mii_idle, "MII_ACC")?;
        Ok(self.mac_read(mac::MII_DATA)? as u16)
    }
}

/// Acknowledges the RX interrupt from the interrupt handler. It writes one
/// write-1-to-clear bit of `INT_STS` and nothing else, so it can run at any
/// point of the main loop's FIFO work without disturbing it.
#[derive(Clone, Copy)]
pub struct InterruptAck {
    regs: Block,
}

impl InterruptAck {
    /// Deasserts the interrupt line until the next frame arrives. Without it
    /// the level-triggered line 13 would re-enter the handler forever.
    pub fn acknowledge(&self) {
        self.regs.write(csr::INT_STS, bits::INT_RSFL);
    }
}

fn spin_until(mut done: impl FnMut() -> bool, what: &'static str) -> Result<(), Error> {
    spin_until_ok(|| Ok(done()), what)
}

fn spin_until_ok(
    mut done: impl FnMut() -> Result<bool, Error>,
    what: &'static str,
) -> Result<(), Error> {
    for _ in 0..SPIN_LIMIT {
        if done()? {
            return Ok(());
        }
    }
    Err(Error::Timeout(what))
}

impl Device for Lan9118 {
    type RxToken<'a> = RxToken<'a>;
    type TxToken<'a> = TxToken<'a>;

    fn receive(&mut self, _now: Instant) -> Option<(RxToken<'_>, TxToken<'_>)> {
        let len = self.read_frame()?;
        // The TX token for the reply (an ACK, an echo) is handed out without
        // checking for FIFO space: the frame is already out of the RX FIFO,
        // and refusing would drop it. `TxToken::consume` waits for space.
        let Lan9118 {
            regs,
            rx,
            tx,
            stats,
            window,
            ..
        } = self;
        Some((
            RxToken {
                frame: &rx.0[FRAME_OFFSET..FRAME_OFFSET + len],
            },
            TxToken {
                regs: *regs,
                buf: tx,
                stats,
                window: *window,
                space_checked: false,
            },
        ))
    }

    fn transmit(&mut self, _now: Instant) -> Option<TxToken<'_>> {
        if !self.tx_ready() {
            return None;
        }
        let Lan9118 {
            regs,
            tx,
            stats,
            window,
            ..
        } = self;
        Some(TxToken {
            regs: *regs,
            buf: tx,
            stats,
            window: *window,
            space_checked: true,
        })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = MTU;
        // No fixed burst size: the driver lowers every TCP window itself, to
        // a share that follows the number of connections (`share_window`).
        // smoltcp's own cap is fixed at boot.
        caps.max_burst_size = None;
        // No checksum offload on the LAN9118: smoltcp's defaults (compute
        // and verify everything in software) are right.
        caps
    }
}

/// Fills `buf` (a whole number of words) from the RX data FIFO.
///
/// Out of line on purpose: inlined into the main loop, the compiler had no
/// register left for the FIFO's address and reloaded it from the stack for
/// every word, four instructions a word instead of two
/// (`../qemu/insn_profile.py` showed it).
#[inline(never)]
fn read_fifo(regs: Block, buf: &mut [u8]) {
    for word in buf.chunks_exact_mut(4) {
        word.copy_from_slice(&regs.read(csr::RX_DATA_FIFO).to_le_bytes());
    }
}

/// The window one of `connections` open TCP connections may advertise: the
/// FIFO's frames shared out, within [`MIN_WINDOW_FRAMES`] and
/// [`MAX_WINDOW_FRAMES`], in whole segments (so slirp always sends full
/// ones).
fn window_for(connections: usize) -> u16 {
    let frames = (RX_FIFO_FRAMES / connections.max(1)).clamp(MIN_WINDOW_FRAMES, MAX_WINDOW_FRAMES);
    (frames * SEGMENT) as u16
}

/// Lowers the window field of an IPv4 TCP segment in `frame` (an Ethernet
/// frame) to `limit`, and updates its checksum to match (RFC 1624,
/// eqn. 3). Any other frame is left alone.
fn clamp_tcp_window(frame: &mut [u8], limit: u16) {
    const IP: usize = 14;
    const ETHERTYPE_IPV4: [u8; 2] = [0x08, 0x00];
    const PROTOCOL_TCP: u8 = 6;
    if frame.len() < IP + 20
        || frame[12..14] != ETHERTYPE_IPV4
        || frame[IP + 9] != PROTOCOL_TCP
        // A later fragment carries no TCP header (smoltcp does not fragment
        // TCP; this is only for safety).
        || u16::from_be_bytes([frame[IP + 6], frame[IP + 7]]) & 0x1FFF != 0
    {
        return;
    }
    let tcp = IP + usize::from(frame[IP] & 0x0F) * 4;
    let Some(header) = frame.get_mut(tcp..tcp + 20) else {
        return;
    };
    let window = u16::from_be_bytes([header[14], header[15]]);
    if window <= limit {
        return;
    }
    header[14..16].copy_from_slice(&limit.to_be_bytes());
    // HC' = ~(~HC + ~m + m'), in one's complement arithmetic.
    let checksum = u16::from_be_bytes([header[16], header[17]]);
    let mut sum = u32::from(!checksum) + u32::from(!window) + u32::from(limit);
    sum = (sum & 0xFFFF) + (sum >> 16);
    sum = (sum & 0xFFFF) + (sum >> 16);
    header[16..18].copy_from_slice(&(!(sum as u16)).to_be_bytes());
}

/// A received frame, already copied out of the FIFO, FCS removed.
pub struct RxToken<'a> {
    frame: &'a [u8],
}

impl phy::RxToken for RxToken<'_> {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        let t = profile::now();
        let r = f(self.frame);
        profile::add(Phase::RxProcess, t);
        r
    }
}

/// Permission to send one frame: smoltcp fills the buffer, then the frame is
/// written to the TX data FIFO.
pub struct TxToken<'a> {
    regs: Block,
    buf: &'a mut FrameBuf,
    stats: &'a mut Stats,
    /// The largest TCP window the frame may advertise.
    window: u16,
    /// `transmit` already saw room for a full frame in the TX FIFO.
    space_checked: bool,
}

impl phy::TxToken for TxToken<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        // smoltcp never asks for more than the MTU it was given.
        let len = len.min(MTU);
        let frame = &mut self.buf.0[FRAME_OFFSET..FRAME_OFFSET + len];
        let t = profile::now();
        let result = f(frame);
        clamp_tcp_window(frame, self.window);
        profile::add(Phase::TxFill, t);

        // A token handed out by `receive` did not check for space. The FIFO
        // drains to the wire on its own, so waiting is bounded; QEMU's
        // model sends each frame as soon as its last word is written, so
        // this never spins there.
        let words = (FRAME_OFFSET + len).div_ceil(4);
        let free = || (self.regs.read(csr::TX_FIFO_INF) & 0xFFFF) as usize >= words * 4 + 8;
        if !self.space_checked && spin_until(free, "TX_FIFO_INF").is_err() {
            self.stats.tx_errors += 1;
            return result;
        }

        let t = profile::now();
        let len32 = len as u32;
        self.regs.write(
            csr::TX_DATA_FIFO,
            bits::TX_CMD_A_FIRST
                | bits::TX_CMD_A_LAST
                | (FRAME_OFFSET as u32) << bits::TX_CMD_A_OFFSET_SHIFT
                | len32,
        );
        // Command B: packet tag (unused, 0) and the total frame length.
        self.regs.write(csr::TX_DATA_FIFO, len32);
        // The frame's words, from the start of the buffer: the chip skips
        // the first `FRAME_OFFSET` bytes.
        for chunk in self.buf.0[..words * 4].chunks_exact(4) {
            let word = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
            self.regs.write(csr::TX_DATA_FIFO, word);
        }
        profile::add(Phase::TxFifo, t);
        self.stats.tx_frames += 1;
        result
    }
}
