#!/usr/bin/env python3
"""End-to-end test of the mps2-an385 firmware, from the host's own sockets.

Builds the firmware, boots it in QEMU through the board's runner
(run-qemu.sh) on free host ports, and drives every service the way real
clients do: TCP and UDP echo (1 MiB, byte-exact), login (line form, the
tutorial's dict form, lockout), the turn-taking TCP chat, the UDP hotline with
several callers, more clients than sockets, and clients that reset mid-session.

    python3 tests/board_test.py            # build, boot, test; exit 1 on failure
    python3 tests/board_test.py --no-build -k echo   # only tests matching "echo"

QEMU is always stopped (its process group, which this script created), also on
failure, Ctrl-C or timeout; the whole run is bounded by --timeout seconds.
Every connection goes to 127.0.0.1. The firmware log of a failed run is
kept in target/board-test-<pid>.log.

Needs: python3 (stdlib only), cargo with thumbv7m-none-eabi, qemu-system-arm,
defmt-print.
"""

import argparse
import os
import random
import re
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import traceback
from pathlib import Path

BOARD = Path(__file__).resolve().parent.parent
ELF = BOARD / "target/thumbv7m-none-eabi/release/smoltalk-mps2-an385"
# One log per run, so runs side by side do not mix their logs; kept only
# when the run fails.
LOG = BOARD / f"target/board-test-{os.getpid()}.log"

# Default host port of each guest port, as run-qemu.sh forwards them; the
# harness adds a random offset so it does not clash with a running instance.
TCP_FWD = {7: 8007, 8898: 8898, 8081: 8081, 8083: 8083}
UDP_FWD = {7: 8007, 9000: 9000, 8086: 8086}

MIB = 1 << 20
LOGIN_FAIL = "ERR invalid user name or password\n"


