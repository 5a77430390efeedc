#!/usr/bin/env bash
# Prints what the release firmware takes of the LM3S6965's 256 KiB of flash
# and 64 KiB of RAM, and what static RAM leaves for the stack.
#
#   ./size.sh            # builds first (cargo build --release)
#   ./size.sh ELF        # any firmware ELF
#
# Uses llvm-size if present (Debian package llvm), else binutils' size; both
# read ARM ELF files. The link itself already fails when the stack would get
# less than _min_stack_size (memory.x).
set -euo pipefail
cd "$(dirname "$0")"

elf=${1:-}
if [[ -z $elf ]]; then
    cargo build --release --quiet
    elf=target/thumbv7m-none-eabi/release/smoltalk-lm3s6965evb
fi
tool=$(command -v llvm-size || command -v size) || {
    echo "size.sh: neither llvm-size nor size found (apt-get install llvm)" >&2
    exit 127
}

"$tool" -A "$elf" | awk -v flash_total=$((256 * 1024)) -v ram_total=$((64 * 1024)) '
    $1 == ".vector_table" || $1 == ".text" || $1 == ".rodata" { text += $2 }
    $1 == ".data" { data = $2 }
    $1 == ".bss" || $1 == ".uninit" { bss += $2 }
    END {
        flash = text + data
        ram = data + bss
        printf "text %d  data %d  bss %d  (bytes)\n", text, data, bss
        printf "flash %6d of %6d bytes (%.1f KiB; goal <= 64 KiB: %s)\n",
            flash, flash_total, flash / 1024, flash <= 65536 ? "met" : "not met"
        printf "RAM   %6d of %6d bytes static, stack gets %d (%.1f KiB)\n",
            ram, ram_total, ram_total - ram, (ram_total - ram) / 1024
    }'
