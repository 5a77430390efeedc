//! How deep the stack has ever grown.
//!
//! cortex-m-rt (feature `paint-stack`) fills the whole stack region with
//! `STACK_PAINT_VALUE` before `main`. Words the stack has touched no longer
//! hold it, so the lowest changed word is the high-water mark. This is what
//! the 16 KiB floor in memory.x is checked against.

use core::ptr;

use cortex_m_rt::STACK_PAINT_VALUE;

unsafe extern "C" {
    /// Top of the stack (end of RAM), from cortex-m-rt's link.x.
    static _stack_start: u32;
    /// Bottom of the stack region: the first byte after static RAM.
    static _stack_end: u32;
}

/// Bytes between the end of static RAM and the top of RAM.
pub fn size() -> usize {
    (&raw const _stack_start) as usize - (&raw const _stack_end) as usize
}

/// Deepest stack use since reset, in bytes. Scans the painted region from
/// the bottom, so it costs about one load per unused word: call it rarely.
pub fn high_water() -> usize {
    let bottom = &raw const _stack_end;
    let words = size() / 4;
    let untouched = (0..words)
        // SAFETY: every address in `bottom..bottom + words` is in RAM and
        // 4-byte aligned; words below the stack pointer belong to no Rust
        // object, and a volatile read of them has no effect.
        .take_while(|&i| unsafe { ptr::read_volatile(bottom.add(i)) } == STACK_PAINT_VALUE)
        .count();
    (words - untouched) * 4
}
