#!/bin/sh
# Builds host-sim in release mode and runs `host-sim bench`: TCP echo through
# smoltalk on a TAP device against the Linux kernel over a veth pair, both in
# private network namespaces that the benchmark creates and deletes itself.
# Needs root, iproute2 (`ip`) and util-linux (`taskset`).
#
#   scripts/bench.sh                  # 256 MiB bulk, 20000 RTTs, 32 conns x 200,
#                                     # serve on a TAP link of MTU 65521
#   scripts/bench.sh --mtu 1500       # any `host-sim bench` option
#
# The table goes to stdout (Markdown), progress to stderr. Run it on an idle
# machine: other work on CPU 0 lowers every figure (the bench warns).
set -eu
cd "$(dirname "$0")/.."
cargo build --release -p host-sim
exe="${CARGO_TARGET_DIR:-target}/release/host-sim"
if [ "$(id -u)" -ne 0 ]; then
    exec sudo "$exe" bench "$@"
fi
exec "$exe" bench "$@"
