#!/usr/bin/env python3
"""Boots a board's firmware in QEMU and exercises every service from the
host's own kernel sockets, the way the tutorial's clients would.

    boards/lm3s6965evb/tests/harness.py            # build, boot, test
    harness.py --board-dir boards/mps2-an385        # any board with the same runner
    harness.py --no-build --lockout-expiry -k chat  # options: see --help

What a board needs: a `run-qemu.sh ELF` runner that honours
SMOLTALK_PORT_OFFSET (host ports = tutorial ports + offset, echo 7 on 8007)
and execs QEMU, so that the PID it was started with is QEMU's; and a release
ELF at target/<triple>/release/<package name>.

Everything is bounded: each socket operation has a timeout, each test a
deadline, the whole run an alarm; QEMU is always stopped (by its PID, which
this script started) on the way out. Traffic goes only to 127.0.0.1, where
QEMU's user networking forwards it to the firmware.

Exit status 0 only if every test passed; the last line is "N passed, N failed".
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
import tomllib
from pathlib import Path

HOST = "127.0.0.1"
# Guest service -> host port before the offset (run-qemu.sh's defaults).
TCP_ECHO7, TCP_HELLO, TCP_CHAT, TCP_LOGIN = 8007, 8898, 8081, 8083
UDP_ECHO7, UDP_HELLO, UDP_HOTLINE = 8007, 9000, 8086
ALL_PORTS = [("tcp", p) for p in (TCP_ECHO7, TCP_HELLO, TCP_CHAT, TCP_LOGIN)] + [
    ("udp", p) for p in (UDP_ECHO7, UDP_HELLO, UDP_HOTLINE)
]

LOGIN_OK = "登录成功!"
LOGIN_FAILED = "用户名或密码错误!"
LOGIN_LOCKED = "登录失败次数过多,请稍后再试!"

MIB = 1 << 20


class TestFailure(Exception):
    pass


def check(cond, what):
    if not cond:
        raise TestFailure(what)


class Board:
    """One QEMU running the firmware; ports shifted by `offset`."""

    def __init__(self, board_dir, elf, offset, log_path, pcap=None):
        self.offset = offset
        self.log_path = log_path
        env = dict(os.environ, SMOLTALK_PORT_OFFSET=str(offset), SMOLTALK_LOG="decode")
        if pcap:
            env["SMOLTALK_PCAP"] = str(pcap)
        self.log = open(log_path, "w")
        # run-qemu.sh execs QEMU: self.proc.pid is QEMU's PID.
        self.proc = subprocess.Popen(
            [str(board_dir / "run-qemu.sh"), str(elf)],
            cwd=board_dir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def is_qemu(self, timeout=5.0):
        """Whether our child has become QEMU (the runner execs it). Only then
        does stopping self.proc stop QEMU."""
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None:
            try:
                comm = Path(f"/proc/{self.proc.pid}/comm").read_text().strip()
            except OSError:
                comm = ""
            if comm.startswith("qemu-system"):
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.02)
        return False

    def port(self, base):
        return base + self.offset

    def log_text(self):
        self.log.flush()
        return Path(self.log_path).read_text(errors="replace")

    def wait_log(self, pattern, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if re.search(pattern, self.log_text()):
                return True
            if self.proc.poll() is not None:
                return False
            time.sleep(0.05)
        return False

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        """Stops the QEMU this object started, by its PID. Should a runner
        not have exec'd QEMU, its children (QEMU, the decoder) are stopped
        first, by the PIDs the kernel lists for it."""
        if self.proc.poll() is None:
            kids = []
            if not self.is_qemu(timeout=0):
                try:
                    task = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
                    kids = task.read_text().split()
                except OSError:
                    pass
            for kid in kids:
                try:
                    os.kill(int(kid), signal.SIGTERM)
                except ProcessLookupError:
                    pass
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        # The decoder (defmt-print) ends at QEMU's end of output; give it a
        # moment to flush the last lines into the log.
        time.sleep(0.3)
        self.log.close()


# ---------------------------------------------------------------- helpers

def tcp(board, base, timeout=5.0):
    s = socket.create_connection((HOST, board.port(base)), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def udp(timeout=2.0):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(timeout)
    s.bind((HOST, 0))
    return s


def recv_until(s, done, timeout):
    """Reads until done(data) is true, EOF, or timeout; returns (data, eof)."""
    data = b""
    deadline = time.monotonic() + timeout
    while not done(data):
        left = deadline - time.monotonic()
        if left <= 0:
            return data, False
        s.settimeout(left)
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            return data, False
        except ConnectionResetError:
            return data, True
        if not chunk:
            return data, True
        data += chunk
    return data, False


def recv_line(s, timeout=5.0):
    data, _ = recv_until(s, lambda d: b"\n" in d, timeout)
    check(b"\n" in data, f"no line within {timeout}s, got {data!r}")
    return data.decode()


def recv_to_eof(s, timeout=5.0):
    data, eof = recv_until(s, lambda d: False, timeout)
    check(eof, f"connection not closed within {timeout}s, got {data!r}")
    return data


def refused(board, base, timeout=3.0):
    """True if a connection is refused by the firmware. slirp accepts on the
    host side first and closes (EOF or reset) when the guest answers RST."""
    try:
        s = tcp(board, base, timeout)
    except (ConnectionRefusedError, ConnectionResetError):
        return True
    with s:
        data, eof = recv_until(s, lambda d: len(d) > 0, timeout)
        return eof and not data


def accepted(board, base, first=b"", until=lambda d: len(d) > 0, timeout=5.0):
    """Connects and sends `first`; reads until `until(data)`. A socket that
    closed moments ago may not listen again yet (the pools are small), which
    the client sees as EOF with no data: retry for up to 3 s. Returns the
    socket, what was read, and whether the server closed."""
    deadline = time.monotonic() + 3
    while True:
        s = tcp(board, base, timeout)
        if first:
            s.sendall(first)
        data, eof = recv_until(s, until, timeout)
        if data or not eof:
            return s, data, eof
        s.close()
        check(time.monotonic() < deadline, f"port {base}: refused for 3 s")
        time.sleep(0.05)


def chat_open(board):
    """A chat connection past its greeting."""
    s, greeting, _ = accepted(board, TCP_CHAT, until=lambda d: b"\n" in d)
    check(greeting.startswith(b"Welcome"), f"the server speaks first: {greeting!r}")
    return s


def echo_stream(s, payload, timeout):
    """Sends payload while reading it back; returns what came back."""
    got = bytearray()
    err = []

    def reader():
        try:
            data, _ = recv_until(s, lambda d: len(d) >= len(payload), timeout)
            got.extend(data)
        except Exception as e:  # reported by the caller
            err.append(e)

    # recv_until accumulates into a new bytes each time: fine for 1 MiB.
    t = threading.Thread(target=reader, daemon=True)
    t.start()
    s.settimeout(timeout)
    s.sendall(payload)
    t.join(timeout + 1)
    check(not t.is_alive(), "echo reader did not finish")
    check(not err, f"echo reader failed: {err}")
    return bytes(got)


# ------------------------------------------------------------------ tests

def test_tutorial_hello_tcp(board):
    """The tutorial's TCP client: send hello!, read the answer (8898 echoes)."""
    s, data, _ = accepted(board, TCP_HELLO, b"hello!", until=lambda d: len(d) >= 6)
    s.close()
    check(data == b"hello!", f"got {data!r}")


