"""Peers built from the pinned sources in ../shared/peers (outside this
repository): passt/pasta upstream 2026-07 (commit 37a73a24). Built once per
build directory into BUILD/peers; None when the tarball is absent or the
build fails, so a benchmark can leave that peer out and say so."""
import os
import subprocess

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
PASST_TARBALL = os.path.join(ROOT, "..", "shared", "peers", "passt-37a73a24.tar.gz")


def build_passt(build, program="pasta"):
    """Path of `program` ("pasta" or "passt") from the pinned source, built if needed."""
    src = os.path.join(build, "peers", "passt-37a73a24")
    exe = os.path.join(src, program)
    if os.path.exists(exe):
        return exe
    if not os.path.exists(PASST_TARBALL):
        return None
    os.makedirs(os.path.dirname(src), exist_ok=True)
    if not os.path.isdir(src):
        subprocess.run(["tar", "-xzf", PASST_TARBALL, "-C", os.path.dirname(src)], check=True)
    r = subprocess.run(["make", "-C", src, "-j2"], capture_output=True, text=True)
    return exe if r.returncode == 0 and os.path.exists(exe) else None
