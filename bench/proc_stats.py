"""What the benchmarks read about a backend process from /proc, and medians."""
import os
import statistics

TICK = os.sysconf("SC_CLK_TCK")
GIB = 1 << 30


def cpu_seconds(pid):
    """utime + stime of `pid`, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def peak_rss_mib(pid):
    """VmHWM of `pid` in MiB, or None."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return None


def med(xs):
    return statistics.median(xs) if xs else None