def test_tutorial_hello_udp(board):
    with udp() as u:
        u.sendto(b"hello", (HOST, board.port(UDP_HELLO)))
        data, _ = u.recvfrom(2048)
        check(data == b"hello", f"got {data!r}")


def _echo_tcp_mib(board, base):
    rng = random.Random(base)
    payload = rng.randbytes(MIB)
    s, first, _ = accepted(board, base, payload[:1], until=lambda d: len(d) >= 1)
    with s:
        check(first == payload[:1], f"first byte: {first!r}")
        t = time.monotonic()
        got = echo_stream(s, payload[1:], timeout=60)
        dt = time.monotonic() - t
        check(len(got) == MIB - 1, f"{len(got) + 1} of {MIB} bytes came back")
        check(got == payload[1:], "echoed bytes differ")
    return f"1 MiB in {dt:.2f}s ({1 / dt:.2f} MiB/s)"


def test_echo_tcp_1mib_port7(board):
    return _echo_tcp_mib(board, TCP_ECHO7)


def test_echo_tcp_1mib_port8898(board):
    return _echo_tcp_mib(board, TCP_HELLO)


def _echo_udp_mib(board, base, size=1024):
    """1 MiB as numbered datagrams, one in flight (the board queues only two
    per socket); a lost datagram is resent after a timeout and counted."""
    rng = random.Random(base)
    data = rng.randbytes(MIB)
    dest = (HOST, board.port(base))
    resent = 0
    t = time.monotonic()
    with udp(timeout=0.5) as u:
        for seq, off in enumerate(range(0, MIB, size)):
            dgram = struct.pack(">I", seq) + data[off:off + size]
            for attempt in range(10):
                u.sendto(dgram, dest)
                try:
                    while True:
                        reply, _ = u.recvfrom(4096)
                        if reply[:4] == dgram[:4]:
                            break  # an older duplicate is skipped
                except socket.timeout:
                    resent += 1
                    continue
                check(reply == dgram, f"datagram {seq} came back different")
                break
            else:
                raise TestFailure(f"datagram {seq} lost 10 times")
    dt = time.monotonic() - t
    check(resent <= 10, f"{resent} datagrams had to be resent")
    return f"1 MiB in {MIB // size} datagrams, {dt:.2f}s, {resent} resent"


