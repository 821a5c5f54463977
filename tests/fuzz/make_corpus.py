#!/usr/bin/env python3
"""Writes the seed corpus for the fuzz targets (tests/fuzz/corpus/<target>/).

Seeds are well-formed starting points the fuzzer mutates: a driver that
probes and sends a frame, one that uses an indirect table, a looping chain,
an avail-index jump. Run it again after changing an input format.
"""
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
from inet_checksum import inet_checksum  # noqa: E402
BASE = 0x10000


def desc(addr, length, flags=0, nxt=0):
    return struct.pack("<QIHH", addr, length, flags, nxt)


def poke(offset, data):
    out = b""
    for i in range(0, len(data), 255):  # one poke carries at most 255 bytes
        chunk = data[i:i + 255]
        out += bytes([2]) + struct.pack("<HB", offset + i, len(chunk)) + chunk
    return out


def probe(features=0xFFFFFFFFFFFFFFFF, exp=8):
    return bytes([7]) + struct.pack("<QB", features, exp)


FRAME = b"\xff" * 6 + b"\x02\x00\x00\x00\x00\x01" + b"\x88\xb5" + bytes(range(46))
HDR = bytes(12)


def rx_buffer():
    return poke(0x0000, desc(BASE + 0xA000, 2048, 2)) + poke(0x1000, struct.pack("<HHH", 0, 1, 0))


def mmio_seeds():
    tx_avail = poke(0x5000, struct.pack("<HHH", 0, 1, 0))
    frame = poke(0x8000, HDR + FRAME)
    yield "send_one", probe() + rx_buffer() + frame + poke(0x4000, desc(BASE + 0x8000, 72)) + tx_avail + bytes([3])
    yield "split_header", (probe() + rx_buffer() + frame +
                           poke(0x4000, desc(BASE + 0x8000, 5, 1, 1) + desc(BASE + 0x8005, 67)) + tx_avail + bytes([3]))
    yield "indirect", (probe() + rx_buffer() + frame + poke(0x4000, desc(BASE + 0x9000, 32, 4)) +
                       poke(0x9000, desc(BASE + 0x8000, 12, 1, 1) + desc(BASE + 0x800C, 60)) + tx_avail + bytes([3]))
    yield "loop", (probe() + frame + poke(0x4000, desc(BASE + 0x8000, 12, 1, 1) + desc(BASE + 0x800C, 60, 1, 0)) +
                   tx_avail + bytes([3]))
    yield "avail_jump", probe() + poke(0x5000, struct.pack("<HH", 0, 700)) + bytes([3, 4])
    yield "no_version1_then_reset", (bytes([0]) + struct.pack("<HI", 0x70, 1) + bytes([0]) + struct.pack("<HI", 0x70, 3) +
                                     bytes([0]) + struct.pack("<HI", 0x70, 11) + bytes([0]) + struct.pack("<HI", 0x70, 0))
    yield "link_and_config", probe() + bytes([6, 1]) + struct.pack("<HB", 0x100, 8) + bytes([6, 1]) + struct.pack("<HB", 0xFC, 4)
    yield "notify_early", bytes([3, 4, 8]) + struct.pack("<I", 0xFFFFFFFF)


def chain_seeds():
    def seed(exp, flags, head, table):
        return bytes([exp, flags]) + struct.pack("<H", head) + table
    yield "single", seed(8, 1, 0, desc(BASE + 0x8000, 100))
    yield "chain3", seed(8, 1, 0, desc(BASE + 0x8000, 12, 1, 1) + desc(BASE + 0x800C, 100, 1, 2) + desc(BASE + 0x9000, 2048, 2))
    yield "indirect", seed(8, 1, 0, desc(BASE + 0x8000, 48, 4) + b"\0" * (0x8000 - 32) +
                           desc(BASE + 0x9000, 12, 1, 1) + desc(BASE + 0x900C, 60, 1, 2) + desc(BASE + 0xA000, 1500, 2))
    yield "loop", seed(4, 0, 0, desc(BASE + 0x8000, 1, 1, 1) + desc(BASE + 0x8000, 1, 1, 0))
    yield "nested", seed(8, 1, 0, desc(BASE + 0x8000, 16, 4) + b"\0" * (0x8000 - 16) + desc(BASE + 0x8000, 16, 4))


