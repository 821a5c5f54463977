"""The sandbox `vnetkit serve` and `vnetkit netns` enter once set up, seen
from outside as the kernel reports it (/proc/PID/status, /proc/PID/root),
and a forbidden system call (the test build's trigger) stopping the process
with a line naming it. The rest of the integration suite runs with the
sandbox on, which is the default.
"""
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import BUILD, VNETKIT, Process, Serve  # noqa: E402


def status(pid):
    with open(f"/proc/{pid}/status") as f:
        return dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)


def test_hooks_built():
    try:
        with open(os.path.join(BUILD, "CMakeCache.txt")) as f:
            return any(line.strip() == "VNETKIT_TEST_HOOKS:BOOL=ON" for line in f)
    except OSError:
        return False


def user_namespaces_allowed():
    """Whether this process may create a user namespace (not in a chroot, not switched off)."""
    return subprocess.run(["unshare", "--user", "true"], capture_output=True).returncode == 0


@unittest.skipUnless(os.geteuid() == 0, "needs root: the sandbox's identity change is tested from root")
class SandboxTest(unittest.TestCase):
    def serve(self, *args):
        s = Serve("--net", "user", *args)
        self.addCleanup(self.stop, s)
        return s

    def stop(self, p):
        if p.alive():
            p.proc.send_signal(signal.SIGTERM)
            p.proc.wait(10)
        p.reader.join(5)
        p.proc.stdout.close()

    def assert_confined(self, pid, uid):
        """Every layer the host allows. In a chroot (scripts/fresh-check) the
        kernel refuses user namespaces to everyone; vnetkit then reports
        that layer missing and runs with the others."""
        st = status(pid)
        self.assertEqual(st["Seccomp"].strip(), "2", st)
        self.assertEqual(st["NoNewPrivs"].strip(), "1", st)
        for field in ("CapEff", "CapPrm", "CapInh", "CapAmb"):
            self.assertEqual(int(st[field], 16), 0, f"{field}: {st[field]}")
        self.assertEqual(st["Uid"].split(), [str(uid)] * 4)
        # The file system is an empty tmpfs.
        self.assertEqual(os.listdir(f"/proc/{pid}/root"), [])
        self.assertNotEqual(os.readlink(f"/proc/{pid}/ns/mnt"), os.readlink("/proc/self/ns/mnt"))
        if user_namespaces_allowed():
            self.assertNotEqual(os.readlink(f"/proc/{pid}/ns/user"), os.readlink("/proc/self/ns/user"))
        self.assertNotEqual(os.readlink(f"/proc/{pid}/ns/ipc"), os.readlink("/proc/self/ns/ipc"))
        self.assertNotEqual(os.readlink(f"/proc/{pid}/ns/uts"), os.readlink("/proc/self/ns/uts"))

    def test_serve_runs_as_nobody_with_no_capabilities_and_a_syscall_filter(self):
        s = self.serve()
        s.wait_for(r"sandbox: user nobody", 5)
        self.assert_confined(s.proc.pid, 65534)
        self.assertTrue(s.alive())

    def test_serve_runas_takes_the_given_ids(self):
        s = self.serve("--runas", "54321:54322")
        self.assert_confined(s.proc.pid, 54321)
        self.assertEqual(status(s.proc.pid)["Gid"].split(), ["54322"] * 4)
        self.assertEqual(status(s.proc.pid)["Groups"].split(), ["54322"])

    def test_serve_in_client_mode_sees_only_the_socket_directory(self):
        d = tempfile.mkdtemp(prefix="vnk-sbx-")
        os.chmod(d, 0o755)  # nobody reaches the socket through it
        self.addCleanup(shutil.rmtree, d, True)
        sock = os.path.join(d, "frontend.sock")
        p = Process([VNETKIT, "serve", "--net", "user", "--vhost-user-connect", sock], "vnetkit serve")
        self.addCleanup(self.stop, p)
        p.wait_for(r"waiting for a frontend", 5)
        st = status(p.proc.pid)
        self.assertEqual(st["Seccomp"].strip(), "2")
        root = f"/proc/{p.proc.pid}/root"
        self.assertEqual(os.listdir(root), [d.split("/")[1]])
        self.assertEqual(os.listdir(root + d), [])

    def test_netns_engine_runs_as_nobody_while_its_command_runs(self):
        p = Process([VNETKIT, "netns", "--", "sleep", "30"], "vnetkit netns")
        self.addCleanup(self.stop, p)
        p.wait_for(r"sandbox: user nobody", 5)
        self.assert_confined(p.proc.pid, 65534)

    def test_netns_relays_sigterm_to_a_root_command_through_its_helper(self):
        # The command runs as root and the sandboxed engine as nobody, which
        # may not signal it: the helper that started it relays.
        p = Process([VNETKIT, "netns", "--", "sleep", "30"], "vnetkit netns")
        self.addCleanup(self.stop, p)
        p.wait_for(r"vnetkit netns: tap0", 5)
        p.proc.send_signal(signal.SIGTERM)
        self.assertEqual(p.proc.wait(10), 128 + signal.SIGTERM)

    def test_netns_command_ends_when_vnetkit_is_killed(self):
        p = Process([VNETKIT, "netns", "--", "sleep", "30"], "vnetkit netns")
        self.addCleanup(self.stop, p)
        p.wait_for(r"vnetkit netns: tap0", 5)
        p.proc.kill()
        p.proc.wait(10)
        # The command holds our pipe until it ends.
        p.reader.join(10)
        self.assertFalse(p.reader.is_alive(), "the command outlived vnetkit")

    def test_no_sandbox_keeps_root(self):
        s = Serve("--net", "user", "--no-sandbox")
        self.addCleanup(self.stop, s)
        st = status(s.proc.pid)
        self.assertEqual(st["Seccomp"].strip(), "0")
        self.assertEqual(st["Uid"].split()[0], "0")
        s.wait_for(r"sandbox: off", 5)

    @unittest.skipUnless(test_hooks_built(), "the build has no test hooks (-DVNETKIT_TEST_HOOKS=ON)")
    def test_a_forbidden_system_call_stops_the_process_and_is_named(self):
        for attempt, call in (("execve", "execve"), ("open", "openat")):
            with self.subTest(attempt=attempt):
                d = tempfile.mkdtemp(prefix="vnk-sbx-")
                self.addCleanup(shutil.rmtree, d, True)
                p = Process([VNETKIT, "serve", "--net", "user", "--vhost-user", os.path.join(d, "s.sock")],
                            "vnetkit serve", env={**os.environ, "VNETKIT_TEST_SANDBOX_ESCAPE": attempt})
                code = p.proc.wait(10)
                p.reader.join(5)
                p.proc.stdout.close()
                self.assertEqual(code, -signal.SIGSYS, "\n".join(p.lines))
                self.assertTrue(any(re.search(rf"system call {call} \(\d+\) is not allowed", line) for line in p.lines),
                                "\n".join(p.lines))


if __name__ == "__main__":
    unittest.main()