def test_echo_udp_1mib_port7(board):
    return _echo_udp_mib(board, UDP_ECHO7)


def test_echo_udp_1mib_port9000(board):
    return _echo_udp_mib(board, UDP_HELLO)


def test_echo_rtt(board):
    s, _, _ = accepted(board, TCP_HELLO, b"x", until=lambda d: len(d) >= 1)
    with s:
        lat = []
        for i in range(200):
            msg = b"%063d" % i + b"\n"
            t = time.perf_counter()
            s.sendall(msg)
            data, _ = recv_until(s, lambda d: len(d) >= len(msg), 2)
            lat.append(time.perf_counter() - t)
            check(data == msg, f"round trip {i}: got {data!r}")
        lat.sort()
    return f"64 B round trip p50 {lat[100] * 1e3:.2f} ms, p99 {lat[198] * 1e3:.2f} ms"


def _dict_login(board, request):
    """One tutorial-client login: the verdict, then the server closes."""
    s, data, eof = accepted(board, TCP_LOGIN, request.encode(), until=lambda d: False, timeout=10)
    s.close()
    check(eof, f"{request}: not closed after {data!r}")
    return data.decode()


def _login_line(board, line):
    """A line-protocol session after its first command's reply."""
    s, data, _ = accepted(board, TCP_LOGIN, line.encode(), until=lambda d: b"\n" in d, timeout=10)
    return s, data.decode()


def test_login_tutorial_dict_form(board):
    """The tutorial client sends str({user: password}) and prints one reply."""
    for request, verdict in [
        (str({"张三": "123"}), LOGIN_OK),
        ('{"赵四": "345"}', LOGIN_OK),
        (str({"王八": "567"}), LOGIN_OK),
    ]:
        got = _dict_login(board, request)
        check(got == verdict, f"{request}: got {got!r}")


def test_login_bad(board):
    for request in [str({"王八": "000"}), str({"nobody": "123"})]:
        got = _dict_login(board, request)
        check(got == LOGIN_FAILED, f"{request}: got {got!r}")
    got = _dict_login(board, "{'a': __import__('os').system('reboot')}")
    check(got == "请求格式错误!", f"code in the request: got {got!r}")


