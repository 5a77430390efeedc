//! A register block reached by volatile 32-bit loads and stores.
//!
//! No peripheral access crate exists for the MPS2 FPGA images, and the board
//! uses only a handful of registers, so this ten-line wrapper replaces one.
//! It is the only place in the crate that dereferences a raw pointer: the
//! drivers name registers by offset ([`Reg`]) and call [`Block::read`] and
//! [`Block::write`], which are safe because [`Block::new`] is not.

use core::ptr;

/// The byte offset of a 32-bit register inside a [`Block`]. A named constant
/// per register (`const INT_STS: Reg = Reg(0x58)`) keeps the drivers readable
/// next to the datasheet's register map.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Reg(pub usize);

/// A memory-mapped register block at a fixed base address.
///
/// `Copy`, so that an interrupt handler can hold its own copy for the one
/// register it touches (see `lan9118::InterruptAck`).
#[derive(Clone, Copy)]
pub struct Block {
    base: usize,
}

impl Block {
    /// A register block at `base`.
    ///
    /// # Safety
    ///
    /// `base` must be the address of a device whose registers are valid for
    /// 32-bit volatile access at every offset the caller will pass, for the
    /// rest of the program. Reads of FIFO registers have side effects, so the
    /// caller must also make sure that no two owners pop the same FIFO.
    pub const unsafe fn new(base: usize) -> Self {
        Block { base }
    }

    /// Volatile read of the register at `reg`.
    #[inline(always)]
    pub fn read(&self, reg: Reg) -> u32 {
        // SAFETY: `Block::new`'s contract: `base + reg` is a device register.
        unsafe { ptr::read_volatile((self.base + reg.0) as *const u32) }
    }

    /// Volatile write of `value` to the register at `reg`.
    #[inline(always)]
    pub fn write(&self, reg: Reg, value: u32) {
        // SAFETY: as for `read`.
        unsafe { ptr::write_volatile((self.base + reg.0) as *mut u32, value) }
    }
}