class TestFailure(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise TestFailure(msg)


class Board:
    """The running firmware: where its ports are, and its log."""

    def __init__(self, offset):
        self.offset = offset
        self.proc = None
        self.pools = {}

    def tcp(self, guest_port):
        return ("127.0.0.1", TCP_FWD[guest_port] + self.offset)

    def udp(self, guest_port):
        return ("127.0.0.1", UDP_FWD[guest_port] + self.offset)

    def start(self):
        env = dict(os.environ, SMOLTALK_PORT_OFFSET=str(self.offset), SMOLTALK_LOG="decode")
        env.pop("SMOLTALK_HOSTFWD", None)
        if os.environ.get("BOARD_TEST_PCAP"):
            env["SMOLTALK_PCAP"] = os.environ["BOARD_TEST_PCAP"]
        LOG.parent.mkdir(parents=True, exist_ok=True)
        self.log_file = open(LOG, "wb")
        # A new session: QEMU and defmt-print form one process group that
        # stop() can end as a whole, and that nothing else shares.
        self.proc = subprocess.Popen(
            [str(BOARD / "run-qemu.sh"), str(ELF)],
            cwd=BOARD, env=env, stdin=subprocess.DEVNULL,
            stdout=self.log_file, stderr=subprocess.STDOUT, start_new_session=True,
        )

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        for sig, wait in ((signal.SIGTERM, 5), (signal.SIGKILL, 5)):
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                return
            try:
                self.proc.wait(wait)
                return
            except subprocess.TimeoutExpired:
                pass

    def log(self):
        self.log_file.flush()
        return LOG.read_text(errors="replace")

    def wait_ready(self, timeout=30):
        """Until TCP echo answers. (slirp accepts a forwarded connection before
        the guest does, so a successful connect alone proves nothing.)"""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            check(self.proc.poll() is None, f"QEMU exited with {self.proc.returncode}")
            try:
                with socket.create_connection(self.tcp(7), timeout=1) as s:
                    s.sendall(b"ready?")
                    if recv_exact(s, 6, 1) == b"ready?":
                        break
            except OSError:
                time.sleep(0.2)
        else:
            raise TestFailure("the firmware did not answer on TCP echo")
        m = re.search(r"pools: (\d+) echo per port, (\d+) login, (\d+) chat", self.log())
        check(m is not None, "no 'pools:' line in the firmware log")
        self.pools = dict(zip(("echo", "login", "chat"), map(int, m.groups())))


# --- socket helpers -----------------------------------------------------

def recv_exact(s, n, timeout):
    s.settimeout(timeout)
    buf = bytearray()
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            break
        buf += chunk
    return bytes(buf)


def recv_line(s, timeout=5):
    s.settimeout(timeout)
    buf = bytearray()
    while not buf.endswith(b"\n"):
        chunk = s.recv(1)
        if not chunk:
            raise TestFailure(f"connection closed before end of line, got {bytes(buf)!r}")
        buf += chunk
    return buf.decode()


def recv_until_closed(s, timeout=5):
    s.settimeout(timeout)
    buf = bytearray()
    while True:
        chunk = s.recv(4096)
        if not chunk:
            return bytes(buf)
        buf += chunk


def recv_quiet(s, quiet=0.3, timeout=5):
    """Everything that arrives until the line has been quiet for `quiet` s
    (for the tutorial's clients, which send and receive without newlines)."""
    s.settimeout(timeout)
    buf = bytearray(s.recv(4096))
    s.settimeout(quiet)
    try:
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            buf += chunk
    except socket.timeout:
        pass
    return bytes(buf)


def connect(addr, timeout=5):
    return socket.create_connection(addr, timeout=timeout)


def reset(s):
    """Close with a RST instead of a FIN (SO_LINGER 0): a client that vanishes."""
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()


def is_refused(s, timeout=3):
    """A connection that slirp accepted but the firmware refused: it ends
    (EOF or reset) without a byte."""
    try:
        return recv_until_closed(s, timeout) == b""
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


def warm_up(s):
    """One exchange on a new echo connection before timing anything: slirp
    forwards the first bytes of a new host connection only on its next
    main-loop round, up to 500 ms later."""
    s.sendall(b"warm-up")
    check(recv_exact(s, 7, 2) == b"warm-up", "warm-up echo")


def connect_greeted(addr, within=3):
    """A chat connection and its greeting, retrying while the pool is full
    (a client that just left frees its socket once its close completes)."""
    deadline = time.monotonic() + within
    while True:
        s = connect(addr)
        try:
            return s, recv_line(s)
        except (TestFailure, ConnectionResetError):
            s.close()
            if time.monotonic() > deadline:
                raise TestFailure(f"no chat socket freed within {within} s")
            time.sleep(0.05)


def tcp_stream_echo(addr, data, timeout=60):
    """Sends `data` while reading the echo on another thread; returns the
    echoed bytes and the elapsed time."""
    s = connect(addr)
    got = bytearray()

    def reader():
        s.settimeout(timeout)
        try:
            while len(got) < len(data):
                chunk = s.recv(65536)
                if not chunk:
                    break
                got.extend(chunk)
        except OSError:
            pass

    t = threading.Thread(target=reader)
    start = time.monotonic()
    t.start()
    s.sendall(data)
    t.join(timeout)
    elapsed = time.monotonic() - start
    s.close()
    return bytes(got), elapsed


# --- tests --------------------------------------------------------------
# Each takes the Board and returns an optional one-line note (a measurement).

def test_tcp_echo_1mib(b):
    notes = []
    for port in (7, 8898):
        data = random.randbytes(MIB)
        got, dt = tcp_stream_echo(b.tcp(port), data)
        check(len(got) == len(data), f"port {port}: echoed {len(got)} of {len(data)} bytes")
        check(got == data, f"port {port}: echo differs")
        notes.append(f"{port}: {MIB / dt / MIB:.2f} MiB/s")
    return "1 MiB each way, " + ", ".join(notes)


def test_tcp_echo_parallel_streams(b):
    """Every echo socket of port 7 streaming 1 MiB at once: together they
    can send more than the NIC's RX FIFO holds, so this is where a slow
    receive path shows up (as QEMU drops, and TCP retransmissions)."""
    n = b.pools["echo"]
    results = [None] * n

    def run(i):
        data = random.randbytes(MIB)
        results[i] = (data, *tcp_stream_echo(b.tcp(7), data))

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    start = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(90)
    elapsed = time.monotonic() - start
    for i, r in enumerate(results):
        check(r is not None, f"stream {i} did not finish")
        data, got, _ = r
        check(got == data, f"stream {i}: echoed {len(got)} bytes, differs")
    return f"{n} x 1 MiB in {elapsed:.1f} s, {n * MIB / elapsed / MIB:.2f} MiB/s total"


def test_tcp_echo_rtt_and_frame_lengths(b):
    """Payloads of 1..80 bytes give frames of every length modulo 4, so a
    driver that reads one FIFO word too many loses a frame (and stalls a
    round trip for a retransmission) here."""
    with connect(b.tcp(7)) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        warm_up(s)
        rtts = []
        sizes = list(range(1, 81)) + [1] * 200
        for n in sizes:
            payload = bytes((i * 7 + n) & 0xFF for i in range(n))
            t = time.perf_counter()
            s.sendall(payload)
            got = recv_exact(s, n, 2)
            rtts.append(time.perf_counter() - t)
            check(got == payload, f"{n}-byte round trip: got {got!r}")
    slow = [(n, round(t * 1e3)) for n, t in zip(sizes, rtts) if t > 0.2]
    check(not slow, f"round trips over 200 ms (a lost frame?), (bytes, ms): {slow}")
    rtts.sort()
    worst = rtts[-1]
    return f"TCP RTT median {rtts[len(rtts) // 2] * 1e3:.3f} ms, max {worst * 1e3:.1f} ms"


def test_udp_echo_sizes(b):
    rtts = []
    for port in (7, 9000):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(2)
            for n in list(range(0, 70)) + [512, 1024, 1400, 1472]:
                payload = random.randbytes(n)
                t = time.perf_counter()
                s.sendto(payload, b.udp(port))
                got, _ = s.recvfrom(65536)
                rtts.append(time.perf_counter() - t)
                check(got == payload, f"udp {port}: {n}-byte datagram came back as {len(got)} bytes")
    rtts.sort()
    return f"UDP RTT median {rtts[len(rtts) // 2] * 1e3:.3f} ms"


def test_udp_echo_1mib(b):
    """1 MiB in 1 KiB datagrams, a few in flight, each numbered; a lost one is
    sent again. Every byte must come back, in the right datagram."""
    chunk = 1024
    data = random.randbytes(MIB)
    count = len(data) // chunk
    window = 4
    got = {}
    sent_at = {}
    resent = 0
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        # The first datagram of a new slirp UDP forward can take a main-loop
        # round (up to 500 ms); keep it out of the measurement.
        s.settimeout(2)
        s.sendto(b"warm-up", b.udp(9000))
        check(s.recvfrom(64)[0] == b"warm-up", "warm-up datagram")
        s.settimeout(0.05)
        next_seq = 0
        start = time.monotonic()
        while len(got) < count:
            check(time.monotonic() - start < 60, f"UDP 1 MiB: {len(got)}/{count} after 60 s")
            now = time.monotonic()
            for seq, at in list(sent_at.items()):
                if now - at > 0.5:
                    resent += 1
                    sent_at[seq] = now
                    s.sendto(struct.pack("!I", seq) + data[seq * chunk:(seq + 1) * chunk], b.udp(9000))
            while len(sent_at) < window and next_seq < count:
                sent_at[next_seq] = now
                s.sendto(struct.pack("!I", next_seq) + data[next_seq * chunk:(next_seq + 1) * chunk], b.udp(9000))
                next_seq += 1
            try:
                reply, _ = s.recvfrom(65536)
            except socket.timeout:
                continue
            seq = struct.unpack("!I", reply[:4])[0]
            check(reply[4:] == data[seq * chunk:(seq + 1) * chunk], f"datagram {seq} differs")
            got[seq] = True
            sent_at.pop(seq, None)
        elapsed = time.monotonic() - start
    return f"{MIB / elapsed / MIB:.2f} MiB/s, {resent} datagrams resent"


def test_udp_echo_many_clients(b):
    socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(6)]
    try:
        for i, s in enumerate(socks):
            s.settimeout(2)
            s.sendto(f"client {i}".encode(), b.udp(7))
        for i, s in enumerate(socks):
            got, _ = s.recvfrom(4096)
            check(got == f"client {i}".encode(), f"client {i} got {got!r}")
    finally:
        for s in socks:
            s.close()