def test_login_line_form(board):
    s, got = _login_line(board, "LOGIN 张三 123\n")
    with s:
        check(got == "OK 张三\n", f"good password: {got!r}")
        s.sendall(b"WHOAMI\n")
        check(recv_line(s) == "OK 张三\n", "whoami")
        s.sendall(b"QUIT\n")
        check(recv_line(s) == "OK bye\n", "quit")
        recv_to_eof(s)


def test_login_concurrent(board):
    """Both login sockets hash at once; each gets its own verdict."""
    socks = []
    try:
        # Take both sockets first (the HELP reply proves each is accepted),
        # then start both hashes in the same instant.
        for _ in range(2):
            s, got = _login_line(board, "HELP\n")
            socks.append(s)
            check(got.startswith("OK commands"), f"help: {got!r}")
        for s, pw in zip(socks, ["345", "nope"]):
            s.sendall(f"LOGIN 赵四 {pw}\n".encode())
        check(recv_line(socks[0], 10) == "OK 赵四\n", "right password")
        check(recv_line(socks[1], 10).startswith("ERR"), "wrong password")
    finally:
        for s in socks:
            s.close()


def test_chat_with_byebye(board):
    with chat_open(board) as s:
        s.sendall(b"hello\n")
        check(recv_line(s).startswith("Hello!"), "reply to hello")
        s.sendall("you sb\n".encode())
        masked = recv_line(s)
        check("sb" not in masked and "**" in masked, f"keyword not rewritten: {masked!r}")
        s.sendall(b"byebye\n")
        check(recv_to_eof(s) == b"byebye\n", "byebye answered, then closed")


def test_chat_tutorial_client(board):
    """The tutorial's chat client sends lines without a newline."""
    with chat_open(board) as s:
        s.sendall("你好".encode())
        data, _ = recv_until(s, lambda d: len(d) > 0, 5)
        check(len(data) > 0 and not data.endswith(b"\n"), f"reply without newline: {data!r}")
        s.sendall(b"byebye")
        check(recv_to_eof(s) == b"byebye", "byebye")


def test_hotline_several_clients(board):
    dest = (HOST, board.port(UDP_HOTLINE))
    callers = [udp() for _ in range(4)]
    try:
        for i, u in enumerate(callers):
            u.sendto(b"hello", dest)
        for u in callers:
            check(u.recvfrom(2048)[0].startswith(b"Hello!"), "each caller is greeted")
        callers[1].sendto(b"you sb", dest)
        masked = callers[1].recvfrom(2048)[0]
        check(b"sb" not in masked and masked.endswith(b"**"), f"rewritten: {masked!r}")
        for u in callers:
            u.sendto(b"byebye", dest)
            check(u.recvfrom(2048)[0] == b"byebye", "byebye")
    finally:
        for u in callers:
            u.close()


def test_hotline_more_callers_than_lines(board):
    """16 lines; caller 17 is told busy, the others are unaffected."""
    dest = (HOST, board.port(UDP_HOTLINE))
    callers = [udp() for _ in range(17)]
    try:
        # At most two datagrams wait in the socket: call one at a time.
        for u in callers[:16]:
            u.sendto(b"hello", dest)
            check(u.recvfrom(2048)[0].startswith(b"Hello!"), "greeted")
        callers[16].sendto(b"hello", dest)
        check(callers[16].recvfrom(2048)[0].startswith(b"busy"), "caller 17 told busy")
        callers[0].sendto(b"hello", dest)
        check(callers[0].recvfrom(2048)[0].startswith(b"Hello!"), "caller 1 still served")
        for u in callers[:16]:
            u.sendto(b"byebye", dest)
            check(u.recvfrom(2048)[0] == b"byebye", "byebye")
        callers[16].sendto(b"hello", dest)
        check(callers[16].recvfrom(2048)[0].startswith(b"Hello!"), "a freed line is reused")
        callers[16].sendto(b"byebye", dest)
        callers[16].recvfrom(2048)
    finally:
        for u in callers:
            u.close()


