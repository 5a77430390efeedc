"""Forged Ethernet frames for host-sim/tests/hostile.rs.

Written with an AF_PACKET socket to the namespace's end of tap0, so they
reach `host-sim serve` exactly as built: truncated, oversized, with bad
checksums, nonsense header fields, or forged resets. Run it only inside
the test's network namespace (the test does).

    python3 hostile_frames.py malformed SEED SECONDS MAX_FRAMES
    python3 hostile_frames.py rst SEED SECONDS MAX_FRAMES

Bounded in count and time: at most MAX_FRAMES frames, for at most SECONDS,
paced in bursts so the TAP queue never overflows (a dropped frame of the
well-behaved client would measure the queue, not the device). Prints
`key=value` lines for the test to read.
"""

import random
import socket
import struct
import sys
import time

IFACE = "tap0"
DEV_MAC = bytes.fromhex("020000000001")  # host-sim serve's MAC
BROADCAST = b"\xff" * 6
DEV_IP = socket.inet_aton("192.168.69.1")
HOST_IP = socket.inet_aton("192.168.69.100")
# An address nobody in the namespace has: the device's answers to it wait
# for an ARP reply that never comes.
SPOOF_IP = socket.inet_aton("192.168.69.105")
# Ports the forged segments come from: below Linux's ephemeral range
# (32768-60999), so they never collide with a real client's connection.
FORGED_PORTS = (1024, 32767)
# Ports the well-behaved client uses; forged resets stay off them.
SERVICE_PORTS = [7, 8081, 8083]
BURST = 32
PAUSE = 0.002

MY_MAC = bytes.fromhex(open(f"/sys/class/net/{IFACE}/address").read().strip().replace(":", ""))


def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def eth(payload, dst=DEV_MAC, ethertype=0x0800):
    return dst + MY_MAC + struct.pack("!H", ethertype) + payload


def ipv4(proto, payload, src=HOST_IP, dst=DEV_IP, *, ttl=64, frag=0x4000, total=None,
         ihl=5, version=4, options=b"", bad_csum=False):
    if total is None:
        total = 20 + len(options) + len(payload)
    hdr = struct.pack("!BBHHHBBH4s4s", (version << 4) | (ihl & 15), 0, total & 0xFFFF,
                      random.getrandbits(16), frag, ttl, proto, 0, src, dst) + options
    c = csum(hdr) ^ (0x00FF if bad_csum else 0)
    return hdr[:10] + struct.pack("!H", c) + hdr[12:] + payload


def tcp(sport, dport, flags, *, seq=0, ack=0, payload=b"", options=b"", src=HOST_IP,
        dst=DEV_IP, doff=None, bad_csum=False, window=64240, urg=0):
    options += b"\0" * (-len(options) % 4)
    if doff is None:
        doff = (20 + len(options)) // 4
    seg = struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF,
                      (doff & 15) << 4, flags, window, 0, urg) + options + payload
    c = csum(src + dst + struct.pack("!BBH", 0, 6, len(seg)) + seg) ^ (0x00FF if bad_csum else 0)
    return seg[:16] + struct.pack("!H", c) + seg[18:]


def udp(sport, dport, payload, *, src=HOST_IP, dst=DEV_IP, bad_csum=False, length=None):
    if length is None:
        length = 8 + len(payload)
    dgram = struct.pack("!HHHH", sport, dport, length & 0xFFFF, 0) + payload
    c = csum(src + dst + struct.pack("!BBH", 0, 17, len(dgram)) + dgram) or 0xFFFF
    if bad_csum:
        # Wrong, and never 0 (which would mean "no checksum").
        c = (c ^ 0x00FF) or 0x1234
    return dgram[:6] + struct.pack("!H", c) + dgram[8:]


FIN, SYN, RST, PSH, ACK, URG = 1, 2, 4, 8, 16, 32


def forged_port():
    return random.randint(*FORGED_PORTS)


def syn(dport=7, **kw):
    return tcp(forged_port(), dport, SYN, seq=random.getrandbits(32), **kw)