def test_login_line_form(b):
    with connect(b.tcp(8083)) as s:
        for request, want in [
            ("LOGIN 张三 124\n", LOGIN_FAIL),
            ("LOGIN nobody 123\r\n", LOGIN_FAIL),
            ("LOGIN 张三 123\n", "OK 张三\n"),
            ("WHOAMI\n", "OK 张三\n"),
            ("QUIT\n", "OK bye\n"),
        ]:
            s.sendall(request.encode())
            got = recv_line(s, 10)
            check(got == want, f"{request!r}: got {got!r}, want {want!r}")
        check(recv_until_closed(s) == b"", "QUIT closes the connection")


def test_login_tutorial_dict_form(b):
    """The tutorial's client: send str({user: password}), read one verdict."""
    for user, password, want in [("赵四", "345", "登录成功!"), ("王八", "000", "用户名或密码错误!")]:
        with connect(b.tcp(8083)) as s:
            s.sendall(str({user: password}).encode())
            got = recv_until_closed(s, 10).decode()
            check(got == want, f"{user}/{password}: got {got!r}, want {want!r}")


def test_login_concurrent_clients(b):
    n = b.pools["login"]
    socks = [connect(b.tcp(8083)) for _ in range(n)]
    try:
        for s in socks:
            s.sendall("LOGIN 王八 567\n".encode())
        for i, s in enumerate(socks):
            got = recv_line(s, 20)
            check(got == "OK 王八\n", f"client {i}: {got!r}")
    finally:
        for s in socks:
            s.close()


