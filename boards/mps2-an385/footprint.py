#!/usr/bin/env python3
"""Prints the firmware's footprint: text, data and bss, as `size` does.

    ./footprint.py                       # the release ELF of this board
    ./footprint.py path/to/elf --json    # one JSON object, for scripts

text = allocated read-only sections (code, constants, vector table);
data = initialised RAM (stored in flash too, copied at boot);
bss  = zeroed RAM. Flash = text + data; static RAM = data + bss (the stack
comes on top, from the rest of RAM).

Reads the ELF section headers directly, so it needs nothing but Python (no
arm-none-eabi-size, no cargo-binutils).
"""

import json
import struct
import sys
from pathlib import Path

DEFAULT_ELF = Path(__file__).resolve().parent / "target/thumbv7m-none-eabi/release/smoltalk-mps2-an385"

SHF_WRITE, SHF_ALLOC = 0x1, 0x2
SHT_NOBITS = 8


def sections(path):
    raw = Path(path).read_bytes()
    if raw[:4] != b"\x7fELF" or raw[4] != 1:
        raise SystemExit(f"{path}: not a 32-bit ELF file")
    endian = "<" if raw[5] == 1 else ">"
    shoff, = struct.unpack_from(endian + "I", raw, 0x20)
    shentsize, shnum, shstrndx = struct.unpack_from(endian + "HHH", raw, 0x2E)
    headers = [struct.unpack_from(endian + "IIIIIIIIII", raw, shoff + i * shentsize) for i in range(shnum)]
    names_at = headers[shstrndx][4]
    for name, kind, flags, _addr, _off, size, *_ in headers:
        end = raw.index(b"\0", names_at + name)
        yield raw[names_at + name:end].decode(), kind, flags, size


def footprint(path):
    text = data = bss = 0
    for _name, kind, flags, size in sections(path):
        if not flags & SHF_ALLOC:
            continue
        if kind == SHT_NOBITS:
            bss += size
        elif flags & SHF_WRITE:
            data += size
        else:
            text += size
    return {"text": text, "data": data, "bss": bss, "flash": text + data, "ram": data + bss}


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    elf = Path(args[0]) if args else DEFAULT_ELF
    if not elf.exists():
        raise SystemExit(f"{elf} not found: build it first (cargo build --release)")
    f = footprint(elf)
    if "--json" in sys.argv:
        print(json.dumps({"elf": str(elf), **f}))
    else:
        print(f"{'text':>8} {'data':>8} {'bss':>8}   {'flash':>8} {'ram':>8}  filename")
        print(f"{f['text']:>8} {f['data']:>8} {f['bss']:>8}   {f['flash']:>8} {f['ram']:>8}  {elf.name}")


if __name__ == "__main__":
    main()
