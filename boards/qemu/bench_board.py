#!/usr/bin/env python3
"""Benchmark of an emulated board's firmware, from the host's own sockets.

    python3 ../qemu/bench_board.py --board-dir .            # a board's `bench`
    python3 ../qemu/bench_board.py --board-dir . --no-build --runs 9 --json out.json

Boots the board's release ELF through its runner (`run-qemu.sh`, slirp user
networking) on a free set of host ports, exactly as `board_test.py` does,
and measures what issue 5 asks of an emulated board:

  rtt         64-byte TCP echo round trips on one connection (--rtt N of
              them, after 200 to warm up): p50, p99 and the worst, in µs.
  echo        1 MiB through TCP echo on a fresh connection, sent by one
              thread while another reads it back, byte-exact: the median
              (and range) of --runs runs, in MiB/s; and the QEMU process's
              CPU time per MiB, which a busy host moves far less.
  parallel    every echo socket of one port streaming 1 MiB at once:
              MiB/s in total, the slowest stream, and how many frames QEMU
              dropped for a full NIC receive FIFO meanwhile (slirp's
              "Failed to send packet" in the log).
  connections echo connections open at once on one port: opened one by one,
              each echoing its own message, until one is refused (closed
              without a byte: smoltcp has no backlog, and slirp accepts
              first) or --max-conns is reached; how long the refusal took;
              and whether every open one still echoes after it.
  idle        CPU time of the QEMU process (all threads, from /proc) over
              --idle seconds with every connection closed, 3 s after the
              last one, in % of one host core: the firmware sleeps in WFI,
              woken by the NIC interrupt or its next timer deadline.
  ram         the firmware's static RAM (footprint of the ELF: data + bss)
              and, from its boot log's `ram:` line, the RAM one more TCP
              connection costs.
  profile     only with --profile, and only for firmware built with its
              `profile` feature (the mps2-an385 `bench --profile` does
              that): one 16 MiB TCP echo, and where the core's time went
              meanwhile, from the firmware's own timer (`profile:` log
              lines): reading the RX FIFO, smoltcp taking in those
              frames, building frames, writing the TX FIFO (slirp's send
              to the host happens inside the last write), the rest of the
              stack and the services, and waiting. Also what one
              register access costs, and the echo rate if everything but
              the FIFO transfers took no time at all: the ceiling; and
              what copying 1 MiB in RAM costs (the firmware's memcpy).

Client and QEMU are not pinned to CPUs, and nothing else is stopped: on a
busy host the figures move (run it twice); the table ends with the host's
load average before and after. Traffic goes only to 127.0.0.1, which slirp
forwards to the firmware; QEMU runs in a process group of its own that is
always stopped, and the whole run is bounded (--timeout).
"""

import argparse
import json
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import board_test as bt  # noqa: E402 - the shared harness: Board, boot, sockets

MIB = bt.MIB
CLK_TCK = os.sysconf("SC_CLK_TCK")


def lean_round_trips(s, n, size=64):
    """n echo round trips of `size` bytes; returns their times in seconds.
    One recv_into per reply in the common case: the client's own cost is a
    few microseconds of the figure."""
    times = []
    buf = bytearray(size)
    view = memoryview(buf)
    s.settimeout(2)
    for i in range(n):
        msg = (b"%0*d\n" % (size - 1, i))
        t = time.perf_counter()
        s.sendall(msg)
        got = 0
        while got < size:
            k = s.recv_into(view[got:])
            bt.check(k > 0, f"round trip {i}: the connection closed")
            got += k
        times.append(time.perf_counter() - t)
        bt.check(buf == msg, f"round trip {i}: got {bytes(buf)!r}")
    return times


def pct(sorted_times, p):
    return sorted_times[min(len(sorted_times) - 1, int(len(sorted_times) * p))]


