"""Process harness for the real-guest tests: `vnetkit serve` plus a User-Mode
Linux or QEMU guest running the test initramfs (guest/init).

Every process is started here in its own process group and is ended here by
that group's id; nothing else on the machine is touched. Traffic stays inside
the guest and the server (loopback backend) or on Unix sockets.
"""
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time

BUILD = os.environ.get("VNETKIT_BUILD_DIR", os.path.join(os.path.dirname(__file__), "..", "..", "build"))
VNETKIT = os.path.join(BUILD, "vnetkit")
GUEST_DIR = os.path.join(BUILD, "guest")


def use_build(build):
    """Takes vnetkit and the guest images from another build directory (the benchmarks' Release tree)."""
    global BUILD, VNETKIT, GUEST_DIR
    BUILD, VNETKIT, GUEST_DIR = build, os.path.join(build, "vnetkit"), os.path.join(build, "guest")


class Process:
    """A child in its own process group whose output is collected line by line."""

    def __init__(self, argv, name, env=None, stdin=subprocess.DEVNULL, pass_fds=()):
        self.name = name
        self.argv = argv
        self.lines = []
        self.cond = threading.Condition()
        self.proc = subprocess.Popen(
            argv, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True, env=env,
            pass_fds=pass_fds,
        )
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for raw in self.proc.stdout:
            line = raw.decode(errors="replace").rstrip("\r\n")
            with self.cond:
                self.lines.append(line)
                self.cond.notify_all()
        with self.cond:
            self.cond.notify_all()

    def wait_for(self, pattern, timeout, start=0):
        """Waits for a line matching `pattern` (at index >= start); returns the match."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for line in self.lines[start:]:
                    m = rx.search(line)
                    if m:
                        return m
                start = len(self.lines)
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and not self.reader.is_alive()):
                    raise AssertionError(
                        f"{self.name}: no line matching {pattern!r} within {timeout}s; output:\n" + self.tail()
                    )
                self.cond.wait(min(left, 0.5))

    def tail(self, n=60):
        with self.cond:
            return "\n".join(self.lines[-n:])

    def text(self):
        with self.cond:
            return "\n".join(self.lines)

    def alive(self):
        return self.proc.poll() is None

    def wait(self, timeout):
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"{self.name} did not exit within {timeout}s; output:\n" + self.tail())

    def kill(self):
        """SIGKILL to the whole group: UML leaves helper processes that hold its sockets."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            pass
        self.reader.join(5)
        self.proc.stdout.close()


def read_metrics(path, attempts=50):
    """The metrics file as JSON. In the sandbox vnetkit rewrites it in place,
    so a read racing a write can see a mix; read again then."""
    for i in range(attempts):
        with open(path) as f:
            text = f.read()
        try:
            return json.loads(text)
        except ValueError:
            if i == attempts - 1:
                raise
            time.sleep(0.01)


class Serve(Process):
    """`vnetkit serve` with a metrics file, in a private directory."""

    def __init__(self, *args, connect=None, workdir=None, pass_fds=(), attach=None):
        """`attach`: an option taking a path in the private directory instead
        of vhost-user ("--stream", "--dgram"; self.sock is that path), or
        ("--fd", N) for an inherited socket."""
        self.dir = workdir or tempfile.mkdtemp(prefix="vnk-serve-")
        self.sock = connect or os.path.join(self.dir, "vhost-user.sock")
        self.metrics_path = os.path.join(self.dir, "metrics.json")
        mode = ["--vhost-user-connect", self.sock] if connect else ["--vhost-user", self.sock]
        if isinstance(attach, str):
            self.sock = os.path.join(self.dir, attach.lstrip("-") + ".sock")
            mode = [attach, self.sock]
        elif attach:
            mode = [str(x) for x in attach]
        argv = [VNETKIT, "serve", *mode, "--metrics", self.metrics_path, "--metrics-interval", "50", *args]
        super().__init__(argv, "vnetkit serve", pass_fds=pass_fds)
        if attach:
            self.wait_for(r"vnetkit serve: \w+ backend, ", 10)
        elif connect:
            self.wait_for(r"frontend connected", 30)
        else:
            self.wait_for(r"listening on", 10)

    def metrics(self):
        return read_metrics(self.metrics_path)

    def wait_metric(self, section, key, predicate, timeout=10):
        deadline = time.monotonic() + timeout
        while True:
            try:
                value = self.metrics()[section][key]
                if predicate(value):
                    return value
            except (OSError, ValueError, KeyError):
                value = None
            if time.monotonic() > deadline:
                raise AssertionError(f"metrics {section}.{key} = {value}, condition not met in {timeout}s")
            time.sleep(0.05)

    def signal(self, sig):
        os.kill(self.proc.pid, sig)

    def stop(self):
        """SIGTERM and wait: the server must exit cleanly (status 0)."""
        self.signal(signal.SIGTERM)
        status = self.wait(10)
        self.reader.join(5)
        self.proc.stdout.close()
        return status

    def cleanup(self):
        if self.alive():
            self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


def kv(line):
    """'pktcheck: mode=echo sent=4 ...' or 'VNK: eth0-up mac=..' -> dict of the key=value words."""
    return dict(w.split("=", 1) for w in line.split() if "=" in w)