def test_login_pipelined_requests(b):
    """Three requests in one segment: three replies, without waiting for
    the client to send anything else."""
    with connect(b.tcp(8083)) as s:
        start = time.monotonic()
        s.sendall("LOGIN 张三 123\nWHOAMI\nQUIT\n".encode())
        got = recv_until_closed(s, 10).decode()
        elapsed = time.monotonic() - start
        check(got == "OK 张三\nOK 张三\nOK bye\n", f"got {got!r}")
        # One password check takes about 0.1 s under QEMU.
        check(elapsed < 1, f"the replies took {elapsed:.1f} s")


def test_login_lockout(b):
    """Runs last among the login tests: behind slirp every host client comes
    from 10.0.2.2, so a lockout refuses all of them for a minute. Earlier
    tests' failures may count too, so the lock may come before the sixth try."""
    with connect(b.tcp(8083)) as s:
        for attempt in range(1, 7):
            s.sendall("LOGIN 张三 wrong\n".encode())
            got = recv_line(s, 10)
            if got.startswith("ERR locked out"):
                break
            check(got == LOGIN_FAIL, f"attempt {attempt}: {got!r}")
        else:
            raise TestFailure("six wrong passwords and no lockout")
        s.sendall("LOGIN 张三 123\n".encode())
        got = recv_line(s, 10)
        check(got.startswith("ERR locked out"), f"right password while locked out: {got!r}")
    return f"locked out at attempt {attempt}"