def test_more_clients_than_sockets(board):
    """Two sockets per TCP port: client 3 is refused, the two carry on, and
    the port takes a new client once one leaves."""
    first = [chat_open(board) for _ in range(2)]
    try:
        check(refused(board, TCP_CHAT), "third chat client refused")
        for s in first:
            s.sendall(b"hello\n")
            check(recv_line(s).startswith("Hello!"), "the two still served")
        first[0].sendall(b"byebye\n")
        recv_to_eof(first[0])
        first[0].close()
        chat_open(board).close()
    finally:
        for s in first:
            s.close()
    # The echo pools too (two per port).
    echoes = [accepted(board, TCP_HELLO, b"ping", until=lambda d: len(d) >= 4)[0] for _ in range(2)]
    try:
        check(refused(board, TCP_HELLO), "third echo client refused")
        for s in echoes:
            s.sendall(b"pong")
            check(recv_until(s, lambda d: len(d) >= 4, 5)[0] == b"pong", "echo")
    finally:
        for s in echoes:
            s.close()


def _reset(s):
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()


def test_client_reset_mid_session(board):
    """Clients that vanish with a RST mid-message free their sockets, and
    the other sessions carry on."""
    with chat_open(board) as keep:
        victim = chat_open(board)
        victim.sendall(b"half a mess")
        _reset(victim)
        keep.sendall(b"hello\n")
        check(recv_line(keep).startswith("Hello!"), "the other chat carries on")
        chat_open(board).close()
    # Resets in the middle of a bulk echo, then a clean echo.
    for _ in range(2):
        e, _, _ = accepted(board, TCP_HELLO, b"x", until=lambda d: len(d) >= 1)
        e.sendall(os.urandom(8192))
        _reset(e)
    e, data, _ = accepted(board, TCP_HELLO, b"after", until=lambda d: len(d) >= 5)
    e.close()
    check(data == b"after", f"echo after resets: {data!r}")
    # A login reset while its hash runs.
    lg, _ = _login_line(board, "HELP\n")
    lg.sendall("LOGIN 张三 123\n".encode())
    _reset(lg)
    check(_dict_login(board, str({"张三": "123"})) == LOGIN_OK, "login after reset")


def test_login_lockout(board, expiry=False):
    """Five failures from one address lock it out (over slirp every host
    client is 10.0.2.2, so this runs last)."""
    s, got = _login_line(board, "LOGIN 张三 wrong\n")
    with s:
        for i in range(5):
            if i:
                s.sendall("LOGIN 张三 wrong\n".encode())
                got = recv_line(s, 10)
            check(got == "ERR invalid user name or password\n", f"failure {i + 1}: {got!r}")
        s.sendall("LOGIN 张三 123\n".encode())
        got = recv_line(s, 10)
        check(got.startswith("ERR locked out"), f"locked: {got!r}")
    got = _dict_login(board, str({"张三": "123"}))
    check(got == LOGIN_LOCKED, f"dict form while locked: {got!r}")
    if expiry:
        time.sleep(61)
        got = _dict_login(board, str({"张三": "123"}))
        check(got == LOGIN_OK, f"after the lockout: {got!r}")
        return "lock lifted after 61 s"


TESTS = [
    test_tutorial_hello_tcp,
    test_tutorial_hello_udp,
    test_echo_tcp_1mib_port7,
    test_echo_tcp_1mib_port8898,
    test_echo_udp_1mib_port7,
    test_echo_udp_1mib_port9000,
    test_echo_rtt,
    test_login_tutorial_dict_form,
    test_login_bad,
    test_login_line_form,
    test_login_concurrent,
    test_chat_with_byebye,
    test_chat_tutorial_client,
    test_hotline_several_clients,
    test_hotline_more_callers_than_lines,
    test_more_clients_than_sockets,
    test_client_reset_mid_session,
    test_login_lockout,  # must stay last: it locks the host out of login
]


# ------------------------------------------------------------------- main

