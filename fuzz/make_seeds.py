#!/usr/bin/env python3
"""Writes the seed corpora in fuzz/seeds/<target>/ from real traffic.

    python3 fuzz/make_seeds.py                 # runs the demo with --pcap
    python3 fuzz/make_seeds.py --pcap FILE     # or reads a capture

The demo (`host-sim demo --pcap`) runs one session of every service on the
simulated network. From its capture this writes, in the fuzz targets'
script format (fuzz/src/script.rs):

- node_frames: the client side of every connection and datagram exchange
  as one seed each (frames with the capture's timing), and single frames
  of each kind;
- login_request, chat_framing: the client's TCP payloads to 8083 and 8081,
  segment by segment, with the capture's pauses (the chat's quiet gap) and
  the client's FIN;
- hotline: the datagrams to 8086 from each caller.

Plus hand-written seeds: the tutorial's requests, code-like dicts, escapes,
long lines, lockout, idle timeouts, a full hotline, a SYN flood. Seeds are
replaced, never merged: the directories are rewritten whole. Only the
standard library is used.
"""

import argparse
import os
import shutil
import struct
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SEEDS = os.path.join(ROOT, "fuzz", "seeds")

DEVICE_MAC = bytes([2, 0, 0, 0, 0, 1])
DEVICE_IP = bytes([192, 168, 69, 1])
LOGIN, CHAT, HOTLINE = 8083, 8081, 8086
# node_frames tag bits: address the frame, fix TCP numbers, fill checksums.
ADDRESS, SEQUENCE, CHECKSUM = 8, 16, 32
HELPED = ADDRESS | SEQUENCE | CHECKSUM
# Events of the targets (fuzz/src/*.rs).
FIN_EVENT = 0  # login, chat: the client closes
RECONNECT = 2  # login, chat: the next client connects
OPERATOR_REPLY = 1  # chat
OPERATOR_MODE = 0  # hotline
NODE_HOLD = 1  # node: deliver the next frames in one poll
MAX_NODE_SEED = 16 * 1024


