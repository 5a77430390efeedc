#!/usr/bin/env python3
"""Checks that a firmware ELF fits the part described by this board's memory.x.

    ./size.py ELF            # summary; exit 1 if it does not fit
    ./size.py ELF --json     # the same figures as one JSON object

text = allocated read-only sections (vector table, code, constants, boot
loader); data = initialised RAM (stored in flash too, copied at boot);
bss = zeroed or uninitialised RAM. It fits when text + data <= flash and
data + bss <= RAM, with RAM the LENGTH of memory.x's RAM region and flash
the LENGTHs of all its other regions (FLASH, and BOOT2 on the RP2040; the link
itself already refuses a build that leaves the stack less than
_min_stack_size).

Reads the ELF section headers itself: needs nothing but Python 3.
"""

import json
import re
import struct
import sys
from pathlib import Path

SHF_WRITE, SHF_ALLOC = 0x1, 0x2
SHT_NOBITS = 8
MEMORY_X = Path(__file__).resolve().parent / "memory.x"


def sections(path):
    """(name, type, flags, size) of every section of a 32-bit little-endian ELF."""
    raw = Path(path).read_bytes()
    if raw[:4] != b"\x7fELF" or raw[4] != 1 or raw[5] != 1:
        raise SystemExit(f"{path}: not a 32-bit little-endian ELF file")
    shoff, = struct.unpack_from("<I", raw, 0x20)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", raw, 0x2E)
    headers = [struct.unpack_from("<IIIIIIIIII", raw, shoff + i * shentsize) for i in range(shnum)]
    strtab = headers[shstrndx][4]
    for name, kind, flags, _addr, _off, size, *_ in headers:
        end = raw.index(b"\0", strtab + name)
        yield raw[strtab + name:end].decode(), kind, flags, size


def footprint(path):
    text = data = bss = 0
    for _name, kind, flags, size in sections(path):
        if not flags & SHF_ALLOC:
            continue  # debug info, defmt strings: never loaded
        if kind == SHT_NOBITS:
            bss += size
        elif flags & SHF_WRITE:
            data += size
        else:
            text += size
    return text, data, bss


def region_lengths(memory_x):
    """{"FLASH": bytes, "RAM": bytes, ...} from the MEMORY block of memory.x."""
    src = re.sub(r"/\*.*?\*/", "", Path(memory_x).read_text(), flags=re.S)
    lengths = {}
    for name, expr in re.findall(r"(\w+)\s*:\s*ORIGIN\s*=\s*[^,]+,\s*LENGTH\s*=\s*([^\n]+)", src):
        expr = re.sub(r"(\d+)\s*K\b", r"(\1*1024)", expr)
        expr = re.sub(r"(\d+)\s*M\b", r"(\1*1024*1024)", expr)
        if not re.fullmatch(r"[0-9a-fA-Fx()*+\- ]+", expr.strip()):
            raise SystemExit(f"{memory_x}: cannot read LENGTH of {name}: {expr!r}")
        lengths[name] = eval(expr)  # digits and arithmetic only, checked above
    return lengths


def main():
    args = [a for a in sys.argv[1:] if a != "--json"]
    if len(args) != 1:
        raise SystemExit(__doc__)
    text, data, bss = footprint(args[0])
    regions = region_lengths(MEMORY_X)
    ram_total = regions.pop("RAM")
    flash_total = sum(regions.values())
    flash, ram = text + data, data + bss
    fits = flash <= flash_total and ram <= ram_total
    if "--json" in sys.argv:
        print(json.dumps({"text": text, "data": data, "bss": bss, "flash": flash,
                          "flash_total": flash_total, "ram": ram, "ram_total": ram_total,
                          "fits": fits}))
    else:
        print(f"text {text}  data {data}  bss {bss}  (bytes)")
        print(f"flash {flash:7d} of {flash_total:7d} bytes ({flash / 1024:.1f} KiB, {100 * flash / flash_total:.1f}%)")
        print(f"RAM   {ram:7d} of {ram_total:7d} bytes static ({ram / 1024:.1f} KiB); "
              f"the stack gets the other {(ram_total - ram) / 1024:.1f} KiB")
        print("fits" if fits else "DOES NOT FIT")
    sys.exit(0 if fits else 1)


if __name__ == "__main__":
    main()
