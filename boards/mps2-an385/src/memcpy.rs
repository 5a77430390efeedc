//! `memcpy` for the Cortex-M3, 32 bytes per load-multiple/store-multiple.
//!
//! Every byte a TCP echo moves is copied four times in RAM: from the
//! driver's frame into the socket's receive buffer, from there to the
//! echo's chunk and on into the send buffer, and from the send buffer into
//! the next frame. The `memcpy` that Rust's `compiler_builtins` provides
//! moves one word per load and store, and shifts and merges words when
//! source and destination are not aligned alike (in a TCP stream, the
//! common case); here every step moves eight words with one `LDMIA` (or
//! eight `LDR`s) and one `STMIA`. Copies were half of all the instructions
//! the firmware executed while echoing, 10.25 million per MiB; now 1.31
//! (`../qemu/insn_profile.py`). `./bench --profile` times a 1 MiB copy at
//! boot.
//!
//! Strong `memcpy` and `__aeabi_memcpy*` symbols take precedence over
//! `compiler_builtins`' weak ones at link time; every `copy_from_slice` in
//! the firmware, smoltcp's included, ends up here. It is written in
//! assembly so that the compiler cannot turn its loops back into calls to
//! `memcpy`.
//!
//! A source that is not word-aligned after the destination is (a TCP
//! stream's bytes sit at any offset in the socket buffers, so this is as
//! common as the aligned case) is read with eight `LDR`s per step, which
//! the Cortex-M3 allows on any address (`CCR.UNALIGN_TRP` is clear after
//! reset); only `LDM`/`STM` need aligned addresses, and they get them.

core::arch::global_asm!(
    ".section .text.memcpy,\"ax\",%progbits",
    ".syntax unified",
    ".global memcpy",
    ".global __aeabi_memcpy",
    ".global __aeabi_memcpy4",
    ".global __aeabi_memcpy8",
    ".type memcpy,%function",
    ".type __aeabi_memcpy,%function",
    ".type __aeabi_memcpy4,%function",
    ".type __aeabi_memcpy8,%function",
    // r0 = destination (returned unchanged), r1 = source, r2 = length;
    // r3 is the destination cursor. The AEABI names (which is what the
    // compiler calls on this target) share the code: the `4` and `8`
    // variants only promise aligned arguments, which it checks anyway.
    ".thumb_func",
    "__aeabi_memcpy:",
    ".thumb_func",
    "__aeabi_memcpy4:",
    ".thumb_func",
    "__aeabi_memcpy8:",
    ".thumb_func",
    "memcpy:",
    "    push    {{r4-r10, lr}}",
    "    mov     r3, r0",
    "    cmp     r2, #16",
    "    blo     5f",
    // Byte by byte until the destination is word-aligned (at most three).
    "1:  tst     r3, #3",
    "    beq     2f",
    "    ldrb    r4, [r1], #1",
    "    strb    r4, [r3], #1",
    "    subs    r2, r2, #1",
    "    b       1b",
    // 32 bytes per step. A word-aligned source is read with one LDMIA;
    // any other with eight LDRs (an LDM needs an aligned address).
    "2:  subs    r2, r2, #32",
    "    blo     4f",
    "    tst     r1, #3",
    "    bne     3f",
    "21: ldmia   r1!, {{r4-r10, r12}}",
    "    stmia   r3!, {{r4-r10, r12}}",
    "    subs    r2, r2, #32",
    "    bhs     21b",
    "    b       4f",
    "3:  ldr     r4, [r1]",
    "    ldr     r5, [r1, #4]",
    "    ldr     r6, [r1, #8]",
    "    ldr     r7, [r1, #12]",
    "    ldr     r8, [r1, #16]",
    "    ldr     r9, [r1, #20]",
    "    ldr     r10, [r1, #24]",
    "    ldr     r12, [r1, #28]",
    "    adds    r1, r1, #32",
    "    stmia   r3!, {{r4-r10, r12}}",
    "    subs    r2, r2, #32",
    "    bhs     3b",
    // Whole words left (any source alignment).
    "4:  adds    r2, r2, #32",
    "    subs    r2, r2, #4",
    "    blo     42f",
    "41: ldr     r4, [r1], #4",
    "    str     r4, [r3], #4",
    "    subs    r2, r2, #4",
    "    bhs     41b",
    "42: adds    r2, r2, #4",
    // The last bytes (and short copies).
    "5:  cbz     r2, 6f",
    "51: ldrb    r4, [r1], #1",
    "    strb    r4, [r3], #1",
    "    subs    r2, r2, #1",
    "    bne     51b",
    "6:  pop     {{r4-r10, pc}}",
    ".size memcpy, . - memcpy",
    ".size __aeabi_memcpy, . - __aeabi_memcpy",
    ".size __aeabi_memcpy4, . - __aeabi_memcpy4",
    ".size __aeabi_memcpy8, . - __aeabi_memcpy8",
);

/// Checks [`memcpy`](self) against a byte-by-byte copy for every length up
/// to 100 bytes and every alignment of source and destination: the cases
/// that take each of its paths (bytes, unaligned words, 32-byte blocks,
/// tails). Run at boot, so every test run of the firmware covers it.
/// Returns the failing `(length, destination offset, source offset)`.
pub fn self_test() -> Result<u32, (usize, usize, usize)> {
    let mut src = [0u8; 112];
    for (i, b) in src.iter_mut().enumerate() {
        *b = (i as u8).wrapping_mul(37).wrapping_add(11);
    }
    let mut cases = 0;
    for len in 0..=100 {
        for d in 0..4 {
            for s in 0..4 {
                // A guard byte either side shows a copy that strays.
                let mut dst = [0xA5u8; 112];
                let len = core::hint::black_box(len);
                // SAFETY: both ranges are inside their arrays (4 + 100 +
                // guard < 112), and the arrays are distinct.
                unsafe {
                    core::ptr::copy_nonoverlapping(
                        src.as_ptr().add(s),
                        dst.as_mut_ptr().add(d + 1),
                        len,
                    );
                }
                let copied = dst[d + 1..d + 1 + len] == src[s..s + len];
                let guards = dst[d] == 0xA5 && dst[d + 1 + len] == 0xA5;
                if !copied || !guards {
                    return Err((len, d, s));
                }
                cases += 1;
            }
        }
    }
    Ok(cases)
}
