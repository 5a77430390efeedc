#!/usr/bin/env bash
# Cargo runner for the mps2-an385 board (Cortex-M3, LAN9118 NIC): boots the
# firmware in QEMU on user networking and prints its defmt log decoded.
#   cargo run --release                      # what you normally type
#   ./run-qemu.sh path/to/elf [qemu args...] # what cargo runs
# Ports, environment (SMOLTALK_PORT_OFFSET, SMOLTALK_HOSTFWD, SMOLTALK_PCAP,
# SMOLTALK_LOG, QEMU) and exit status: ../qemu/run-qemu.sh, shared by the
# emulated boards.
exec "$(dirname "${BASH_SOURCE[0]}")/../qemu/run-qemu.sh" mps2-an385 lan9118 "$@"
