"""Installing vnetkit: `cmake --install` into a fresh prefix (the program,
man pages, systemd unit, and for VMM authors the libraries, headers, CMake
package and pkg-config file); examples/embed_device built against that
prefix both ways and run; the man pages against --help; the unit through
systemd-analyze; the Debian packages from `cpack -G DEB`: their
dependencies resolvable by apt, and the packaged program running a netns
smoke test from where the package puts it; and the packaged unit run by
systemd as PID 1 in a container, with a UML guest attached to it."""
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import BUILD, GUEST_DIR, VNETKIT  # noqa: E402

SOURCE = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
COMMANDS = ("serve", "netns", "demo", "doctor", "stats")


def run(argv, timeout=300, **kw):
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kw)
    if r.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} exited {r.returncode}:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
    return r


def long_options(help_text):
    return set(re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]+)", help_text))


def roff_text(path):
    """A man page's words: roff escapes undone (\\- is -, \\e is \\)."""
    with open(path) as f:
        text = f.read().replace("\\-", "-").replace("\\e", "\\").replace("\\(aq", "'")
    return re.sub(r"\\f[BIRP]", "", text)


class InstallTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="vnk-install-")
        cls.prefix = os.path.join(cls.tmp, "prefix")
        run(["cmake", "--install", BUILD, "--prefix", cls.prefix])

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def path(self, *parts):
        return os.path.join(self.prefix, *parts)

    def test_install_tree_has_program_pages_unit_library_and_config(self):
        for rel in ("bin/vnetkit", "lib/systemd/system/vnetkit-serve@.service",
                    "share/doc/vnetkit/examples/serve.toml.example", "include/vnetkit/net/net_device.hpp",
                    "include/vnetkit/usernet/tcp/tcp_flows.hpp", "lib/libvnetkit_net.a",
                    "lib/cmake/vnetkit/vnetkitConfig.cmake", "lib/pkgconfig/vnetkit.pc"):
            self.assertTrue(os.path.exists(self.path(rel)), rel)
        for page in ("vnetkit", *(f"vnetkit-{c}" for c in COMMANDS)):
            self.assertTrue(os.path.exists(self.path("share/man/man1", page + ".1")), page)
        r = run([self.path("bin/vnetkit"), "--version"])
        self.assertRegex(r.stdout, r"^vnetkit \d+\.\d+\.\d+")
        # Program-only layers are not installed as headers.
        for layer in ("cli", "vhost_user", "sandbox", "attach"):
            self.assertFalse(os.path.exists(self.path("include/vnetkit", layer)), layer)

    def check_example(self, binary):
        r = run([binary], timeout=30)
        self.assertIn("virtio-mmio version 2, device id 1 (net)", r.stdout)
        self.assertIn("frame looped back intact", r.stdout)

    def test_example_builds_with_find_package(self):
        build = os.path.join(self.tmp, "example-cmake")
        run(["cmake", "-S", os.path.join(SOURCE, "examples/embed_device"), "-B", build, "-G", "Ninja",
             f"-DCMAKE_PREFIX_PATH={self.prefix}"])
        run(["cmake", "--build", build])
        self.check_example(os.path.join(build, "embed_device"))

    def test_example_builds_with_pkg_config(self):
        env = {**os.environ, "PKG_CONFIG_PATH": self.path("lib/pkgconfig")}
        flags = run(["pkg-config", "--cflags", "--libs", "vnetkit"], env=env).stdout.split()
        includes = [os.path.normpath(f[2:]) for f in flags if f.startswith("-I")]
        self.assertIn(self.path("include/vnetkit"), includes)  # the .pc file finds its prefix from where it lies
        out = os.path.join(self.tmp, "embed_device_pc")
        run(["g++", "-o", out, os.path.join(SOURCE, "examples/embed_device/main.cpp"), *flags], env=env)
        self.check_example(out)

    def test_man_pages_name_every_option_of_their_help(self):
        pages = os.path.join(BUILD, "man")
        main = roff_text(os.path.join(pages, "vnetkit.1"))
        for section in ("CONFIGURATION FILE", "REACHABILITY", "SANDBOX", "SIGNALS", "EXIT STATUS", "METRICS", "LOGGING"):
            self.assertIn(f'.SH "{section}"', main.replace(".SH " + section, f'.SH "{section}"'), section)
        self.assertTrue(long_options(run([VNETKIT, "--help"]).stdout) <= long_options(main))
        for cmd in COMMANDS:
            page = roff_text(os.path.join(pages, f"vnetkit-{cmd}.1"))
            missing = long_options(run([VNETKIT, cmd, "--help"]).stdout) - long_options(page)
            self.assertEqual(missing, set(), f"vnetkit-{cmd}.1 lacks {missing}")
        # man renders every page without complaint.
        if shutil.which("man"):
            for page in glob.glob(os.path.join(pages, "*.1")):
                r = subprocess.run(["man", "--warnings", "-l", page], capture_output=True, text=True, timeout=60,
                                   env={**os.environ, "MANWIDTH": "80", "MAN_KEEP_FORMATTING": "0"})
                self.assertEqual(r.returncode, 0, page)
                self.assertEqual(r.stderr.strip(), "", f"{page}: {r.stderr}")

    @unittest.skipUnless(shutil.which("systemd-analyze"), "systemd-analyze not installed (scripts/setup --profile test)")
    def test_systemd_unit_verifies(self):
        unit_dir = os.path.join(self.tmp, "units")
        os.makedirs(unit_dir, exist_ok=True)
        with open(os.path.join(SOURCE, "dist/vnetkit-serve@.service")) as f:
            text = f.read()
        self.assertIn("ExecStart=/usr/bin/vnetkit --config /etc/vnetkit/%i.toml serve", text)
        for option in ("DynamicUser=yes", "NoNewPrivileges=yes", "ProtectSystem=strict", "CapabilityBoundingSet=CAP_NET_RAW\n",
                       "SystemCallArchitectures=native", "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
                       "SystemCallFilter=~@clock @cpu-emulation @debug @module @obsolete @raw-io @reboot @swap"):
            self.assertIn(option, text)
        unit = os.path.join(unit_dir, "vnetkit-serve@ci.service")
        with open(unit, "w") as f:
            f.write(text.replace("/usr/bin/vnetkit", self.path("bin/vnetkit")))
        r = subprocess.run(["systemd-analyze", "verify", "--man=no", unit], capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        # systemd's own rating of the hardening (0 best, 10 worst): 2.7 when
        # written, 3.7 before the system-call filter and CAP_NET_RAW.
        r = subprocess.run(["systemd-analyze", "security", "--offline=true", "--no-pager", unit],
                           capture_output=True, text=True, timeout=60)
        level = re.search(r"Overall exposure level for \S+: ([0-9.]+)", r.stdout)
        self.assertIsNotNone(level, r.stdout[-2000:] + r.stderr)
        self.assertLessEqual(float(level.group(1)), 3.0, r.stdout)
        # The example configuration is one vnetkit accepts.
        conf = os.path.join(self.tmp, "vm1.toml")
        with open(os.path.join(SOURCE, "dist/serve.toml.example")) as f:
            example = f.read().replace("/run/vnetkit/NAME", self.tmp)
        with open(conf, "w") as f:
            f.write(example)
        r = subprocess.run([VNETKIT, "--config", conf, "serve", "--help"], capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)

    @classmethod
    def debs(cls):
        """The Debian packages, made once per run: {package name: path}."""
        if not hasattr(cls, "_debs"):
            packages = os.path.join(cls.tmp, "packages")
            run(["cpack", "-G", "DEB", "--config", os.path.join(BUILD, "CPackConfig.cmake"), "-B", packages],
                timeout=600)
            cls._debs = {os.path.basename(p).split("_")[0]: p for p in glob.glob(os.path.join(packages, "*.deb"))}
        return cls._debs

    def test_debian_packages(self):
        debs = self.debs()
        self.assertEqual(sorted(debs), ["vnetkit", "vnetkit-dev"])
        field = lambda deb, name: run(["dpkg-deb", "-f", deb, name]).stdout.strip()
        depends = field(debs["vnetkit"], "Depends")
        for lib in ("libc6", "libfmt9", "libseccomp2", "libspdlog1.10", "libstdc++6"):
            self.assertIn(lib, depends)
        self.assertIn("libfmt-dev", field(debs["vnetkit-dev"], "Depends"))
        files = run(["dpkg-deb", "-c", debs["vnetkit"]]).stdout
        for f in ("./usr/bin/vnetkit", "./usr/share/man/man1/vnetkit.1", "./usr/share/man/man1/vnetkit-serve.1",
                  "./usr/lib/systemd/system/vnetkit-serve@.service"):
            self.assertIn(f, files)
        self.assertIn("./usr/lib/pkgconfig/vnetkit.pc", run(["dpkg-deb", "-c", debs["vnetkit-dev"]]).stdout)
        # apt finds every dependency (simulated: nothing on this machine changes).
        if shutil.which("apt-get"):
            r = subprocess.run(["apt-get", "install", "-s", "--no-install-recommends", debs["vnetkit"]],
                               capture_output=True, text=True, timeout=120)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        # The packaged program, from where the package puts it. As root: a
        # real `dpkg -i` (dependencies checked against what this machine
        # has) into a throwaway overlay of / in a mount namespace of its
        # own, so this machine's / is untouched.
        if os.geteuid() == 0 and shutil.which("unshare"):
            r = run(["unshare", "-m", "--propagation", "private", "bash", "-c", OVERLAY_INSTALL, "install",
                     debs["vnetkit"]], timeout=180)
            out = r.stdout
            self.assertIn("Setting up vnetkit (", out)
            self.assertIn("installed at /usr/bin/vnetkit", out)
            self.assertIn("/usr/share/man/man1/vnetkit-serve.1", out)
        else:
            root = os.path.join(self.tmp, "deb-root")
            run(["dpkg-deb", "-x", debs["vnetkit"], root])
            packaged = os.path.join(root, "usr/bin/vnetkit")
            out = run([packaged, "--version"]).stdout
            out += run([packaged, "netns", "--log-level", "warn", "--", "sh", "-c",
                        "ip -4 -o addr show dev tap0; ip route"], timeout=60).stdout
        self.assertRegex(out, r"vnetkit \d+\.\d+\.\d+")
        self.assertIn("10.0.2.15/24", out)
        self.assertIn("default via 10.0.2.2", out)

    @unittest.skipUnless(os.geteuid() == 0 and shutil.which("systemd-nspawn") and shutil.which("unshare")
                         and os.path.exists("/lib/systemd/systemd") and shutil.which("linux.uml"),
                         "needs root, systemd, systemd-container and user-mode-linux (scripts/setup --profile test)")
    def test_unit_runs_under_systemd(self):
        # The packaged unit as systemd runs it: the package dpkg-installed in
        # a throwaway overlay of /, booted with systemd as PID 1 in a
        # container (systemd-nspawn, its own network namespace with only lo)
        # up to a target that wants vnetkit-serve@ci. A UML guest (Linux 6.1)
        # attaches to the instance's socket from outside, takes a lease and
        # pings the gateway.
        initrd = os.path.join(GUEST_DIR, "uml-initramfs.cpio.gz")
        r = subprocess.run(["unshare", "-m", "--propagation", "private", "bash", "-c", UNIT_BOOT, "unit",
                            self.debs()["vnetkit"], initrd], capture_output=True, text=True, timeout=240)
        out = r.stdout
        if r.returncode == 77:  # systemd never came up as the container's PID 1: this host, not the unit
            self.skipTest("systemd-nspawn could not boot a container here: " + out.strip().splitlines()[-1])
        self.assertEqual(r.returncode, 0, out[-4000:] + r.stderr[-2000:])
        section = lambda name: out.split(f"== {name}\n", 1)[1].split("\n== ", 1)[0]
        self.assertEqual(section("state").split(), ["active", "User=vnetkit-serve"], out[-4000:])
        journal = section("journal")
        self.assertIn("listening on /run/vnetkit/ci/net.sock", journal)
        self.assertIn("metrics: Prometheus at http://127.0.0.1:9464/metrics", journal)
        self.assertIn("no capabilities, seccomp allowlist", journal)
        # Where this host lets users create user namespaces, the unit's
        # hardening leaves vnetkit's whole sandbox in place.
        doctor = subprocess.run([VNETKIT, "doctor"], capture_output=True, text=True, timeout=60).stdout
        if re.search(r"^ok +user namespaces", doctor, re.M):
            self.assertIn("sandbox: user namespace, mount/IPC/UTS namespaces, empty root", journal)
            self.assertNotIn("host allows no more", journal)
        # The journal keeps vnetkit's priorities: info lines are not warnings.
        self.assertNotIn("listening on", section("warnings"))
        self.assertIn("VNK: lease event=bound ip=10.0.2.15", section("guest"))
        # The container's ping sockets are closed (nspawn keeps /proc/sys
        # read-only), as on a stock Debian 12: the unit's CAP_NET_RAW lets
        # vnetkit open its raw ICMP socket before it drops every capability.
        self.assertIn("VNK: ping ok", section("guest"))
        self.assertIn("VNK: done status=0", section("guest"))
        scrape = section("scrape")
        self.assertIn('vnetkit_backend_dhcp_acks_total{device="/run/vnetkit/ci/net.sock"} 1', scrape)
        self.assertIn("vnetkit_vhost_user_messages_total", scrape)
        self.assertIn("metrics.prom", section("runtime directory"))
        self.assertIn("log level is now debug (SIGTTIN)", section("signal"))
        # systemctl stop: SIGTERM, and vnetkit exits 0.
        self.assertEqual(sorted(section("stopped").split()), ["ExecMainStatus=0", "Result=success"])


# A throwaway overlay of / at $r, its writes going to a tmpfs; a script that
# starts something in it redefines on_exit to end it before the unmount.
OVERLAY_ROOT = r"""
set -euo pipefail
t=$(mktemp -d /tmp/vnk-overlay.XXXXXX)
on_exit() { :; }
trap 'on_exit; umount -R "$t" 2> /dev/null || umount -l "$t"; rmdir "$t"' EXIT
mount -t tmpfs none "$t"
mkdir "$t/upper" "$t/work" "$t/root"
mount -t overlay overlay -o "lowerdir=/,upperdir=$t/upper,workdir=$t/work" "$t/root"
r=$t/root
"""

# $1: the .deb, $2: the UML guest's initramfs. Boots the unit under systemd
# (see test_unit_runs_under_systemd) and prints sections "== NAME".
UNIT_BOOT = OVERLAY_ROOT + r"""
ns=""
on_exit() {
  if [[ -n $ns ]] && kill -0 "$ns" 2> /dev/null; then
    kill -TERM "$ns"  # nspawn asks the container's systemd to power off
    for _ in $(seq 100); do kill -0 "$ns" 2> /dev/null || break; sleep 0.2; done
    kill -KILL "$ns" 2> /dev/null || true
  fi
}
cp "$1" "$r/tmp/"
mount -t proc proc "$r/proc"
chroot "$r" dpkg -i "/tmp/$(basename "$1")" > /dev/null
umount "$r/proc"
: > "$r/etc/fstab"  # this machine's mounts are not the container's
mkdir -p "$r/etc/vnetkit"
cat > "$r/etc/vnetkit/ci.toml" << 'TOML'
[serve]
vhost-user = "/run/vnetkit/ci/net.sock"
net = "user"
metrics = "/run/vnetkit/ci/metrics.prom"
metrics-listen = "127.0.0.1:9464"
TOML
cat > "$r/etc/systemd/system/vnetkit-ci.target" << 'UNIT'
[Unit]
Description=vnetkit's unit under test
Wants=vnetkit-serve@ci.service
After=vnetkit-serve@ci.service
UNIT
systemd-nspawn -q -D "$r" --boot --private-network --register=no --keep-unit --machine "vnk-ci-$$" \
  -- systemd.unit=vnetkit-ci.target > "$t/console.log" 2>&1 &
ns=$!
c=""
for _ in $(seq 100); do
  c=$(pgrep -P "$ns" -x systemd || true)
  [[ -n $c ]] && break
  kill -0 "$ns" 2> /dev/null || break
  sleep 0.2
done
if [[ -z $c ]]; then
  ns=""
  echo "== console"; cat "$t/console.log"
  exit 77
fi
sock=/proc/$c/root/run/vnetkit/ci/net.sock
for _ in $(seq 150); do [[ -S $sock ]] && break; sleep 0.2; done
inside() { nsenter -t "$c" -a -r -w -- env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin "$@"; }
echo "== state"
inside systemctl is-active vnetkit-serve@ci.service || true
inside systemctl show -p User --value vnetkit-serve@ci.service | sed 's/^/User=/'
echo "== journal"; inside journalctl -u vnetkit-serve@ci.service -o cat --no-pager
echo "== warnings"; inside journalctl -u vnetkit-serve@ci.service -p warning -o cat --no-pager
echo "== guest"
timeout 60 linux.uml mem=256M "initrd=$2" "virtio_uml.device=$sock:1" vnk.test=net con=null con0=null,fd:1 \
  < /dev/null 2>&1 | grep '^VNK:' || true
echo "== scrape"; inside curl -s --max-time 5 http://127.0.0.1:9464/metrics | grep -v '^#' || true
echo "== runtime directory"; ls "/proc/$c/root/run/vnetkit/ci/"
echo "== signal"
inside systemctl kill -s SIGTTIN vnetkit-serve@ci.service
sleep 0.5
inside journalctl -u vnetkit-serve@ci.service -o cat --no-pager | grep 'log level' || true
echo "== stopped"
inside systemctl stop vnetkit-serve@ci.service
inside systemctl show -p Result -p ExecMainStatus vnetkit-serve@ci.service
echo "== end"
"""

# $1: the .deb. Installs it with dpkg into an overlay of / (writes go to a
# tmpfs) and runs the installed program there.
OVERLAY_INSTALL = OVERLAY_ROOT + r"""
mount -t proc proc "$r/proc"
mount --rbind /dev "$r/dev"
mount --rbind /sys "$r/sys"
mount -t tmpfs none "$r/tmp"
cp "$1" "$r/tmp/"
chroot "$r" sh -c '
  dpkg -i /tmp/*.deb
  echo "installed at $(command -v vnetkit)"
  vnetkit --version
  man -w vnetkit-serve
  vnetkit netns --log-level warn -- sh -c "ip -4 -o addr show dev tap0; ip route"'
"""

if __name__ == "__main__":
    unittest.main()