def test_chat_line_client_and_byebye(b):
    with connect(b.tcp(8081)) as s:
        greeting = recv_line(s)
        check(greeting.strip() != "", "the server speaks first")
        s.sendall(b"what are your hours?\n")
        reply = recv_line(s)
        check(reply.strip() != "", "one reply per message")
        s.sendall(b"byebye\n")
        rest = recv_until_closed(s)
        check(rest == b"byebye\n", f"byebye ends the session: got {rest!r}")


def test_chat_tutorial_client(b):
    """The tutorial client: recv(1024), print, input(), send() without a
    newline, stop when the reply is exactly b'byebye'."""
    with connect(b.tcp(8081)) as s:
        check(b"byebye" in recv_quiet(s), "the greeting says how to leave")
        s.sendall("你好".encode())
        reply = recv_quiet(s).decode()
        check("你好" in reply, f"reply to 你好: {reply!r}")
        s.sendall(b"byebye")
        check(recv_until_closed(s) == b"byebye", "the reply to byebye is exactly byebye")


def test_hotline_several_callers(b):
    """Several hotline callers at once, each answered; the keyword is masked;
    byebye ends one caller's session."""
    callers = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(5)]
    try:
        for i, c in enumerate(callers):
            c.settimeout(3)
            c.sendto(f"hello from {i}, you sb".encode(), b.udp(8086))
        for i, c in enumerate(callers):
            reply, _ = c.recvfrom(4096)
            text = reply.decode()
            check(text and "sb" not in text, f"caller {i}: {text!r}")
        callers[0].sendto(b"byebye", b.udp(8086))
        reply, _ = callers[0].recvfrom(4096)
        check(reply == b"byebye", f"byebye: {reply!r}")
        callers[1].sendto(b"help", b.udp(8086))
        reply, _ = callers[1].recvfrom(4096)
        check(reply.strip() != b"", "the others carry on")
    finally:
        for c in callers:
            c.close()


def test_more_clients_than_sockets(b):
    """Client pools+1 on the chat port is refused; once one client leaves,
    the next is served."""
    n = b.pools["chat"]
    socks = []
    try:
        for i in range(n):
            s, greeting = connect_greeted(b.tcp(8081))
            socks.append(s)
            check(greeting.strip() != "", f"client {i} greeted")
        extra = connect(b.tcp(8081))
        check(is_refused(extra), f"client {n + 1} refused: the pool has {n} sockets")
        extra.close()
        socks[0].sendall(b"byebye\n")
        check(recv_until_closed(socks[0]) == b"byebye\n", "client 0 leaves")
        socks[0].close()
        again, greeting = connect_greeted(b.tcp(8081))
        socks.append(again)
        check(greeting.strip() != "", "a freed socket serves the next client")
    finally:
        for s in socks:
            s.close()


def test_client_reset_mid_session(b):
    """Clients that vanish with a RST — mid-message, mid-transfer — free
    their sockets; every socket of the pool serves again afterwards."""
    n = b.pools["chat"]
    for _ in range(n):
        s, _greeting = connect_greeted(b.tcp(8081))
        s.sendall(b"half a messa")
        reset(s)
    s = connect(b.tcp(7))
    s.sendall(random.randbytes(256 * 1024))
    reset(s)
    time.sleep(1)
    socks = []
    try:
        for i in range(n):
            s, greeting = connect_greeted(b.tcp(8081))
            socks.append(s)
            check(greeting.strip() != "", f"chat client {i} greeted after the resets")
    finally:
        for s in socks:
            s.close()
    got, _ = tcp_stream_echo(b.tcp(7), b"still echoing\n", timeout=5)
    check(got == b"still echoing\n", "echo after a reset mid-transfer")


# Order matters: the lockout locks every host client out of login (they all
# come from slirp's 10.0.2.2), so it runs after the other login tests.
TESTS = [
    test_tcp_echo_rtt_and_frame_lengths,
    test_tcp_echo_1mib,
    test_tcp_echo_parallel_streams,
    test_udp_echo_sizes,
    test_udp_echo_1mib,
    test_udp_echo_many_clients,
    test_login_line_form,
    test_login_tutorial_dict_form,
    test_login_concurrent_clients,
    test_login_pipelined_requests,
    test_login_lockout,
    test_chat_line_client_and_byebye,
    test_chat_tutorial_client,
    test_hotline_several_callers,
    test_more_clients_than_sockets,
    test_client_reset_mid_session,
]


