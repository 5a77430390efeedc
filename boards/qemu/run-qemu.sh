#!/usr/bin/env bash
# The Cargo runner of the emulated boards, shared: boots a firmware ELF in
# QEMU with the board's NIC on user networking (slirp) and prints its defmt
# log decoded. Each board's run-qemu.sh names its machine and NIC model and
# execs this script:
#
#   ../qemu/run-qemu.sh MACHINE NIC_MODEL firmware.elf [extra qemu args...]
#   ../qemu/run-qemu.sh mps2-an385 lan9118 target/.../smoltalk-mps2-an385
#
# Host ports (all on 127.0.0.1 only) forward to the firmware at 10.0.2.15:
#   TCP 8007->7 (echo)  8898 (hello/echo)  8081 (chat)  8083 (login)
#   UDP 8007->7 (echo)  9000 (hello/echo)  8086 (hotline)
# Nothing else is reachable: slirp forwards only these, and the firmware has
# no default route.
#
# Environment:
#   SMOLTALK_PORT_OFFSET=N   add N to every host port (tests run side by side)
#   SMOLTALK_HOSTFWD=LIST    replace the forwards: comma-separated
#                            proto:hostport-guestport, e.g. "tcp:2007-7,udp:2007-7"
#   SMOLTALK_PCAP=FILE       capture every frame to FILE (QEMU filter-dump)
#   SMOLTALK_LOG=decode|raw  decode defmt with defmt-print (default), or
#                            write the raw defmt stream to stdout
#   QEMU=...                 the QEMU binary (default qemu-system-arm)
#
# Exit status: QEMU's. The firmware ends QEMU through semihosting with status
# 1 on a panic or fault. The decoder is waited for, so the last log lines (a
# panic's message) are out before this script returns. QEMU and the decoder
# stay in the caller's process group: a harness that starts this script in a
# new session stops both through that group. Stop it with Ctrl-C.
set -euo pipefail

if [[ $# -lt 3 ]]; then
    echo "usage: <board>/run-qemu.sh <firmware.elf> [extra qemu args...]" >&2
    echo "   or: $0 <machine> <nic-model> <firmware.elf> [extra qemu args...]" >&2
    exit 2
fi
machine=$1 nic=$2 elf=$3
shift 3

qemu=${QEMU:-qemu-system-arm}
if ! command -v "$qemu" >/dev/null; then
    echo "run-qemu.sh: $qemu not found (Debian/Ubuntu: apt-get install qemu-system-arm)" >&2
    exit 127
fi

offset=${SMOLTALK_PORT_OFFSET:-0}
default_fwd="tcp:8007-7,udp:8007-7,tcp:8898-8898,udp:9000-9000,tcp:8081-8081,tcp:8083-8083,udp:8086-8086"
fwd_list=${SMOLTALK_HOSTFWD:-$default_fwd}

# slirp: guest 10.0.2.15/24, host side 10.0.2.2. restrict=off, or slirp never
# delivers the firmware's UDP replies to the host; the firmware has no default
# route, so it still talks only to 10.0.2.0/24.
netdev="user,id=n0,net=10.0.2.0/24,restrict=off"
IFS=',' read -ra fwds <<<"$fwd_list"
for f in "${fwds[@]}"; do
    if [[ ! $f =~ ^(tcp|udp):([0-9]+)-([0-9]+)$ ]]; then
        echo "run-qemu.sh: bad forward '$f' (want proto:hostport-guestport)" >&2
        exit 2
    fi
    proto=${BASH_REMATCH[1]} host=$((BASH_REMATCH[2] + offset)) guest=${BASH_REMATCH[3]}
    netdev+=",hostfwd=$proto:127.0.0.1:$host-10.0.2.15:$guest"
done

args=(
    -M "$machine"
    -display none -monitor none -serial none
    # defmt frames come out of the firmware's semihosting writes on stdout;
    # without target=native the first write hangs silently.
    -semihosting-config enable=on,target=native
    -kernel "$elf"
    -netdev "$netdev"
    -net "nic,netdev=n0,model=$nic"
)
if [[ -n ${SMOLTALK_PCAP:-} ]]; then
    args+=(-object "filter-dump,id=f0,netdev=n0,file=$SMOLTALK_PCAP")
fi

case ${SMOLTALK_LOG:-decode} in
raw)
    exec "$qemu" "${args[@]}" "$@"
    ;;
decode)
    if ! command -v defmt-print >/dev/null; then
        echo "run-qemu.sh: defmt-print not found: cargo install defmt-print (or SMOLTALK_LOG=raw)" >&2
        exit 127
    fi
    # pipefail: the pipeline's status is QEMU's when QEMU fails.
    "$qemu" "${args[@]}" "$@" | defmt-print -e "$elf"
    ;;
*)
    echo "run-qemu.sh: SMOLTALK_LOG must be decode or raw" >&2
    exit 2
    ;;
esac