def malformed_frames():
    """A fixed catalogue of broken frames, then random ones, forever."""
    good_syn = ipv4(6, syn())
    good_udp = ipv4(17, udp(forged_port(), 9000, b"x" * 32))
    good_icmp = ipv4(1, b"\x08\0" + struct.pack("!H", csum(b"\x08\0\0\0" + b"ping")) + b"\0\0\0\0ping")
    # Truncated: every prefix of a valid SYN, UDP datagram and ping.
    for pkt in (good_syn, good_udp, good_icmp):
        frame = eth(pkt)
        for n in range(len(frame)):
            yield frame[:n]
    # IPv4 header fields out of range.
    for version in (0, 4, 5, 6, 15):
        for ihl in range(16):
            if (version, ihl) != (4, 5):
                yield eth(ipv4(6, syn(), version=version, ihl=ihl))
    for total in (0, 1, 19, 20, 21, 39, 40, 41, 1500, 65535):
        yield eth(ipv4(6, syn(), total=total))
        yield eth(ipv4(17, udp(forged_port(), 9000, b"y" * 16), total=total))
    for frag in (0x2000, 0x2001, 0x0001, 0x1FFF, 0x3FFF, 0x8000):  # MF, offsets, reserved bit
        yield eth(ipv4(17, udp(forged_port(), 9000, b"frag"), frag=frag))
    for ttl in (0, 1, 255):
        yield eth(ipv4(6, syn(), ttl=ttl))
    for proto in (0, 2, 41, 58, 132, 253, 255):
        yield eth(ipv4(proto, b"\0" * 40))
    yield eth(ipv4(6, syn(), options=b"\x07\x27" + b"\0" * 2, ihl=6))  # record route, lying length
    yield eth(ipv4(6, syn(), options=b"\x44\x00\x00\x00", ihl=6))       # timestamp, length 0
    # Odd source and destination addresses (all answered at most harmlessly).
    for src in ("192.168.69.1", "0.0.0.0", "255.255.255.255", "224.0.0.1", "127.0.0.1", "192.168.69.255"):
        yield eth(ipv4(6, syn(src=socket.inet_aton(src)), src=socket.inet_aton(src)))
    for dst in ("192.168.69.255", "255.255.255.255", "224.0.0.1", "192.168.69.2", "10.0.0.1"):
        d = socket.inet_aton(dst)
        yield eth(ipv4(6, syn(dst=d), dst=d))
        yield eth(ipv4(17, udp(forged_port(), 8086, b"hi", dst=d), dst=d), dst=BROADCAST)
    # Bad checksums on every protocol.
    yield eth(ipv4(6, syn(), bad_csum=True))
    yield eth(ipv4(6, syn(bad_csum=True)))
    yield eth(ipv4(17, udp(forged_port(), 9000, b"bad", bad_csum=True)))
    yield eth(ipv4(17, udp(forged_port(), 8086, b"bad", bad_csum=True)))
    yield eth(ipv4(1, b"\x08\0\x12\x34\0\0\0\0ping"))
    # UDP length fields that lie.
    for length in (0, 1, 7, 9, 100, 65535):
        yield eth(ipv4(17, udp(forged_port(), 9000, b"z" * 16, length=length)))
    # TCP: every data offset, every flag combination, broken options.
    for doff in range(16):
        if doff != 5:
            yield eth(ipv4(6, syn(doff=doff)))
    for flags in range(256):
        yield eth(ipv4(6, tcp(forged_port(), random.choice(SERVICE_PORTS), flags,
                              seq=random.getrandbits(32), ack=random.getrandbits(32),
                              payload=b"data" if flags & 1 else b"", urg=0xFFFF)))
    for opts in (b"\x02\x00", b"\x02\x01", b"\x02\xff\x05\xb4", b"\x02\x04\x00\x00",
                 b"\x03\x03\xff", b"\x03\x00", b"\x04\x00", b"\x04\x03", b"\x05\x01",
                 b"\x05\x0a" + b"\xff" * 8, b"\x08\x03\x00", b"\x08\x0a" + b"\0" * 7,
                 b"\xfe\x02", b"\xfe\xff", b"\x01" * 40, b"\x00" * 40, b"\x02" * 40):
        yield eth(ipv4(6, syn(options=opts[:40])))
    # Not IPv4 at all.
    for ethertype in (0x0000, 0x05DC, 0x0806, 0x86DD, 0x8100, 0x88CC, 0x88A8, 0xFFFF):
        yield eth(bytes(random.getrandbits(8) for _ in range(46)), ethertype=ethertype)
    arp = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 1, MY_MAC, SPOOF_IP, b"\0" * 6, DEV_IP)
    for n in range(len(arp)):
        yield eth(arp[:n], ethertype=0x0806)
    for hlen, plen, op in ((0, 4, 1), (6, 0, 1), (255, 255, 1), (6, 4, 0), (6, 4, 99), (6, 16, 1)):
        yield eth(struct.pack("!HHBBH", 1, 0x0800, hlen, plen, op) + b"\0" * 40, ethertype=0x0806)
    # Oversized: larger than the device's 1514-byte frames (the test raises
    # tap0's MTU on the namespace's side, so the kernel lets them through).
    for size in (1515, 1600, 4000, 9000):
        payload = b"o" * (size - 14 - 20 - 8)
        yield eth(ipv4(17, udp(forged_port(), 9000, payload)))
        yield eth(ipv4(6, tcp(forged_port(), 7, SYN | ACK, payload=payload[:size - 54])))
        yield eth(bytes(random.getrandbits(8) for _ in range(size - 14)))
    # Then random garbage: a valid Ethernet header, mostly IPv4, random rest.
    while True:
        n = random.randint(0, 1500)
        body = random.getrandbits(8 * n).to_bytes(n, "big") if n else b""
        kind = random.random()
        if kind < 0.4 and n >= 20:
            # A plausible IPv4 header over random bytes: gets further in.
            body = ipv4(random.choice((1, 6, 17)), body[20:], total=random.choice((None, n, random.getrandbits(16))))
        elif kind < 0.6 and n >= 40:
            body = ipv4(6, tcp(forged_port(), random.choice(SERVICE_PORTS), random.getrandbits(8),
                               seq=random.getrandbits(32), ack=random.getrandbits(32),
                               payload=body[40:], options=body[20:20 + random.randint(0, 20)]))
        yield eth(body, ethertype=0x0800 if kind < 0.9 else random.getrandbits(16))