def bench_rtt(b, n):
    s, _, _ = bt.accepted(b, bt.HELLO, b"x", until=lambda d: len(d) >= 1)
    with s:
        lean_round_trips(s, 200)  # warm-up: slirp's and the firmware's paths
        times = sorted(lean_round_trips(s, n))
    us = [t * 1e6 for t in times]
    return {"n": n, "p50_us": pct(us, 0.50), "p99_us": pct(us, 0.99), "max_us": us[-1]}


def bench_echo(b, runs):
    """`runs` 1 MiB echoes; also the QEMU process's CPU time per MiB, which
    a busy host moves far less than the throughput."""
    pid = qemu_pid(b)
    rates, cpu = [], 0.0
    for i in range(runs):
        c0 = qemu_cpu_seconds(pid)
        rates.append((MIB - 1) / MIB / bt.tcp_echo_mib(b, bt.ECHO, i))
        cpu += qemu_cpu_seconds(pid) - c0
        time.sleep(0.2)
    return {"runs": runs, "median_mib_s": statistics.median(rates),
            "min_mib_s": min(rates), "max_mib_s": max(rates),
            "qemu_cpu_ms_per_mib": 1000 * cpu / runs}


def bench_parallel(b, n):
    drops_before = b.log().count("Failed to send packet")
    results, dt = bt.parallel_echo_mib(b, n, 150)
    drops = b.log().count("Failed to send packet") - drops_before
    return {"streams": n, "total_mib_s": n / dt, "slowest_s": max(results), "frames_dropped": drops}


def bench_connections(b, cap):
    """Opens echo connections on one port until one is refused (or `cap`)."""
    socks = []
    try:
        refused_after = None
        while len(socks) < cap + 1:
            s = bt.connect(b, bt.ECHO, timeout=5)
            msg = b"conn %d\n" % len(socks)
            t = time.perf_counter()
            try:
                s.sendall(msg)
                data, eof = bt.recv_until(s, lambda d: len(d) >= len(msg), 3)
            except OSError:
                data, eof = b"", True
            if eof and not data:
                refused_after = time.perf_counter() - t
                s.close()
                break
            bt.check(data == msg, f"connection {len(socks) + 1}: got {data!r}, neither echoed nor refused")
            socks.append(s)
        # The others carry on: every open connection echoes again.
        for i, s in enumerate(socks):
            msg = b"again %d\n" % i
            s.sendall(msg)
            got = bt.recv_exact(s, len(msg), 3)
            bt.check(got == msg, f"connection {i + 1} after the refusal: got {got!r}")
        return {"open": len(socks), "refused": refused_after is not None,
                "refusal_ms": None if refused_after is None else refused_after * 1e3,
                "others_continue": True}
    finally:
        for s in socks:
            s.close()


def qemu_pid(b):
    pids = b._qemu_pids()
    bt.check(len(pids) == 1, f"QEMU process not found among the runner's children: {pids}")
    return pids[0]


def loadavg():
    return float(Path("/proc/loadavg").read_text().split()[0])


def qemu_cpu_seconds(pid):
    """CPU time of a process, all its threads, in seconds: from each
    thread's schedstat (nanoseconds), else from utime + stime (ticks)."""
    total = 0
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            total += int((task / "schedstat").read_text().split()[0])
        return total / 1e9
    except (OSError, ValueError, IndexError):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK


PROFILE_LINE = re.compile(r"profile: at (\d+) us, rx (\d+) tx (\d+) frames; us in poll (\d+), "
                          r"rx fifo (\d+), tx fill (\d+), tx fifo (\d+), rx process (\d+)")