class Script:
    """The inverse of fuzz/src/script.rs."""

    def __init__(self):
        self.b = bytearray()

    def data(self, tag, payload):
        assert tag < 64
        if len(payload) < 256:
            self.b += bytes([tag << 2, len(payload)])
        else:
            assert len(payload) < 65536
            self.b += bytes([(tag << 2) | 3]) + struct.pack(">H", len(payload))
        self.b += payload
        return self

    def wait_ms(self, ms):
        ms = int(ms)
        for unit, per in ((3, 60000), (2, 1000), (1, 10), (0, 1)):
            while ms >= per:
                n = min(ms // per, 255)
                self.b += bytes([(unit << 2) | 1, n])
                ms -= n * per
        return self

    def event(self, tag, arg=0):
        self.b += bytes([(tag << 2) | 2, arg])
        return self


def read_pcap(path):
    d = open(path, "rb").read()
    magic = struct.unpack("<I", d[:4])[0]
    assert magic == 0xA1B2C3D4, "not a little-endian microsecond pcap"
    off, frames = 24, []
    while off + 16 <= len(d):
        sec, usec, incl, _ = struct.unpack("<IIII", d[off:off + 16])
        off += 16
        frames.append((sec * 1_000_000 + usec, d[off:off + incl]))
        off += incl
    return frames


def parse(frame):
    """(kind, fields) of an Ethernet frame: kind is 'tcp', 'udp', 'arp' or
    'other'."""
    if len(frame) < 14:
        return "other", {}
    ethertype = frame[12:14]
    if ethertype == b"\x08\x06":
        return "arp", {}
    if ethertype != b"\x08\x00" or len(frame) < 34:
        return "other", {}
    ihl = (frame[14] & 15) * 4
    total = struct.unpack(">H", frame[16:18])[0]
    ip = frame[14:14 + total]
    proto = ip[9]
    l4 = ip[ihl:]
    f = {"src": ip[12:16], "dst": ip[16:20]}
    if proto == 6 and len(l4) >= 20:
        f["sport"], f["dport"], f["seq"] = struct.unpack(">HHI", l4[:8])
        f["flags"] = l4[13]
        f["payload"] = l4[(l4[12] >> 4) * 4:]
        return "tcp", f
    if proto == 17 and len(l4) >= 8:
        f["sport"], f["dport"] = struct.unpack(">HH", l4[:4])
        f["payload"] = l4[8:]
        return "udp", f
    return "other", f


def peer_of(frame):
    """The peer index the node target gives a client's frames."""
    return frame[11] & 7


def conversations(frames):
    """Client frames grouped by connection (TCP) or caller (UDP), each a
    list of (time, frame, kind, fields), in capture order."""
    convs = {}
    for t, fr in frames:
        if fr[6:12] == DEVICE_MAC:
            continue
        kind, f = parse(fr)
        if kind in ("tcp", "udp"):
            key = (kind, f["src"], f["sport"], f["dport"])
        else:
            key = (kind, fr[6:12])
        convs.setdefault(key, []).append((t, fr, kind, f))
    return convs


def stream_script(conv, tag=0):
    """A client's TCP payloads as a script: one data step per new segment,
    the capture's pauses between them, a FIN event if it closed."""
    s = Script()
    last_t, next_seq = None, None
    for t, _, _, f in conv:
        if last_t is not None:
            s.wait_ms((t - last_t) / 1000)
        last_t = t
        payload = f["payload"]
        if payload and (next_seq is None or f["seq"] >= next_seq):
            s.data(tag, payload)
            next_seq = f["seq"] + len(payload)
        if f["flags"] & 1:
            s.event(FIN_EVENT)
            break
    return s.b


def node_script(conv):
    s = Script()
    last_t = None
    for t, fr, _, _ in conv:
        if len(s.b) + len(fr) > MAX_NODE_SEED:
            break
        if last_t is not None:
            s.wait_ms((t - last_t) / 1000)
        last_t = t
        s.data(HELPED | peer_of(fr), fr)
    return s.b


def ipv4_frame(k, proto, l4):
    """An IPv4 frame from node peer k to the device; the target fills in
    the checksums (tag bit CHECKSUM)."""
    ip = bytes([0x45, 0]) + struct.pack(">H", 20 + len(l4)) + bytes(
        [0, 1, 0x40, 0, 64, proto, 0, 0]) + bytes([192, 168, 69, 100 + k]) + DEVICE_IP
    return DEVICE_MAC + bytes([2, 0, 0, 0, 1, k]) + b"\x08\x00" + ip + l4


def tcp_segment(k, sport, dport, flags, payload=b"", seq=0x1000_0000):
    l4 = struct.pack(">HHII", sport, dport, seq, 0) + bytes([0x50, flags]) + \
        struct.pack(">HHH", 0xFFFF, 0, 0) + payload
    return ipv4_frame(k, 6, l4)


def udp_datagram(k, sport, dport, payload):
    return ipv4_frame(k, 17, struct.pack(">HHHH", sport, dport, 8 + len(payload), 0) + payload)


def hand_written():
    """Seeds no capture has: {target: {name: bytes}}."""
    seeds = {t: {} for t in ("login_request", "chat_framing", "hotline", "node_frames")}
    login = seeds["login_request"]
    for name, text in [
        ("tutorial_dict", "{'张三': '123'}"),
        ("tutorial_dict_wrong", "{'张三': '124'}"),
        ("dict_double_quotes", '{"赵四": "345"}'),
        ("dict_spaces_comma", "  {\t'王八' :\r\n '567' , }"),
        ("dict_code", "{'a': __import__('os').system('x')}"),
        ("dict_escapes", r"{'\x41\u5f20\U0001f600': '\101\n\t\\\'\"\q'}"),
        ("dict_quote_mix", """{"it's": 'say "hi"'}"""),
        ("dict_nested", "{'a': {'b': 'c'}}"),
        ("dict_two_entries", "{'a': 'b', 'c': 'd'}"),
        ("dict_braces_in_strings", "{'}': '{'}"),
        ("line_login", "LOGIN 张三 123\n"),
        ("line_login_crlf_wrong", "login 赵四 000\r\n"),
        ("line_commands", "HELP\nWHOAMI\nLOGIN 王八 567\nWHOAMI\nLOGOUT\nQUIT\n"),
        ("line_bad", b"LOGIN\nLOGIN a b c\nhello\n\xff\n"),
        ("auth_proof", "AUTH 张三 abcdefgh\nPROOF " + "ab" * 32 + "\n"),
        ("proof_first", "PROOF " + "00" * 32 + "\nAUTH u short\n"),
    ]:
        s = Script().data(0, text if isinstance(text, bytes) else text.encode())
        login[name] = bytes(s.event(FIN_EVENT).b)
    login["long_line"] = bytes(Script().data(0, b"LOGIN " + b"x" * 300 + b"\n")
                               .data(0, b"WHOAMI\n").b)
    login["long_dict"] = bytes(Script().data(0, b"{'" + b"y" * 300 + b"': '1'}").b)
    s = Script()
    for _ in range(6):
        s.data(0, "LOGIN 张三 wrong\n".encode())
    s.data(0, "LOGIN 张三 123\n".encode()).wait_ms(61_000).data(0, "LOGIN 张三 123\n".encode())
    login["lockout"] = bytes(s.b)
    login["idle"] = bytes(Script().data(0, b"LOG").wait_ms(301_000).b)
    s = Script().event(1, 0)  # hash budget of 1 iteration per poll
    s.data(0, "{'张三'".encode()).wait_ms(5).data(0, ": '123'}".encode()).wait_ms(5)
    s.event(RECONNECT, 3).data(0, "LOGIN 赵四 345\nQUIT\n".encode())
    login["chunks_budget_reconnect"] = bytes(s.b)

    chat = seeds["chat_framing"]
    chat["line_client"] = bytes(Script().data(0, b"hi\n").data(0, b"help\r\n")
                                .data(0, "你好 sb 傻逼\n".encode()).data(0, b"byebye\n").b)
    chat["tutorial_client"] = bytes(Script().data(0, b"hello").wait_ms(40)
                                    .data(0, "你好".encode()).wait_ms(40).data(0, b"byebye").wait_ms(40).b)
    chat["long_and_bad"] = bytes(Script().data(0, b"a" * 255).data(0, b"b" * 10 + b"\r\n")
                                 .data(0, b"\xff\xfe\n").data(0, b"c" * 256 + b"\r\n").b)
    chat["exact_limit"] = bytes(Script().data(0, b"d" * 256 + b"\n").data(0, b"e" * 257 + b"\n").b)
    chat["cr_then_quiet"] = bytes(Script().data(0, b"x\r").wait_ms(31).data(0, b"\n").b)
    s = Script().event(RECONNECT, 1).data(0, b"anyone?\n").data(0, b"more\n")
    s.event(OPERATOR_REPLY, 1).event(OPERATOR_REPLY, 0).event(OPERATOR_REPLY, 2)
    chat["operator"] = bytes(s.b)
    chat["idle"] = bytes(Script().data(0, b"half").wait_ms(301_000).b)
    chat["window"] = bytes(Script().event(3, 5).data(0, b"help\n").data(0, b"hours\n").b)

    hot = seeds["hotline"]
    s = Script()
    for tag in range(17):
        s.data(tag, b"hi")
    s.data(16, b"still there?").data(0, b"byebye").data(16, b"hi")
    hot["full_table"] = bytes(s.b)
    hot["expiry"] = bytes(Script().data(1, b"hello").wait_ms(60_000).data(2, b"hours")
                          .wait_ms(61_000).data(1, b"again").wait_ms(120_000).b)
    hot["bad_datagrams"] = bytes(Script().data(3, b"\xff").data(3, b"a" * 257)
                                 .data(3, b"").data(3, b"  byebye \n").b)
    hot["operator"] = bytes(Script().event(OPERATOR_MODE, 1).data(4, b"help me")
                            .data(5, "傻逼".encode()).event(1, 0).event(1, 1)
                            .event(OPERATOR_MODE, 0).data(4, b"hi").b)

    node = seeds["node_frames"]
    icmp = bytes([8, 0, 0, 0, 0, 1, 0, 1]) + b"ping"
    node["icmp_echo"] = bytes(Script().data(HELPED | 2, ipv4_frame(2, 1, icmp)).b)
    arp = b"\xff" * 6 + bytes([2, 0, 0, 0, 1, 3]) + b"\x08\x06" + bytes(
        [0, 1, 8, 0, 6, 4, 0, 1, 2, 0, 0, 0, 1, 3, 192, 168, 69, 103]) + bytes(6) + DEVICE_IP
    node["arp_request"] = bytes(Script().data(HELPED | 3, arp).b)
    s = Script()
    for i in range(4):
        s.data(HELPED | 4, tcp_segment(4, 50000 + i, LOGIN, 0x02))
    s.wait_ms(1000)
    node["syn_flood_login"] = bytes(s.b)
    s = Script().event(NODE_HOLD, 1)
    s.data(HELPED | 5, tcp_segment(5, 50100, CHAT, 0x02)).event(2, 1)
    s.event(NODE_HOLD, 0).wait_ms(1000)
    node["duplicate_syn"] = bytes(s.b)
    s = Script()
    for i in range(17):
        s.data(HELPED | (i % 7), udp_datagram(i % 7, 40000 + i, HOTLINE, b"hi"))
    node["hotline_full"] = bytes(s.b)
    s = Script().data(HELPED | 6, tcp_segment(6, 50200, LOGIN, 0x02)).wait_ms(5)
    s.data(HELPED | 6, tcp_segment(6, 50200, LOGIN, 0x10, seq=0x1000_0001))
    s.data(HELPED | 6, tcp_segment(6, 50200, LOGIN, 0x18, "{'张三': '123'}".encode(), 0x1000_0001))
    s.wait_ms(100).data(HELPED | 6, tcp_segment(6, 50200, LOGIN, 0x11, seq=0x1000_0001 + 16))
    node["login_dict_handshake"] = bytes(s.b)
    node["off_subnet_syn"] = bytes(Script().data(ADDRESS | CHECKSUM | 7,
                                                 tcp_segment(0, 50300, 7, 0x02)).b)
    return seeds


def from_capture(frames):
    seeds = {t: {} for t in ("login_request", "chat_framing", "hotline", "node_frames")}
    convs = conversations(frames)
    kinds_seen = set()
    for key, conv in convs.items():
        kind = key[0]
        if kind == "tcp":
            _, src, sport, dport = key
            name = f"demo_tcp_{dport}_from_{src[3]}_{sport}"
            seeds["node_frames"][name] = node_script(conv)
            if dport == LOGIN:
                seeds["login_request"][name] = stream_script(conv)
            elif dport == CHAT:
                seeds["chat_framing"][name] = stream_script(conv)
        elif kind == "udp":
            _, src, sport, dport = key
            seeds["node_frames"][f"demo_udp_{dport}_from_{src[3]}_{sport}"] = node_script(conv)
        else:
            seeds["node_frames"][f"demo_{kind}_{conv[0][1][11]}"] = node_script(conv[:4])
        # Single frames, one of each kind: protocol, port, flags, has data.
        for _, fr, k, f in conv:
            flags = "".join(n for bit, n in ((2, "syn"), (1, "fin"), (4, "rst"), (8, "psh"),
                                             (16, "ack")) if f.get("flags", 0) & bit)
            sig = "_".join(str(x) for x in (k, f.get("dport"), flags,
                                             "data" if f.get("payload") else "") if x)
            if sig not in kinds_seen and len(fr) <= 1514:
                kinds_seen.add(sig)
                seeds["node_frames"][f"frame_{sig}"] = bytes(
                    Script().data(HELPED | peer_of(fr), fr).b)
    # The hotline's callers, in the order they called, with the capture's
    # pauses; the tag picks a distinct caller per client endpoint.
    s, callers, last_t = Script(), {}, None
    for t, fr in frames:
        kind, f = parse(fr)
        if kind != "udp" or f["dport"] != HOTLINE or fr[6:12] == DEVICE_MAC:
            continue
        ep = (f["src"], f["sport"])
        tag = callers.setdefault(ep, (f["src"][3] - 100) % 8 + 8 * (len(callers) % 8))
        if last_t is not None:
            s.wait_ms((t - last_t) / 1000)
        last_t = t
        s.data(tag, f["payload"])
    if s.b:
        seeds["hotline"]["demo_callers"] = bytes(s.b)
    return seeds


def write(seeds):
    for target, files in seeds.items():
        d = os.path.join(SEEDS, target)
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
        for name, data in sorted(files.items()):
            with open(os.path.join(d, name), "wb") as f:
                f.write(data)
        print(f"{target}: {len(files)} seeds, {sum(map(len, files.values()))} bytes")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pcap", help="read this capture instead of running the demo")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        pcap = args.pcap
        if pcap is None:
            pcap = os.path.join(tmp, "demo.pcap")
            subprocess.run(["cargo", "run", "-q", "-p", "host-sim", "--", "demo", "--pcap", pcap],
                           cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
        captured = from_capture(read_pcap(pcap))
    seeds = hand_written()
    for target, files in captured.items():
        seeds[target].update(files)
    write(seeds)


if __name__ == "__main__":
    sys.exit(main())