def vu_msg(req, payload=b"", need_reply=False, fd=False):
    return bytes([req, (1 if need_reply else 0) | (2 if fd else 0)]) + struct.pack("<H", len(payload)) + payload


def vhost_user_seeds():
    uva = 0x7F0000000000
    table = struct.pack("<II", 1, 0) + struct.pack("<QQQQ", 0, 1 << 20, uva, 0)
    start = (vu_msg(1) + vu_msg(2, struct.pack("<Q", (1 << 32) | (1 << 30) | (1 << 29) | (1 << 28) | (1 << 5))) +
             vu_msg(15) + vu_msg(16, struct.pack("<Q", 0x22B)) + vu_msg(3) + vu_msg(5, table, fd=True))
    for q in (0, 1):
        base = uva + 0x10000 * (q + 1)
        start += vu_msg(8, struct.pack("<II", q, 256))
        start += vu_msg(9, struct.pack("<IIQQQQ", q, 0, base, base + 0x2000, base + 0x1000, 0))
        start += vu_msg(10, struct.pack("<II", q, 0))
        start += vu_msg(12, struct.pack("<Q", q), fd=True) + vu_msg(13, struct.pack("<Q", q), fd=True)
        start += vu_msg(18, struct.pack("<II", q, 1))
    yield "qemu_start", start + bytes([0xF1, 0, 0, 0])
    yield "get_config", vu_msg(24, struct.pack("<III", 0, 6, 0) + bytes(6))
    yield "reply_ack", vu_msg(16, struct.pack("<Q", 8)) + vu_msg(8, struct.pack("<II", 9, 256), need_reply=True)
    yield "stop", start + vu_msg(11, struct.pack("<II", 1, 0))


GUEST_MAC = bytes([2, 0, 0, 0, 0, 1])
BCAST = b"\xff" * 6


def udp_frame(src, dst, sport, dport, payload):
    ulen = 8 + len(payload)
    pseudo = src + dst + struct.pack("!BBH", 0, 17, ulen)
    udp = struct.pack("!HHHH", sport, dport, ulen, 0) + payload
    udp = udp[:6] + struct.pack("!H", inet_checksum(pseudo + udp) or 0xFFFF) + udp[8:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + ulen, 0, 0x4000, 64, 17, 0, src, dst)
    ip = ip[:10] + struct.pack("!H", inet_checksum(ip)) + ip[12:]
    return BCAST + GUEST_MAC + b"\x08\x00" + ip + udp


GW_MAC = bytes([0x52, 0x55, 0x0a, 0x00, 0x02, 0x02])
GUEST_IP, GW_IP = bytes([10, 0, 2, 15]), bytes([10, 0, 2, 2])


def ip_frame(proto, l4, dst=GW_IP):
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(l4), 0, 0x4000, 64, proto, 0, GUEST_IP, dst)
    ip = ip[:10] + struct.pack("!H", inet_checksum(ip)) + ip[12:]
    return GW_MAC + GUEST_MAC + b"\x08\x00" + ip + l4


def tcp_frame(sport, dport, seq, ack, flags, payload=b"", options=b""):
    off = (20 + len(options)) // 4
    seg = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, off << 4, flags, 65535, 0, 0) + options + payload
    pseudo = GUEST_IP + GW_IP + struct.pack("!BBH", 0, 6, len(seg))
    seg = seg[:16] + struct.pack("!H", inet_checksum(pseudo + seg)) + seg[18:]
    return ip_frame(6, seg)


def icmp_echo(ident, seq, payload):
    msg = struct.pack("!BBHHH", 8, 0, 0, ident, seq) + payload
    msg = msg[:2] + struct.pack("!H", inet_checksum(msg)) + msg[4:]
    return ip_frame(1, msg)