def bench_profile(b, mib=16):
    """One `mib` MiB echo on one connection, and the firmware's profile
    totals across it: the reports logged while it streamed, less the first
    and the last (which may straddle its start and end)."""
    m = re.search(r"profile: one LAN9118 register read costs (\d+) ns", b.log())
    bt.check(m, "no `profile:` lines in the log: build the firmware with `--features profile`")
    read_ns = int(m[1])
    m = re.search(r"profile: copying 1 MiB costs (\d+) us word-aligned, (\d+) us a byte off", b.log())
    bt.check(m, "no `profile: copying` line in the log")
    copy_us = (int(m[1]), int(m[2]))
    payload = random.Random(mib).randbytes(mib * MIB)
    s, first, _ = bt.accepted(b, bt.ECHO, payload[:1], until=lambda d: len(d) >= 1)
    before = len(PROFILE_LINE.findall(b.log()))
    with s:
        t = time.perf_counter()
        got = bt.echo_stream(s, payload[1:], 120)
        dt = time.perf_counter() - t
    bt.check(first + got == payload, f"{len(got) + 1} of {mib} MiB came back, or different bytes")
    time.sleep(0.3)
    reports = [tuple(map(int, g)) for g in PROFILE_LINE.findall(b.log())[before:]]
    bt.check(len(reports) >= 4, f"only {len(reports)} profile reports during the stream")
    a, z = reports[1], reports[-2]
    span = z[0] - a[0]
    share = {name: (z[i] - a[i]) / span for name, i in
             (("poll", 3), ("rx_fifo", 4), ("tx_fill", 5), ("tx_fifo", 6), ("rx_process", 7))}
    rate = mib / dt
    fifo = share["rx_fifo"] + share["tx_fifo"]
    return {"mib": mib, "mib_s": rate, "read_ns": read_ns, "copy_us": copy_us, "span_ms": span / 1000,
            "rx_frames": z[1] - a[1], "tx_frames": z[2] - a[2], "share": share,
            # If the FIFO transfers were all the core did, streaming at the
            # same share of its time.
            "ceiling_mib_s": rate * share["poll"] / fifo if fifo else None}


def bench_idle(b, seconds, settle=3.0):
    pid = qemu_pid(b)
    # The last connections' closes settle: the firmware stops its slirp
    # wake-ups a second after its last frame, slirp its own timers later.
    time.sleep(settle)
    c0, t0 = qemu_cpu_seconds(pid), time.monotonic()
    time.sleep(seconds)
    c1, t1 = qemu_cpu_seconds(pid), time.monotonic()
    return {"seconds": seconds, "cpu_percent": 100 * (c1 - c0) / (t1 - t0)}


def bench_ram(board_dir, log):
    out = subprocess.run([sys.executable, str(board_dir.parent.parent / "scripts" / "footprint"),
                          str(board_dir), "--no-build"], capture_output=True, text=True, timeout=120)
    ram = {}
    m = re.search(r"static RAM \d+ = data (\d+) \+ bss (\d+)", out.stdout)
    if m:
        ram["data"], ram["bss"] = int(m[1]), int(m[2])
    m = re.search(r"(\d+) bytes per tcp connection \(([^)]*)\)", log)
    if m:
        ram["per_connection"], ram["per_connection_parts"] = int(m[1]), m[2]
    return ram


def row(metric, value, target, ok):
    mark = "" if ok is None else ("yes" if ok else "NO")
    return f"| {metric} | {value} | {target} | {mark} |"


