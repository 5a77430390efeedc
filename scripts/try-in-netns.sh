#!/bin/sh
# Runs `host-sim serve --tap tap0` inside a private network namespace and opens
# a shell in the same namespace, where the device answers at 192.168.69.1 and
# nothing touches the host's own network. Leaving the shell stops the server
# and deletes the namespace. Needs root and iproute2.
#
#   scripts/try-in-netns.sh            # then, in the shell:
#     host-sim chat
#     printf '张三\n123\n' | host-sim login --tutorial
#     TUTORIAL_HOST=192.168.69.1 python3 tests/tutorial_clients/chat_client.py
#
# Extra arguments go to `serve` (e.g. --operator is not useful here: its
# console would share the terminal with the shell).
set -eu
cd "$(dirname "$0")/.."
cargo build -p host-sim
bin="${CARGO_TARGET_DIR:-$(pwd)/target}/debug"
ns="smt-try-$$"
serve_pid=""
cleanup() {
    if [ -n "$serve_pid" ]; then
        kill -INT "$serve_pid" 2>/dev/null || true
        wait "$serve_pid" 2>/dev/null || true
    fi
    ip netns delete "$ns" 2>/dev/null || true
    rm -f "/tmp/$ns.log"
}
trap cleanup EXIT INT TERM
ip netns add "$ns"
ip -n "$ns" link set lo up
ip netns exec "$ns" "$bin/host-sim" serve --tap tap0 "$@" >"/tmp/$ns.log" 2>&1 &
serve_pid=$!
# Up once serve has created tap0 and given the host side its address (5 s max).
i=0
until ip -n "$ns" addr show dev tap0 2>/dev/null | grep -q 192.168.69.100; do
    i=$((i + 1))
    if [ "$i" -gt 50 ] || ! kill -0 "$serve_pid" 2>/dev/null; then
        echo "serve did not come up; its log:" >&2
        cat "/tmp/$ns.log" >&2
        exit 1
    fi
    sleep 0.1
done
echo "serve runs in namespace $ns (log: /tmp/$ns.log); the device is 192.168.69.1."
echo "host-sim is on PATH in this shell. Exit the shell to stop everything."
PATH="$bin:$PATH" ip netns exec "$ns" "${SHELL:-/bin/sh}" || true