def rst_frames():
    """Groups of forged resets: to listening ports and to connections that do not
    exist, from a real and a forged address; and SYN-then-RST pairs that
    open a half-open connection on the device and abort it at once."""
    while True:
        src = random.choice((HOST_IP, SPOOF_IP))
        dport = random.choice(SERVICE_PORTS)
        flags = random.choice((RST, RST | ACK, RST | PSH | ACK, RST | FIN, RST | SYN))
        yield [eth(ipv4(6, tcp(forged_port(), dport, flags, seq=random.getrandbits(32),
                               ack=random.getrandbits(32), src=src), src=src))]
        # The pair: the RST carries exactly the sequence number the device
        # expects next, so it is accepted and frees the half-open socket.
        sport, isn = forged_port(), random.getrandbits(32)
        yield [
            eth(ipv4(6, tcp(sport, dport, SYN, seq=isn, src=SPOOF_IP), src=SPOOF_IP)),
            eth(ipv4(6, tcp(sport, dport, RST, seq=isn + 1, src=SPOOF_IP), src=SPOOF_IP)),
        ]


def blast(groups, seconds, max_frames):
    """Sends the frames of `groups` (lists of frames that belong together,
    such as a SYN and its RST), stopping between groups: a bound that cut a
    pair in half would leave a half-open connection behind on purpose."""
    out = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    out.bind((IFACE, 0))
    sent = refused = 0
    deadline = time.monotonic() + seconds
    for group in groups:
        if sent + refused + len(group) > max_frames or time.monotonic() >= deadline:
            break
        for frame in group:
            try:
                out.send(frame)
                sent += 1
            except OSError:
                # The kernel refuses some (e.g. shorter than an Ethernet header).
                refused += 1
            if (sent + refused) % BURST == 0:
                time.sleep(PAUSE)
    out.close()
    print(f"sent={sent}")
    print(f"refused_by_kernel={refused}")


def udp_controls():
    """A datagram with a bad checksum must not be echoed; the same one with
    a good checksum must be (so the forged path itself works)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("192.168.69.100", 0))
    sock.settimeout(0.3)
    port = sock.getsockname()[1]
    out = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    out.bind((IFACE, 0))

    def echoed(frame, tries):
        for _ in range(tries):
            out.send(frame)
            try:
                return sock.recv(2048)
            except socket.timeout:
                pass
        return None

    bad = [
        eth(ipv4(17, udp(port, 9000, b"bad udp checksum", bad_csum=True))),
        eth(ipv4(17, udp(port, 9000, b"bad ip checksum"), bad_csum=True)),
        eth(ipv4(17, udp(port, 9000, b"udp length lies", length=200))),
        eth(ipv4(17, udp(port, 9000, b"ip length lies"), total=200)),
    ]
    print(f"udp_bad_echoed={sum(echoed(f, 1) is not None for f in bad)}")
    print(f"udp_good_echoed={int(echoed(eth(ipv4(17, udp(port, 9000, b'good'))), 3) == b'good')}")


def tcp_controls():
    """A SYN with a bad checksum must not be answered; with a good one it
    must be, with a SYN-ACK (the kernel then resets it: the port is ours
    but not listening, so the device's socket is freed at once)."""
    holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    holder.bind(("192.168.69.100", 0))
    port = holder.getsockname()[1]
    sniff = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0800))
    sniff.bind((IFACE, 0x0800))
    sniff.settimeout(0.05)

    def answered(frame, tries):
        for _ in range(tries):
            sniff.send(frame)
            until = time.monotonic() + 0.3
            while time.monotonic() < until:
                try:
                    got = sniff.recv(2048)
                except socket.timeout:
                    continue
                if got[6:12] != DEV_MAC or len(got) < 54 or got[23] != 6:
                    continue
                sp, dp = struct.unpack("!HH", got[34:38])
                if sp == 7 and dp == port and got[47] & (SYN | ACK) == SYN | ACK:
                    return True
        return False

    isn = random.getrandbits(32)
    print(f"tcp_bad_answered={int(answered(eth(ipv4(6, tcp(port, 7, SYN, seq=isn, bad_csum=True))), 1))}")
    print(f"tcp_good_answered={int(answered(eth(ipv4(6, tcp(port, 7, SYN, seq=isn))), 3))}")
    holder.close()


def main():
    mode, seed, seconds, max_frames = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
    random.seed(seed)
    if mode == "malformed":
        blast(([frame] for frame in malformed_frames()), seconds, max_frames)
        udp_controls()
        tcp_controls()
    elif mode == "rst":
        blast(rst_frames(), seconds, max_frames)
    else:
        sys.exit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    main()