def report(r, board_name):
    lines = [f"## {board_name}: smoltalk under QEMU (slirp, 127.0.0.1)", "",
             "| metric | measured | target (issue 5) | met |", "|---|---|---|---|"]
    if "rtt" in r:
        x = r["rtt"]
        lines.append(row(f"64 B round trip p50 (p99, max) over {x['n']}",
                         f"{x['p50_us']:.0f} µs ({x['p99_us']:.0f}, {x['max_us']:.0f})",
                         "≤ 100 µs", x["p50_us"] <= 100))
    if "echo" in r:
        x = r["echo"]
        lines.append(row(f"1 MiB echo, median of {x['runs']} (range)",
                         f"{x['median_mib_s']:.1f} MiB/s ({x['min_mib_s']:.1f}-{x['max_mib_s']:.1f})",
                         "≥ 13 MiB/s", x["median_mib_s"] >= 13))
        lines.append(row("QEMU CPU time per MiB echoed", f"{x['qemu_cpu_ms_per_mib']:.0f} ms", "", None))
    if "parallel" in r:
        x = r["parallel"]
        lines.append(row(f"{x['streams']} × 1 MiB echo at once",
                         f"{x['total_mib_s']:.1f} MiB/s in total, slowest {x['slowest_s']:.2f} s, "
                         f"{x['frames_dropped']} frames dropped by QEMU", "", None))
    if "connections" in r:
        x = r["connections"]
        refusal = (f"next one refused in {x['refusal_ms']:.0f} ms" if x["refused"]
                   else "none refused (cap reached)")
        lines.append(row("simultaneous echo connections (one port)",
                         f"{x['open']}; {refusal}; the others continue",
                         "≥ 16, one more refused", x["open"] >= 16 and x["refused"]))
    if "idle" in r:
        x = r["idle"]
        lines.append(row(f"QEMU CPU when idle ({x['seconds']:.0f} s)",
                         f"{x['cpu_percent']:.2f} % of a core", "asleep in WFI", None))
    if r.get("ram"):
        x = r["ram"]
        if "bss" in x:
            lines.append(row("static RAM (data + bss)", f"{(x['data'] + x['bss']) / 1024:.1f} KiB", "", None))
        if "per_connection" in x:
            lines.append(row("RAM per TCP connection", f"{x['per_connection']} B "
                             f"({x['per_connection_parts']})", "FreeRTOS+TCP ≈ 30 KB", None))
    if "profile" in r:
        x = r["profile"]
        sh = x["share"]
        rest = sh["poll"] - sh["rx_fifo"] - sh["rx_process"] - sh["tx_fifo"] - sh["tx_fill"]
        profile = ["", f"Profile (firmware built with `--features profile`, a few % slower): "
                  f"one {x['mib']} MiB echo at {x['mib_s']:.1f} MiB/s; the core's time over "
                  f"{x['span_ms']:.0f} ms of it ({x['rx_frames']} frames in, {x['tx_frames']} out):", "",
                  "| where | share of the core's time |", "|---|---|",
                  f"| reading frames out of the RX FIFO | {100 * sh['rx_fifo']:.0f} % |",
                  f"| smoltcp taking in the frames read (parsing, checksums, copying payload to the socket) "
                  f"| {100 * sh['rx_process']:.0f} % |",
                  f"| writing frames into the TX FIFO (slirp sends to the host inside the last write) "
                  f"| {100 * sh['tx_fifo']:.0f} % |",
                  f"| smoltcp building frames to send (headers, checksums, copying payload from the socket) "
                  f"| {100 * sh['tx_fill']:.0f} % |",
                  f"| the rest of `Node::poll`: the services (the echo's copy from receive to send buffer), "
                  f"smoltcp's socket walks and TCP state | {100 * rest:.0f} % |",
                  f"| outside `Node::poll` (waiting for frames, the main loop) | {100 * (1 - sh['poll']):.0f} % |",
                  "", f"One LAN9118 register access costs {x['read_ns']} ns under QEMU (100 000 reads timed at "
                  f"boot); a full frame is 380 of them each way. If everything but the FIFO transfers took no "
                  f"time, this echo would run at {x['ceiling_mib_s']:.1f} MiB/s. Copying 1 MiB in RAM "
                  f"(`memcpy`, timed at boot) costs {x['copy_us'][0]} µs word-aligned, {x['copy_us'][1]} µs "
                  f"with the source a byte off."]
    if "load" in r:
        x = r["load"]
        lines.append(row("host load average (1 min), before / after",
                         f"{x['before']:.1f} / {x['after']:.1f} on {x['cpus']} CPUs", "", None))
    if "profile" in r:
        lines += profile
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--board-dir", type=Path, required=True, help="the board (its run-qemu.sh, Cargo.toml)")
    ap.add_argument("--no-build", action="store_true", help="use the release ELF as built")
    ap.add_argument("--rtt", type=int, default=2000, metavar="N", help="round trips to time (default 2000)")
    ap.add_argument("--runs", type=int, default=5, help="1 MiB echo runs, median taken (default 5)")
    ap.add_argument("--max-conns", type=int, default=64, help="stop opening connections here (default 64)")
    ap.add_argument("--idle", type=float, default=5.0, metavar="S", help="idle CPU window, seconds (default 5)")
    ap.add_argument("--only", metavar="LIST", help="comma-separated: rtt,echo,parallel,connections,idle,ram")
    ap.add_argument("--profile", action="store_true",
                    help="also profile a 16 MiB echo (firmware built with its `profile` feature)")
    ap.add_argument("--json", type=Path, help="also write the figures to this file")
    ap.add_argument("--keep-log", action="store_true", help="keep the firmware log")
    ap.add_argument("--timeout", type=int, default=600, help="bound on the whole run, seconds (default 600)")
    args = ap.parse_args()
    board_dir = args.board_dir.resolve()
    wanted = set((args.only or "rtt,echo,parallel,connections,idle,ram").split(","))
    if args.profile:
        wanted.add("profile")

    def on_alarm(*_):
        raise bt.Timeout(f"the run took longer than {args.timeout} s")

    def on_term(*_):
        raise KeyboardInterrupt

    signal.signal(signal.SIGALRM, on_alarm)
    signal.signal(signal.SIGTERM, on_term)
    signal.alarm(args.timeout)

    log_path = board_dir / "target" / f"bench-{os.getpid()}.log"
    board, results, status = None, {}, 0
    load_before = loadavg()
    try:
        if not args.no_build:
            features = ["--features", "profile"] if args.profile else []
            subprocess.run(["cargo", "build", "--release", *features], cwd=board_dir, check=True)
        elf = bt.package_elf(board_dir)
        bt.check(elf.exists(), f"no firmware at {elf} (build it first)")
        board = bt.boot(board_dir, elf, log_path, None)
        board.pools, _ = bt.measure_pools(board)
        print(f"bench: {board_dir.name} up, host ports +{board.offset}, pools {board.pools}", flush=True)
        steps = [
            ("rtt", lambda: bench_rtt(board, args.rtt)),
            ("echo", lambda: bench_echo(board, args.runs)),
            ("parallel", lambda: bench_parallel(board, board.pools["echo"])),
            ("connections", lambda: bench_connections(board, args.max_conns)),
            ("idle", lambda: bench_idle(board, args.idle)),
            ("ram", lambda: bench_ram(board_dir, board.log())),
            ("profile", lambda: bench_profile(board)),
        ]
        for name, step in steps:
            if name not in wanted:
                continue
            time.sleep(0.6)  # the last step's closes reach the firmware
            results[name] = step()
            print(f"bench: {name}: {results[name]}", flush=True)
            bt.check(board.alive(), f"QEMU exited with {board.exit_status()}")
    except (bt.TestFailure, bt.Timeout, KeyboardInterrupt, subprocess.CalledProcessError, OSError) as e:
        print(f"bench: FAILED: {type(e).__name__}: {e}", flush=True)
        status = 1
    finally:
        signal.alarm(0)
        if board:
            board.stop()
    results["load"] = {"before": load_before, "after": loadavg(), "cpus": os.cpu_count()}
    log = board.log() if board else ""
    bad = bt.firmware_errors(log)
    if bad:
        print("bench: the firmware logged errors:\n  " + "\n  ".join(bad[:10]))
        status = 1
    print()
    print(report(results, board_dir.name))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    if status or args.keep_log:
        print(f"\nbench: firmware log {log_path}")
    else:
        log_path.unlink(missing_ok=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