def dhcp_msg(mtype, options=b""):
    fixed = struct.pack("!BBBBIHH4s4s4s4s", 1, 1, 6, 0, 0x12345678, 0, 0, bytes(4), bytes(4), bytes(4), bytes(4))
    fixed += GUEST_MAC + bytes(10) + bytes(64) + bytes(128) + struct.pack("!I", 0x63825363)
    return fixed + bytes([53, 1, mtype]) + options + b"\xff"


def usernet_seeds():
    def frames(*fs):
        return bytes([40]) + b"".join(struct.pack("<H", len(f)) + f for f in fs)

    arp = BCAST + GUEST_MAC + b"\x08\x06" + struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 1, GUEST_MAC,
                                                           bytes([10, 0, 2, 15]), bytes(6), bytes([10, 0, 2, 2]))
    any_ip, bcast_ip = bytes(4), b"\xff" * 4
    discover = udp_frame(any_ip, bcast_ip, 68, 67, dhcp_msg(1))
    request = udp_frame(any_ip, bcast_ip, 68, 67, dhcp_msg(3, bytes([50, 4, 10, 0, 2, 15, 54, 4, 10, 0, 2, 2])))
    inform = udp_frame(any_ip, bcast_ip, 68, 67, dhcp_msg(8))
    yield "arp", frames(arp)
    yield "dhcp_handshake", frames(discover, request)
    yield "dhcp_inform_release", frames(inform, udp_frame(any_ip, bcast_ip, 68, 67, dhcp_msg(7)))
    # Flows toward the gateway (host loopback in the fuzzer: host-only mode).
    syn_opts = b"\x02\x04\x05\xb4\x01\x03\x03\x07"  # MSS 1460, NOP, window scale 7
    yield "tcp_syn_data_fin_rst", frames(arp, tcp_frame(40000, 9, 1000, 0, 0x02, options=syn_opts),
                                         tcp_frame(40000, 9, 1001, 1, 0x18, b"GET / HTTP/1.0\r\n\r\n"),
                                         tcp_frame(40000, 9, 1019, 1, 0x11), tcp_frame(40000, 9, 1020, 1, 0x04))
    yield "icmp_echo", frames(arp, icmp_echo(0x1234, 1, bytes(range(56))))
    # The metadata service: handshake and a GET to 169.254.169.254:80.
    mmds = bytes([169, 254, 169, 254])

    def to_mmds(seq, ack, flags, payload=b""):
        off = 5
        seg = struct.pack("!HHIIBBHHH", 40100, 80, seq, ack, off << 4, flags, 65535, 0, 0) + payload
        pseudo = GUEST_IP + mmds + struct.pack("!BBH", 0, 6, len(seg))
        seg = seg[:16] + struct.pack("!H", inet_checksum(pseudo + seg)) + seg[18:]
        return ip_frame(6, seg, dst=mmds)
    yield "mmds_get", frames(to_mmds(7, 0, 0x02), to_mmds(8, 1, 0x10),
                             to_mmds(8, 1, 0x18, b"GET /a/b HTTP/1.0\r\n\r\n"), to_mmds(29, 1, 0x11))
    # IPv6: a Router Solicitation and a Neighbor Solicitation for the gateway
    # (fd00::2), from the guest's link-local address, with a hop-by-hop
    # header before the second (so the extension-header walk is seeded).
    guest_ll = bytes([0xfe, 0x80]) + bytes(6) + bytes([GUEST_MAC[0] ^ 2]) + GUEST_MAC[1:3] + b"\xff\xfe" + GUEST_MAC[3:]
    all_routers = bytes([0xff, 2]) + bytes(13) + b"\x02"
    gw6 = bytes([0xfd, 0]) + bytes(13) + b"\x02"
    sn = bytes([0xff, 2]) + bytes(9) + b"\x01\xff" + gw6[13:]

    def icmp6(src, dst, msg, ext=b"", hop_limit=255):
        pseudo = src + dst + struct.pack("!IxxxB", len(msg), 58)
        msg = msg[:2] + struct.pack("!H", inet_checksum(pseudo + msg)) + msg[4:]
        first_next = 0 if ext else 58
        ip6 = struct.pack("!IHBB", 6 << 28, len(ext) + len(msg), first_next, hop_limit) + src + dst
        return b"\x33\x33" + dst[12:] + GUEST_MAC + b"\x86\xdd" + ip6 + ext + msg
    slla = b"\x01\x01" + GUEST_MAC
    rs = icmp6(guest_ll, all_routers, bytes([133, 0, 0, 0, 0, 0, 0, 0]) + slla)
    hbh = bytes([58, 0, 5, 2, 0, 0, 1, 0])  # Router Alert, PadN
    ns = icmp6(guest_ll, sn, bytes([135, 0, 0, 0, 0, 0, 0, 0]) + gw6 + slla, ext=hbh)
    yield "ipv6_ndp", frames(rs, ns)
    # IPv6 flows and DHCPv6, from the guest's SLAAC address.
    guest6 = bytes([0xfd, 0]) + bytes(6) + guest_ll[8:]
    dns6 = bytes([0xfd, 0]) + bytes(13) + b"\x03"

    def l4_6(src, dst, proto, seg, csum_at, dst_mac=GW_MAC, ext=b""):
        pseudo = src + dst + struct.pack("!IxxxB", len(seg), proto)
        seg = seg[:csum_at] + struct.pack("!H", inet_checksum(pseudo + seg)) + seg[csum_at + 2:]
        ip6 = struct.pack("!IHBB", 6 << 28, len(ext) + len(seg), 44 if ext else proto, 64) + src + dst
        return dst_mac + GUEST_MAC + b"\x86\xdd" + ip6 + ext + seg

    def udp6(src, dst, sport, dport, payload, dst_mac=GW_MAC):
        return l4_6(src, dst, 17, struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload, 6, dst_mac)
    syn6 = struct.pack("!HHIIBBHHH", 40001, 9, 1000, 0, 8 << 4, 0x02, 65535, 0, 0) + syn_opts + b"\x04\x02\x00\x00"
    yield "ipv6_flows", frames(rs, udp6(guest6, gw6, 5000, 9, b"hello6"), udp6(guest6, dns6, 5001, 53, bytes(12)),
                               l4_6(guest6, gw6, 6, syn6, 16),
                               l4_6(guest6, gw6, 58, bytes([128, 0, 0, 0, 0x12, 0x34, 0, 1]) + bytes(32), 2))
    duid = struct.pack("!HH", 3, 1) + GUEST_MAC
    dhcp6_servers = bytes([0xff, 2]) + bytes(11) + b"\x01\x00\x02"
    solicit = (bytes([1, 0xab, 0xcd, 0xef]) + struct.pack("!HH", 1, len(duid)) + duid +
               struct.pack("!HHIII", 3, 12, 1, 0, 0) + struct.pack("!HH", 14, 0))
    info = bytes([11, 0, 0, 9]) + struct.pack("!HH", 1, len(duid)) + duid + struct.pack("!HHH", 6, 2, 23)
    yield "dhcpv6", frames(udp6(guest_ll, dhcp6_servers, 546, 547, solicit, b"\x33\x33\x00\x01\x00\x02"),
                           udp6(guest_ll, dhcp6_servers, 546, 547, info, b"\x33\x33\x00\x01\x00\x02"))
    # A UDP datagram to fd00::2 in two IPv6 fragments, the last first.
    whole6 = struct.pack("!HHHH", 5003, 9, 8 + 600, 0) + bytes(range(200)) * 3
    pseudo6 = guest6 + gw6 + struct.pack("!IxxxB", len(whole6), 17)
    whole6 = whole6[:6] + struct.pack("!H", inet_checksum(pseudo6 + whole6)) + whole6[8:]

    def frag6(off, data, more):
        ext = struct.pack("!BBHI", 17, 0, off | (1 if more else 0), 77)
        ip6 = struct.pack("!IHBB", 6 << 28, len(ext) + len(data), 44, 64) + guest6 + gw6
        return GW_MAC + GUEST_MAC + b"\x86\xdd" + ip6 + ext + data
    yield "ipv6_fragments", frames(frag6(304, whole6[304:], False), frag6(0, whole6[:304], True))
    # A UDP datagram to the gateway in three IPv4 fragments, the last first.
    big = udp_frame(GUEST_IP, GW_IP, 5002, 9, bytes(range(256)) * 3)[14:]  # the IPv4 packet
    hdr, body = big[:20], big[20:]

    def frag(off, data, more):
        h = hdr[:2] + struct.pack("!HHH", 20 + len(data), 7, (0x2000 if more else 0) | off // 8) + hdr[8:10] + b"\0\0" + hdr[12:]
        h = h[:10] + struct.pack("!H", inet_checksum(h)) + h[12:]
        return GW_MAC + GUEST_MAC + b"\x08\x00" + h + data
    yield "ipv4_fragments", frames(arp, frag(512, body[512:], False), frag(0, body[:256], True), frag(256, body[256:512], True))
    yield "udp_to_gateway_and_dns", frames(arp, udp_frame(GUEST_IP, GW_IP, 5000, 9, b"hello"),
                                           udp_frame(GUEST_IP, bytes([10, 0, 2, 3]), 5001, 53, b"\x12\x34" + bytes(10)))


def dhcp_server_seeds():
    # First byte: the reply buffer's size (64 + 4 * it); then one DHCP payload.
    req_ip = bytes([50, 4, 10, 0, 2, 15])
    server_id = bytes([54, 4, 10, 0, 2, 2])
    yield "discover", b"\x80" + dhcp_msg(1, bytes([55, 4, 1, 3, 6, 15]))
    yield "request", b"\x80" + dhcp_msg(3, req_ip + server_id)
    yield "request_small_buffer", b"\x10" + dhcp_msg(3, req_ip + server_id)
    yield "inform", b"\x80" + dhcp_msg(8)
    yield "release", b"\x80" + dhcp_msg(7, server_id)


def mmds_http_seeds():
    # Requests separated by NUL; an odd first byte asks for IMDSv2 tokens.
    yield "get", b"\x00GET /latest/meta-data/instance-id HTTP/1.1\r\nHost: x\r\n\r\n"
    yield "put_then_get", (b"\x01PUT /latest/api/token HTTP/1.1\r\nX-metadata-token-ttl-seconds: 60\r\n"
                           b"Content-Length: 0\r\n\r\n\x00GET /latest/meta-data/ HTTP/1.1\r\n\r\n")
    yield "bad_ttl", b"\x01PUT /latest/api/token HTTP/1.0\r\nX-metadata-token-ttl-seconds: 99999999999\r\n\r\n"
    yield "body", b"\x00POST /x HTTP/1.0\r\nContent-Length: 4\r\n\r\nabcd"


def tcp_flows_seeds():
    # Byte 0 variant (bit 0: no SO_PEEK_OFF, bit 1: SACK offered, bit 2:
    # offloads -- partial checksums and TSO toward the guest), bytes 1..4
    # the guest ISN, byte 5 SYN options; then {op, a, b, c}: 0 data (a:
    # offset/97, b: length/16), 1 ACK (a: offset/131, b c: window), 2 peer
    # writes a*512+b, 3 peer reads, 4 peer half-closes, 5 FIN, 6 RST (a ==
    # 0x5a), 7 drain (buffer), 8 duplicate ACK (a: back/53) with c%4 SACK
    # blocks (b: spacing/97, c>>2: length/211).
    isn = struct.pack("<I", 1000)
    data_both_ways = (bytes([0, 0, 20, 1]) + bytes([7, 255, 0, 0]) + bytes([3, 0, 0, 0]) + bytes([2, 64, 0, 0]) +
                      bytes([7, 255, 0, 0]) + bytes([1, 0, 255, 255]) + bytes([2, 32, 0, 0]) + bytes([7, 20, 0, 0]))
    close = bytes([5, 0, 255, 255]) + bytes([4, 0, 0, 0]) + bytes([7, 255, 0, 0]) + bytes([1, 1, 255, 255])
    yield "data_both_ways", b"\x00" + isn + b"\x03" + data_both_ways + close
    yield "data_both_ways_no_peek_off", b"\x01" + isn + b"\x03" + data_both_ways + close
    holes = bytes([0, 3, 10, 0]) + bytes([0, 0, 10, 0]) + bytes([0, 253, 10, 0]) + bytes([7, 255, 0, 0]) + bytes([3, 0, 0, 0])
    yield "holes_and_overlaps", b"\x00" + isn + b"\x00" + holes
    zero_window = bytes([2, 200, 0, 0]) + bytes([1, 0, 0, 0]) + bytes([7, 255, 0, 0]) + bytes([1, 0, 16, 0]) + bytes([7, 255, 0, 0])
    yield "zero_window", b"\x00" + isn + b"\x02" + zero_window
    yield "reset", b"\x00" + isn + b"\x00" + bytes([0, 0, 4, 0]) + bytes([6, 0x5a, 1, 0]) + bytes([7, 255, 0, 0])
    # The host sends 32 KiB in small segments; the guest reports holes with
    # SACK (valid blocks, then wild ones); usernet resends what is missing.
    sack = (bytes([2, 64, 0, 0]) + bytes([7, 20, 0, 0]) + bytes([7, 20, 0, 0]) + bytes([7, 20, 0, 0]) +
            bytes([8, 40, 236, 9]) + bytes([8, 40, 236, 9]) + bytes([8, 40, 236, 10]) + bytes([7, 255, 0, 0]) +
            bytes([8, 0, 100, 255]) + bytes([7, 255, 0, 0]) + bytes([1, 0, 255, 255]) + bytes([7, 255, 0, 0]))
    yield "sack_holes", b"\x02" + isn + b"\x03" + sack
    yield "sack_holes_no_peek_off", b"\x03" + isn + b"\x03" + sack
    yield "offloads", b"\x04" + isn + b"\x03" + data_both_ways + close


def dns_relay_seeds():
    # {op, a, b, len/4}: 0 guest query from port 1024+a%8 (b%8 == 7: to port
    # b), 1 resolver answers that port's flow (odd b: from another socket),
    # 2 resolver reads, 3 guest reads into 14+b*256+a bytes.
    query = bytes([0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 7]) + b"vnetkit" + bytes([4]) + b"test" + bytes([0, 0, 1, 0, 1])
    q = bytes([0, 0, 0, len(query) // 4]) + query[:len(query) // 4 * 4]
    answer = bytes([1, 0, 0, 8]) + bytes(32)
    yield "query_answer", q + bytes([2, 0, 0, 0]) + answer + bytes([3, 0, 255, 0])
    yield "two_ports", q + bytes([0, 1, 0, 2]) + bytes(8) + bytes([2, 0, 0, 0]) + answer + bytes([1, 1, 0, 1]) + bytes(4) + bytes([3, 0, 255, 0])
    yield "spoofed_answer", q + bytes([2, 0, 0, 0]) + bytes([1, 0, 1, 2]) + bytes(8) + bytes([3, 0, 255, 0])
    yield "small_buffer", q + bytes([2, 0, 0, 0]) + answer + bytes([3, 10, 0, 0])


def stream_deframer_seeds():
    # Two bytes pick the read size, then the byte stream a QEMU peer sends.
    def framed(fs):
        return b"".join(struct.pack("!I", len(f)) + f for f in fs)
    frame = bytes(range(60))
    yield "two_frames_whole", b"\xff\xff" + framed([frame, frame[:14]])
    yield "split_reads", b"\x00\x02" + framed([frame, bytes(1500)])
    yield "zero_length", b"\x00\x10" + framed([frame]) + b"\x00\x00\x00\x00" + frame
    yield "too_long", b"\x00\x07" + struct.pack("!I", 70000) + bytes(64)


for target, seeds in (("fuzz_stream_deframer", stream_deframer_seeds()), ("fuzz_mmio_device", mmio_seeds()), ("fuzz_descriptor_chain", chain_seeds()),
                      ("fuzz_vhost_user", vhost_user_seeds()), ("fuzz_usernet", usernet_seeds()),
                      ("fuzz_dhcp_server", dhcp_server_seeds()), ("fuzz_mmds_http", mmds_http_seeds()),
                      ("fuzz_tcp_flows", tcp_flows_seeds()), ("fuzz_dns_relay", dns_relay_seeds())):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    for name, data in seeds:
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)
print("corpus written")
