"""The internet checksum (RFC 1071), for the test scripts that build packets
by hand (load_client.py's SYN flood, tests/fuzz/make_corpus.py's seeds)."""
import struct


def inet_checksum(data):
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF
