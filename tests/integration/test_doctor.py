"""`vnetkit doctor` on this host and on hosts with parts switched off: the
probes the kernel would fail (VNETKIT_PRETEND_MISSING), and a mount
namespace where /dev/net/tun is hidden. Each line says ok, fallback or
MISSING with what to do; the exit status is 1 when something is missing."""
import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import VNETKIT  # noqa: E402

ITEMS = ("kernel", "TCP SO_PEEK_OFF", "guest pings", "user namespaces", "/dev/net/tun", "open files (RLIMIT_NOFILE)",
         "shared memory (vhost-user)", "seccomp", "pidfd_open", "linux.uml", "qemu-system-x86_64")


def doctor(env=None, prefix=()):
    r = subprocess.run([*prefix, VNETKIT, "doctor"], capture_output=True, text=True, timeout=30,
                       env={**os.environ, **(env or {})})
    lines = {}
    for line in r.stdout.splitlines()[:-1]:
        verdict, rest = line[:8].strip(), line[10:]
        for item in ITEMS:
            if rest.startswith(item + " "):
                lines[item] = (verdict, rest[len(item):].strip())
    return r, lines


class DoctorTest(unittest.TestCase):
    def test_every_check_has_its_line_and_a_summary(self):
        r, lines = doctor()
        self.assertEqual(sorted(lines), sorted(ITEMS), r.stdout)
        self.assertIn(r.returncode, (0, 1))
        missing = [i for i, (v, _) in lines.items() if v == "MISSING"]
        self.assertEqual(r.returncode, 1 if missing else 0, r.stdout)
        self.assertTrue(r.stdout.splitlines()[-1].startswith("vnetkit doctor: "), r.stdout)
        self.assertIn("Linux ", lines["kernel"][1])

    def test_what_is_switched_off_says_what_to_do(self):
        r, lines = doctor({"VNETKIT_PRETEND_MISSING": "tcp-peek-off,ping-sockets,raw-icmp"})
        self.assertEqual(lines["TCP SO_PEEK_OFF"][0], "fallback", r.stdout)
        self.assertEqual(lines["guest pings"][0], "MISSING", r.stdout)
        self.assertIn("net.ipv4.ping_group_range", lines["guest pings"][1])
        self.assertEqual(r.returncode, 1)
        # Raw ICMP alone left: pings fall back to it (this test runs as root).
        if os.geteuid() == 0:
            r, lines = doctor({"VNETKIT_PRETEND_MISSING": "ping-sockets"})
            self.assertEqual(lines["guest pings"][0], "fallback", r.stdout)

    @unittest.skipUnless(os.geteuid() == 0, "needs root: hides /dev/net/tun in a mount namespace")
    def test_a_namespace_without_the_tun_device(self):
        hide = ["unshare", "--mount", "--propagation", "private", "sh", "-c",
                'mount -t tmpfs none /dev/net && exec "$0" "$@"']
        r, lines = doctor(prefix=hide)
        self.assertEqual(lines["/dev/net/tun"][0], "MISSING", r.stdout + r.stderr)
        self.assertIn("modprobe tun", lines["/dev/net/tun"][1])
        self.assertEqual(r.returncode, 1)


if __name__ == "__main__":
    unittest.main()
