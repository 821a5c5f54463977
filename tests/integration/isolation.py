"""Puts the calling script inside a network namespace with no route off the
machine (scripts/isolated): every benchmark that starts an engine or a peer
calls ensure() first. The integration tests get the same from CTest, which
runs each through scripts/isolated.
"""
import os

WRAPPER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts", "isolated")


def ensure(uplink=False):
    """Re-executes this process through scripts/isolated unless it already runs there.

    uplink: give the namespace a default route into a veth pair that leads
    nowhere (passt and pasta refuse to start without one)."""
    if os.environ.get("VNETKIT_ISOLATED") == "1":
        return
    with open("/proc/self/cmdline", "rb") as f:
        argv = [a.decode() for a in f.read().split(b"\0")[:-1]]
    os.execv(WRAPPER, [WRAPPER, *(["--uplink"] if uplink else []), *argv])
