#!/usr/bin/env python3
"""Turns a Google Benchmark JSON file from device_loopback_bench into a
Markdown table (medians of the repetitions)."""
import json
import sys

src, dst = sys.argv[1], sys.argv[2]
with open(src) as f:
    data = json.load(f)
ctx = data["context"]
rows = [b for b in data["benchmarks"] if b.get("aggregate_name") == "median"]
lines = [
    "# Device loopback benchmark",
    "",
    f"Host: {ctx.get('host_name', '?')}, {ctx.get('num_cpus', '?')} CPUs at {ctx.get('mhz_per_cpu', '?')} MHz, "
    f"run {ctx.get('date', '?')}. Median of {rows[0].get('repetitions', '?') if rows else '?'} repetitions.",
    "",
    "Mock Linux-style driver over virtio-MMIO, batches of 64 TX chains per kick, loopback backend, "
    "every frame delivered into a posted RX buffer.",
    "",
    "| frame | frames/s | Gb/s (frame bytes) | ns/frame | interrupts/frame |",
    "|---:|---:|---:|---:|---:|",
]
for b in rows:
    size = int(b["frame_bytes"])
    fps = b["items_per_second"]
    gbps = b["bytes_per_second"] * 8 / 1e9
    lines.append(f"| {size} B | {fps / 1e6:.2f} M | {gbps:.2f} | {1e9 / fps:.0f} | {b['interrupts_per_frame']:.3f} |")
with open(dst, "w") as f:
    f.write("\n".join(lines) + "\n")
