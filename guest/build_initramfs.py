#!/usr/bin/env python3
"""Builds the vnetkit test guest's initramfs (a gzip'd cpio "newc" archive).

Contents: busybox (static, from Debian's busybox-static), guest/init, the
pktcheck probe, and the kernel's own virtio-net modules listed in load order
in /etc/vnk-modules (and for UML, IPv6's in /etc/vnk-modules-ipv6):
  --flavour uml   modules of Debian's user-mode-linux package (virtio_uml is
                  built in; virtio_net and its failover deps are modules)
  --flavour qemu  modules of the Debian cloud kernel (virtio PCI + virtio_net)
The archive is written with Python so no cpio tool or root is needed.
"""
import argparse
import glob
import gzip
import re
import subprocess
import io
import os
import sys

UML_MODULES = ["kernel/net/core/failover.ko", "kernel/drivers/net/net_failover.ko", "kernel/drivers/net/virtio_net.ko"]
# IPv6 is a module in Debian's UML kernel (built in in the cloud kernel). It
# is loaded only when a scenario asks for IPv6 (vnk.ipv6=1), listed in
# /etc/vnk-modules-ipv6, so the other scenarios' guests stay quiet.
UML_IPV6_MODULES = ["kernel/lib/crc-ccitt.ko", "kernel/net/ipv6/ipv6.ko"]
QEMU_MODULES = [
    "kernel/drivers/virtio/virtio_ring.ko",
    "kernel/drivers/virtio/virtio.ko",
    "kernel/drivers/virtio/virtio_pci_legacy_dev.ko",
    "kernel/drivers/virtio/virtio_pci_modern_dev.ko",
    "kernel/drivers/virtio/virtio_pci.ko",
] + UML_MODULES


class Cpio:
    def __init__(self):
        self.out = io.BytesIO()
        self.ino = 1

    def _entry(self, name, mode, data=b"", nlink=1):
        name_b = name.encode() + b"\0"
        hdr = "070701" + "".join(
            f"{v:08x}"
            for v in (self.ino, mode, 0, 0, nlink, 0, len(data), 0, 0, 0, 0, len(name_b), 0)
        )
        self.ino += 1
        self.out.write(hdr.encode() + name_b)
        self.out.write(b"\0" * ((4 - (110 + len(name_b)) % 4) % 4))
        self.out.write(data)
        self.out.write(b"\0" * ((4 - len(data) % 4) % 4))

    def directory(self, name):
        self._entry(name, 0o040755, nlink=2)

    def file(self, name, data, mode=0o644):
        self._entry(name, 0o100000 | mode, data)

    def symlink(self, name, target):
        self._entry(name, 0o120777, target.encode())

    def finish(self):
        self._entry("TRAILER!!!", 0)
        return self.out.getvalue()


def module_dir(flavour):
    if flavour == "uml":
        dirs = sorted(glob.glob("/usr/lib/uml/modules/*"))
        hint = "apt-get install user-mode-linux"
    else:
        dirs = sorted(d for d in glob.glob("/lib/modules/*-cloud-amd64") if os.path.isdir(d + "/kernel"))
        hint = "apt-get install linux-image-cloud-amd64"
    if not dirs:
        sys.exit(f"build_initramfs: no {flavour} kernel modules found ({hint})")
    return dirs[-1]


def add_dynamic(c, prog):
    """Adds `prog` and every library ldd resolves for it, at their own paths."""
    if not os.path.exists(prog):
        print(f"build_initramfs: {prog} not installed; the guest goes without it")
        return
    out = subprocess.run(["ldd", prog], capture_output=True, text=True, check=True).stdout
    paths = [prog]
    for line in out.splitlines():
        m = re.search(r"(/\S+) \(0x", line)
        if m:
            paths.append(m.group(1))
    made = set()
    for path in paths:
        real = os.path.realpath(path)
        parts = path.strip("/").split("/")
        for i in range(1, len(parts)):
            d = "/".join(parts[:i])
            if d not in made and d not in ("bin", "lib"):
                c.directory(d)
                made.add(d)
        with open(real, "rb") as f:
            c.file(path.strip("/"), f.read(), 0o755)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--flavour", choices=["uml", "qemu"], required=True)
    ap.add_argument("--pktcheck", required=True, help="static pktcheck binary")
    ap.add_argument("--init", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "init"))
    ap.add_argument("--busybox", default="/bin/busybox")
    ap.add_argument("--tool", action="append", default=[], help="another static program for /bin")
    ap.add_argument("--dynamic", action="append", default=[],
                    help="a dynamically linked program to include with the libraries ldd lists (e.g. /usr/bin/iperf3); "
                         "skipped with a note when missing")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()

    with open(args.busybox, "rb") as f:
        busybox = f.read()
    if b"GLIBC_" in busybox[:4096] or not busybox.startswith(b"\x7fELF"):
        sys.exit("build_initramfs: busybox must be the static one (apt-get install busybox-static)")

    mdir = module_dir(args.flavour)
    modules = UML_MODULES if args.flavour == "uml" else QEMU_MODULES
    c = Cpio()
    for d in ["bin", "dev", "etc", "lib", "lib/modules", "proc", "sys", "tmp"]:
        c.directory(d)
    c.file("bin/busybox", busybox, 0o755)
    c.symlink("bin/sh", "busybox")
    with open(args.init, "rb") as f:
        c.file("init", f.read(), 0o755)
    with open(os.path.join(os.path.dirname(args.init), "udhcpc.script"), "rb") as f:
        c.file("bin/vnk-udhcpc", f.read(), 0o755)
    with open(args.pktcheck, "rb") as f:
        c.file("bin/pktcheck", f.read(), 0o755)
    for tool in args.tool:
        with open(tool, "rb") as f:
            c.file("bin/" + os.path.basename(tool), f.read(), 0o755)
    for prog in args.dynamic:
        add_dynamic(c, prog)
    def add_modules(listing, wanted):
        """The modules in load order under lib/modules, their names in `listing`."""
        names = []
        for m in wanted:
            path = os.path.join(mdir, m)
            if not os.path.exists(path):
                sys.exit(f"build_initramfs: {path} missing")
            with open(path, "rb") as f:
                c.file("lib/modules/" + os.path.basename(m), f.read())
            names.append(os.path.basename(m))
        c.file(listing, ("\n".join(names) + "\n").encode())
    add_modules("etc/vnk-modules", modules)
    add_modules("etc/vnk-modules-ipv6", UML_IPV6_MODULES if args.flavour == "uml" else [])

    if args.flavour == "qemu":
        # The kernel that matches these modules, for the harness to boot.
        release = os.path.basename(mdir)
        kernel = f"/boot/vmlinuz-{release}"
        if not os.path.exists(kernel):
            sys.exit(f"build_initramfs: {kernel} missing (apt-get install linux-image-cloud-amd64)")
        with open(args.out + ".kernel", "w") as f:
            f.write(kernel + "\n")

    tmp = args.out + ".tmp"
    with gzip.open(tmp, "wb", compresslevel=6) as f:
        f.write(c.finish())
    os.replace(tmp, args.out)
    print(f"build_initramfs: {args.out} ({args.flavour}, modules from {mdir})")


if __name__ == "__main__":
    main()
