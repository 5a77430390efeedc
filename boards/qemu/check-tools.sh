#!/usr/bin/env bash
# What an emulated board's tests/run needs before it builds and boots:
# says what is missing and how to install it, and exits 1 if anything is.
# (The repository's scripts/setup installs all of it.)
#
#   ../qemu/check-tools.sh TARGET    # e.g. thumbv7m-none-eabi
set -uo pipefail
target=${1:?usage: check-tools.sh <rust target>}

missing=()
command -v qemu-system-arm >/dev/null || missing+=("qemu-system-arm (apt-get install qemu-system-arm)")
command -v defmt-print >/dev/null || missing+=("defmt-print (cargo install --locked defmt-print)")
python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null ||
    missing+=("python3, 3.11 or newer (apt-get install python3)")
command -v cc >/dev/null || missing+=("a C compiler, for the QEMU plugin of insn_profile.py (apt-get install gcc)")
command -v addr2line >/dev/null || missing+=("addr2line (apt-get install binutils)")
rustup target list --installed 2>/dev/null | grep -qx "$target" ||
    missing+=("the $target target (rustup target add $target)")
if [[ ${#missing[@]} -gt 0 ]]; then
    printf 'tests/run: missing %s\n' "${missing[@]}" >&2
    exit 1
fi