def free_offset():
    """An offset at which every forwarded host port is free on 127.0.0.1."""
    for _ in range(50):
        offset = random.randrange(20000, 50000, 100)
        try:
            for proto, base in ALL_PORTS:
                kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
                with socket.socket(socket.AF_INET, kind) as s:
                    s.bind((HOST, base + offset))
        except OSError:
            continue
        return offset
    raise SystemExit("harness: no free port range found")


def package_elf(board_dir):
    manifest = tomllib.loads((board_dir / "Cargo.toml").read_text())
    config = (board_dir / ".cargo" / "config.toml").read_text()
    target = re.search(r'^target\s*=\s*"([^"]+)"', config, re.M).group(1)
    return board_dir / "target" / target / "release" / manifest["package"]["name"]


class Timeout(Exception):
    pass


def main():
    here = Path(__file__).resolve().parent
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--board-dir", type=Path, default=here.parent)
    ap.add_argument("--no-build", action="store_true", help="use the ELF as built")
    ap.add_argument("-k", dest="only", help="run only tests whose name contains this")
    ap.add_argument("--lockout-expiry", action="store_true",
                    help="also wait 61 s for the login lockout to lift")
    ap.add_argument("--pcap", type=Path, help="capture the link to this file")
    ap.add_argument("--log", type=Path, help="firmware log file (default: in target/)")
    ap.add_argument("--timeout", type=float, default=300, help="whole-run limit, seconds")
    args = ap.parse_args()
    board_dir = args.board_dir.resolve()

    def on_alarm(*_):
        raise Timeout()

    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(int(args.timeout))

    if not args.no_build:
        print(f"harness: building {board_dir.name} (cargo build --release)", flush=True)
        subprocess.run(["cargo", "build", "--release"], cwd=board_dir, check=True, timeout=900)
    elf = package_elf(board_dir)
    if not elf.exists():
        raise SystemExit(f"harness: no firmware at {elf}")

    tests = [t for t in TESTS if not args.only or args.only in t.__name__]
    log_path = args.log or (elf.parent / "harness-firmware.log")
    offset = free_offset()
    passed, failed = [], []
    board = Board(board_dir, elf, offset, log_path, args.pcap)
    try:
        if not board.is_qemu():
            raise SystemExit("harness: the runner did not exec QEMU (or QEMU exited at once)")
        print(f"harness: QEMU pid {board.proc.pid}, host ports +{offset}, log {log_path}", flush=True)
        if not board.wait_log(r"node up", 20):
            print(board.log_text())
            raise SystemExit("harness: firmware did not come up")
        for test in tests:
            t = time.monotonic()
            try:
                if test is test_login_lockout:
                    note = test(board, expiry=args.lockout_expiry)
                else:
                    note = test(board)
                passed.append(test.__name__)
                extra = f" ({note})" if note else ""
                print(f"PASS {test.__name__} [{time.monotonic() - t:.2f}s]{extra}", flush=True)
            except Exception as e:  # noqa: BLE001 - a bug in a test fails that test
                if isinstance(e, Timeout):
                    raise
                failed.append(test.__name__)
                print(f"FAIL {test.__name__}: {type(e).__name__}: {e}", flush=True)
            if not board.alive():
                failed.append("firmware exited")
                print("FAIL firmware exited during the run", flush=True)
                break
        # The firmware logs its stack high-water mark once a second when it
        # has grown: let the last report come out.
        time.sleep(1.5)
    except Timeout:
        failed.append("timeout")
        print(f"FAIL whole run exceeded {args.timeout}s", flush=True)
    finally:
        signal.alarm(0)
        board.stop()

    log = Path(log_path).read_text(errors="replace")
    bad = [l for l in log.splitlines() if l.startswith(("ERROR", "panic"))]
    if bad:
        failed.append("firmware errors")
        print("FAIL firmware logged errors:\n  " + "\n  ".join(bad[:10]))
    stack = re.findall(r"stack: deepest use (\d+) of (\d+) bytes", log)
    if stack:
        used, size = stack[-1]
        print(f"harness: stack high-water {used} of {size} bytes (headroom {int(size) - int(used)})")
    print(f"{len(passed)} passed, {len(failed)} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