# --- driver -------------------------------------------------------------

def ports_free(offset):
    for port in set(TCP_FWD.values()):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port + offset))
            except OSError:
                return False
    for port in set(UDP_FWD.values()):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            try:
                s.bind(("127.0.0.1", port + offset))
            except OSError:
                return False
    return True


def pick_offset():
    # Host ports span 8007..9000; offsets up to 50000 keep them below 60000.
    for _ in range(100):
        offset = random.randrange(20000, 50000)
        if ports_free(offset):
            return offset
    raise SystemExit("no free set of host ports found")


class Timeout(Exception):
    pass


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--no-build", action="store_true", help="use the ELF as built")
    ap.add_argument("-k", metavar="SUBSTRING", help="run only tests whose name contains this")
    ap.add_argument("--timeout", type=int, default=600, help="bound on the whole run, seconds")
    args = ap.parse_args()

    def on_alarm(signum, frame):
        raise Timeout(f"the run took longer than {args.timeout} s")

    def on_term(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGALRM, on_alarm)
    signal.signal(signal.SIGTERM, on_term)
    signal.alarm(args.timeout)

    if not args.no_build:
        print("building firmware ...", flush=True)
        subprocess.run(["cargo", "build", "--release"], cwd=BOARD, check=True)
    check(ELF.exists(), f"{ELF} not built")

    tests = [t for t in TESTS if not args.k or args.k in t.__name__]
    board = Board(pick_offset())
    passed = failed = 0
    try:
        board.start()
        board.wait_ready()
        print(f"firmware up (host port offset {board.offset}, pools {board.pools})", flush=True)
        for test in tests:
            name = test.__name__.removeprefix("test_")
            # slirp passes a host-side close (or reset) to the firmware on its
            # next main-loop round, up to 500 ms later; until then the last
            # test's sockets still hold their pool slots.
            time.sleep(0.6)
            t0 = time.monotonic()
            try:
                note = test(board)
                check(board.proc.poll() is None, f"QEMU exited with {board.proc.returncode}")
                passed += 1
                extra = f" ({note})" if note else ""
                print(f"PASS {name} [{time.monotonic() - t0:.1f}s]{extra}", flush=True)
            except (TestFailure, OSError, AssertionError) as e:
                failed += 1
                print(f"FAIL {name} [{time.monotonic() - t0:.1f}s]: {e}", flush=True)
                if not isinstance(e, TestFailure):
                    traceback.print_exc()
        log = board.log()
        # slirp says this when the NIC refuses a frame: before the firmware
        # enables its receiver, or when the RX FIFO is full (a dropped frame).
        boot = log.find("LAN9118 id")
        drops = log[boot:].count("Failed to send packet") if boot >= 0 else 0
        print(f"QEMU dropped {drops} frame(s) for a full NIC RX FIFO after boot")
        bad = [line for line in log.splitlines() if " ERROR " in line or "panic" in line]
        if bad:
            failed += 1
            print("FAIL firmware log has errors:\n  " + "\n  ".join(bad[:10]))
    except (TestFailure, Timeout, KeyboardInterrupt, subprocess.CalledProcessError) as e:
        failed += 1
        print(f"FAIL run aborted: {e!r}", flush=True)
    finally:
        signal.alarm(0)
        board.stop()
    if failed:
        tail = LOG.read_text(errors="replace").splitlines()[-30:] if LOG.exists() else []
        print(f"--- last lines of {LOG} (kept) ---")
        print("\n".join(tail))
    elif os.environ.get("BOARD_TEST_KEEP_LOG"):
        print(f"firmware log: {LOG}")
    else:
        LOG.unlink(missing_ok=True)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
