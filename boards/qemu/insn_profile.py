#!/usr/bin/env python3
"""Where an emulated board's firmware spends its instructions during a TCP echo.

    python3 ../qemu/insn_profile.py --board-dir .                # 16 MiB, plain release build
    python3 ../qemu/insn_profile.py --board-dir . --no-build --mib 4 --top 25

Boots the board's release ELF as `bench_board.py` does, with QEMU's TCG
plugin `insn-count/insn_count.c` loaded (built here with `cc`), echoes
--mib MiB through TCP echo on port 7, stops QEMU and counts every guest
instruction that ran, from boot to the end (boot and the idle loop are a
fraction of a percent of a 16 MiB echo). Each instruction is charged to the
function it came from, inlined ones included (`addr2line -i` on the ELF's
debug info), and the report gives instructions per MiB echoed:

  - by kind of work, from the innermost function of each instruction
    outwards, the first that matches deciding: copies (`memcpy`),
    checksums, zeroing (`memset`), LAN9118 register accesses (the FIFO
    loops), smoltcp's receive path, its send path (socket walks, segment
    building), the rest of smoltcp, the core (services, the node), the board
    (main loop, driver), and the rest (runtime);
  - by innermost function, the --top most expensive.

This counts instructions, not time: under QEMU a register access or a
store is far dearer than an addition, and the FIFO accesses themselves
(the bulk of the time: `bench --profile`) are one instruction each. It
shows what the firmware executes, which is what its changes can reduce.
"""

import argparse
import collections
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import board_test as bt  # noqa: E402 - the shared harness: Board, boot, sockets

PLUGIN_SRC = Path(__file__).resolve().parent / "insn-count" / "insn_count.c"

# (kind, test on one function name of an inlining chain). Checked from the
# innermost function outwards; the first function any rule matches decides.
KINDS = [
    ("copies (memcpy)", lambda f: "memcpy" in f),
    ("checksums", lambda f: "checksum" in f),
    ("zeroing (memset)", lambda f: "memset" in f or "memclr" in f),
    ("LAN9118 register accesses", lambda f: "::mmio::" in f),
    ("smoltcp", lambda f: f.startswith("smoltcp::") or f.startswith("<smoltcp::")),
    ("core (services, node)", lambda f: f.startswith("smoltalk::") or f.startswith("<smoltalk::")),
    ("board (main loop, driver)", lambda f: f.startswith("smoltalk_") or f.startswith("<smoltalk_")),
]
OTHER = "other (runtime, compiler builtins)"


def build_plugin(out_dir):
    cc = shutil.which("cc") or shutil.which("gcc")
    bt.check(cc is not None, "no C compiler (apt-get install gcc) to build the QEMU plugin")
    so = out_dir / "insn_count.so"
    if not so.exists() or so.stat().st_mtime < PLUGIN_SRC.stat().st_mtime:
        subprocess.run([cc, "-O2", "-shared", "-fPIC", "-o", str(so), str(PLUGIN_SRC)], check=True)
    return so


def echo(board, mib):
    payload = os.urandom(bt.MIB) * mib
    s, first, _ = bt.accepted(board, bt.ECHO, payload[:1], until=lambda d: len(d) >= 1)
    with s:
        t = time.perf_counter()
        got = bt.echo_stream(s, payload[1:], timeout=120)
        dt = time.perf_counter() - t
    bt.check(first + got == payload, "the echo came back different")
    return dt


def read_counts(path):
    """{address: times run} from the plugin's lines (count, addresses...)."""
    runs = collections.Counter()
    for line in path.read_text().splitlines():
        count, *addrs = line.split()
        for a in addrs:
            runs[int(a, 16)] += int(count)
    return runs


def inline_chains(elf, addrs):
    """{address: [innermost function, ..., outermost]} from addr2line."""
    tool = shutil.which("addr2line")
    bt.check(tool is not None, "no addr2line (apt-get install binutils)")
    text = "\n".join(f"{a:#x}" for a in addrs) + "\n"
    out = subprocess.run([tool, "-a", "-i", "-f", "-C", "-e", str(elf)], input=text,
                         capture_output=True, text=True, check=True).stdout
    chains, current = {}, None
    lines = out.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("0x"):
            current = int(line, 16)
            chains[current] = []
            i += 1
            continue
        # A function name, then its file:line.
        if current is not None:
            chains[current].append(line)
        i += 2
    return chains


def kind_of(chain):
    for name in chain:
        for kind, test in KINDS:
            if test(name):
                return kind
    return OTHER


def report(runs, chains, mib, top, rate):
    total = sum(runs.values())
    by_kind, by_func = collections.Counter(), collections.Counter()
    unknown = 0
    for addr, n in runs.items():
        chain = chains.get(addr) or ["??"]
        if chain[0] == "??":
            unknown += n
        by_kind[kind_of(chain)] += n
        by_func[chain[0]] += n
    per = 1e6 * mib
    lines = [f"Guest instructions during a {mib} MiB TCP echo ({rate:.1f} MiB/s with the plugin loaded): "
             f"{total / per:.1f} M per MiB echoed, boot included.", "",
             "| kind of work | M instructions per MiB | share |", "|---|---|---|"]
    for kind, n in sorted(by_kind.items(), key=lambda kv: -kv[1]):
        lines.append(f"| {kind} | {n / per:.2f} | {100 * n / total:.1f} % |")
    lines += ["", f"| innermost function (top {top}) | M instructions per MiB | share |", "|---|---|---|"]
    for func, n in by_func.most_common(top):
        name = func if len(func) <= 100 else func[:97] + "..."
        lines.append(f"| `{name}` | {n / per:.2f} | {100 * n / total:.1f} % |")
    return total, unknown, "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--board-dir", type=Path, required=True, help="the board (its run-qemu.sh, Cargo.toml)")
    ap.add_argument("--no-build", action="store_true", help="use the release ELF as built")
    ap.add_argument("--mib", type=int, default=16, help="MiB to echo (default 16)")
    ap.add_argument("--top", type=int, default=15, help="functions to list (default 15)")
    args = ap.parse_args()
    board_dir = args.board_dir.resolve()
    if not args.no_build:
        subprocess.run(["cargo", "build", "--release"], cwd=board_dir, check=True)
    elf = bt.package_elf(board_dir)
    bt.check(elf.exists(), f"no firmware at {elf} (build it first)")
    target = board_dir / "target"
    plugin = build_plugin(target)
    board = None
    with tempfile.TemporaryDirectory() as tmp:
        counts = Path(tmp) / "counts.txt"
        os.environ["INSN_COUNT_OUT"] = str(counts)
        try:
            board = bt.boot(board_dir, elf, target / f"insn-profile-{os.getpid()}.log", None,
                            qemu_args=["-plugin", str(plugin)])
            rate = args.mib / echo(board, args.mib)
        finally:
            if board:
                board.stop()
        bt.check(counts.exists(), "QEMU wrote no counts (did it load the plugin?)")
        runs = read_counts(counts)
    chains = inline_chains(elf, sorted(runs))
    total, unknown, text = report(runs, chains, args.mib, args.top, rate)
    print(text)
    # A sanity check, so that a broken symbolisation cannot pass unnoticed.
    bt.check(total > 0, "no instructions counted")
    bt.check(unknown < total // 10, f"{100 * unknown // total} % of the instructions have no function")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (bt.TestFailure, subprocess.CalledProcessError, OSError, socket.timeout) as e:
        print(f"insn_profile: FAILED: {e}", file=sys.stderr)
        sys.exit(1)
