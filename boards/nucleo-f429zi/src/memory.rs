//! The node's memory: every socket buffer and session slot, sized from
//! [`CONFIG`] at compile time.
//!
//! The core's `StaticMemory` is const-initialised to zeroed buffers and
//! uninitialised tables (filled in place when the node takes them), so this
//! static lives in `.bss`: it costs RAM but no flash, and it is never built
//! on the stack.

use smoltalk::Memory;
use static_cell::ConstStaticCell;

use crate::CONFIG;

type NodeMemory = smoltalk::static_memory!(CONFIG);

static MEMORY: ConstStaticCell<NodeMemory> = ConstStaticCell::new(NodeMemory::new());

/// Lends the memory to the node for the rest of the program. Panics if
/// called twice.
pub fn take() -> Memory<'static> {
    MEMORY.take().memory()
}