class Guest(Process):
    """Common scenario plumbing for both guests (see guest/init)."""

    def result(self, mode, timeout=60):
        return kv(self.wait_for(rf"pktcheck: mode={mode} .*", timeout).group(0))

    def eth0(self, timeout=60, start=0):
        return kv(self.wait_for(r"VNK: eth0-up .*", timeout, start).group(0))

    def status(self, timeout=60):
        return int(self.wait_for(r"VNK: done status=(\d+)", timeout).group(1))


class Uml(Guest):
    def __init__(self, sock, test, mem="256M", extra=(), extra_args=()):
        """`sock`: the vhost-user socket (virtio_uml), or None when `extra` gives the NIC (e.g. vec0:...);
        `extra_args` are appended after `extra`."""
        kernel = shutil.which("linux.uml") or "/usr/bin/linux.uml"
        initrd = os.path.join(GUEST_DIR, "uml-initramfs.cpio.gz")
        device = [f"virtio_uml.device={sock}:1"] if sock else []
        argv = [kernel, f"mem={mem}", f"initrd={initrd}", *device, f"vnk.test={test}",
                "con=null", "con0=null,fd:1", *extra, *extra_args]
        super().__init__(argv, f"UML ({test})")


class Qemu(Guest):
    """QEMU (TCG unless /dev/kvm boots it) with the cloud kernel, virtio-net-pci over vhost-user."""

    def __init__(self, sock, test, mac, mtu=None, server=False, monitor=None, cmdline=(), extra=(), netdev=None):
        """`netdev` replaces the vhost-user netdev (e.g. "user,id=n0" for QEMU's slirp); its id must be n0."""
        initrd = os.path.join(GUEST_DIR, "qemu-initramfs.cpio.gz")
        with open(initrd + ".kernel") as f:
            kernel = f.read().strip()
        chardev = f"socket,id=vu,path={sock}" + (",server=on,wait=on" if server else "")
        dev = f"virtio-net-pci,netdev=n0,mac={mac},vectors=0" + (f",host_mtu={mtu}" if mtu else "")
        argv = ["qemu-system-x86_64", "-accel", os.environ.get("VNETKIT_QEMU_ACCEL", "tcg"), "-m", "256M",
                "-smp", "1", "-nographic", "-no-reboot", "-nodefaults", "-serial", "stdio",
                "-object", "memory-backend-memfd,id=mem,size=256M,share=on", "-numa", "node,memdev=mem",
                *(["-chardev", chardev, "-netdev", "vhost-user,id=n0,chardev=vu"] if netdev is None else ["-netdev", netdev]),
                "-device", dev,
                "-kernel", kernel, "-initrd", initrd, "-append", " ".join(["console=ttyS0 quiet panic=-1", f"vnk.test={test}", *cmdline])]
        if monitor:
            argv += ["-monitor", f"unix:{monitor},server=on,wait=off"]
        super().__init__(argv + list(extra), f"QEMU ({test})")

    @staticmethod
    def hmp(monitor, command):
        """One human-monitor command over the unix socket."""
        import socket

        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(10)
        for _ in range(100):
            try:
                s.connect(monitor)
                break
            except OSError:
                time.sleep(0.05)
        s.sendall(command.encode() + b"\n")
        time.sleep(0.2)
        s.close()


class Testpmd(Process):
    """DPDK's dpdk-testpmd as a vhost-user frontend without a VM
    (net_virtio_user on `sock`), or with `vdev` as a vhost backend. In io mode
    with --tx-first it sends one burst of 64-byte frames and forwards
    whatever comes back, for ever; stop() ends it with SIGINT and returns its
    totals. `cpus` pins its lcores (e.g. "1": both lcores on CPU 1)."""

    count = 0

    def __init__(self, sock=None, vdev=None, cpus=None, tx_first=True, frame=64, stats_period=1):
        Testpmd.count += 1
        exe = shutil.which("dpdk-testpmd") or "/usr/bin/dpdk-testpmd"
        lcores = ["--lcores", f"0@{cpus},1@{cpus}"] if cpus is not None else ["-l", "0-1"]
        argv = [exe, *lcores, "--no-huge", "-m", "256", "--no-pci", "--file-prefix", f"vnk{os.getpid()}n{Testpmd.count}",
                "--vdev", vdev or f"net_virtio_user0,path={sock}", "--",
                "--forward-mode=io", *(["--tx-first"] if tx_first else []), "-a", f"--stats-period={stats_period}",
                "--total-num-mbufs=16384", f"--txpkts={frame}", "--no-lsc-interrupt"]
        super().__init__(argv, "dpdk-testpmd")

    def rates(self):
        """The Rx-pps figure of every stats period printed so far."""
        with self.cond:
            return [int(m.group(1)) for m in map(re.compile(r"Rx-pps:\s+(\d+)").search, self.lines) if m]

    def stop(self):
        """SIGINT, wait, and return the port's totals {rx, tx, rx_dropped, tx_dropped}."""
        try:
            os.killpg(self.proc.pid, signal.SIGINT)
        except ProcessLookupError:
            pass
        self.wait(20)
        self.reader.join(5)
        text = self.text()
        m = re.search(r"Accumulated forward statistics.*?RX-packets:\s+(\d+)\s+RX-dropped:\s+(\d+).*?"
                      r"TX-packets:\s+(\d+)\s+TX-dropped:\s+(\d+)", text, re.S)
        if not m:
            raise AssertionError("dpdk-testpmd printed no totals; output:\n" + self.tail())
        rx, rx_dropped, tx, tx_dropped = map(int, m.groups())
        return {"rx": rx, "tx": tx, "rx_dropped": rx_dropped, "tx_dropped": tx_dropped}
