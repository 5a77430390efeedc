#!/usr/bin/env python3
"""Compares firmware builds on the TCP echo, booting each in turn.

    python3 ../qemu/compare_echo.py --board-dir . OLD.elf NEW.elf            # 6 rounds, 32 MiB
    python3 ../qemu/compare_echo.py --board-dir . A.elf B.elf --rounds 2 --mib 4

On a shared host the figures of one `bench` run move by 10-15 % with the
load, which hides a few percent of difference between two builds. Here the
builds take turns: each round boots every ELF (through the board's
`run-qemu.sh`, as `bench_board.py` does) and echoes --mib MiB twice on port
7, so a slow spell of the host hits them alike. The stream starts one byte
in, as the benchmark's does (`board_test.tcp_echo_mib`), so the socket
buffers and the frames are not word-aligned with each other.

Per build it prints the median echo rate and the median CPU time QEMU's
busiest thread (the emulated core) spent per MiB: while streaming that
thread is never idle, and its CPU time moves far less than the wall clock.
"""

import argparse
import os
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_board as bb  # noqa: E402 - qemu_pid
import board_test as bt  # noqa: E402 - the shared harness: Board, boot, sockets

CLK_TCK = os.sysconf("SC_CLK_TCK")


def busiest_thread_seconds(pid):
    """CPU seconds of each thread of process `pid`, by thread ID."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        fields = Path(f"/proc/{pid}/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
        out[tid] = (int(fields[11]) + int(fields[12])) / CLK_TCK
    return out


def echo_once(board, qemu_pid, mib, seed):
    """One `mib` MiB echo; returns (MiB/s, CPU ms per MiB of the busiest
    QEMU thread)."""
    payload = random.Random(seed).randbytes(mib * bt.MIB)
    s, first, _ = bt.accepted(board, bt.ECHO, payload[:1], until=lambda d: len(d) >= 1)
    with s:
        before = busiest_thread_seconds(qemu_pid)
        t = time.perf_counter()
        got = bt.echo_stream(s, payload[1:], 120)
        dt = time.perf_counter() - t
        after = busiest_thread_seconds(qemu_pid)
    bt.check(first + got == payload, "the echo came back different")
    cpu = max(after[k] - before.get(k, 0.0) for k in after)
    return mib / dt, 1000 * cpu / mib


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--board-dir", type=Path, required=True, help="the board (its run-qemu.sh)")
    ap.add_argument("elfs", type=Path, nargs="+", help="the firmware builds to compare")
    ap.add_argument("--rounds", type=int, default=6, help="boots of each build (default 6)")
    ap.add_argument("--mib", type=int, default=32, help="MiB per echo, two per boot (default 32)")
    args = ap.parse_args()
    board_dir = args.board_dir.resolve()
    for elf in args.elfs:
        bt.check(elf.exists(), f"no firmware at {elf}")
    # By position: the same ELF may be given twice (a build against itself
    # shows the noise floor).
    rates = [[] for _ in args.elfs]
    cpus = [[] for _ in args.elfs]
    for r in range(args.rounds):
        for k, elf in enumerate(args.elfs):
            board = bt.boot(board_dir, elf.resolve(), board_dir / "target" / f"compare-{os.getpid()}.log", None)
            try:
                pid = bb.qemu_pid(board)
                for i in range(2):
                    rate, cpu = echo_once(board, pid, args.mib, 100 * r + i)
                    rates[k].append(rate)
                    cpus[k].append(cpu)
            finally:
                board.stop()
        print(f"compare_echo: round {r + 1} of {args.rounds} done", flush=True)
    print()
    print("| build | echo MiB/s, median (range) | emulated core's CPU ms per MiB, median (range) |")
    print("|---|---|---|")
    for elf, v, c in zip(args.elfs, rates, cpus):
        print(f"| {elf} | {statistics.median(v):.2f} ({min(v):.2f}-{max(v):.2f}) "
              f"| {statistics.median(c):.1f} ({min(c):.1f}-{max(c):.1f}) |")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (bt.TestFailure, OSError) as e:
        print(f"compare_echo: FAILED: {e}", file=sys.stderr)
        sys.exit(1)
