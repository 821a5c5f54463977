"""Installing vnetkit: `cmake --install` into a fresh prefix (the program,
man pages, systemd unit, and for VMM authors the libraries, headers, CMake
package and pkg-config file); examples/embed_device built against that
prefix both ways and run; the man pages against --help; the unit through
systemd-analyze; and the Debian packages from `cpack -G DEB`: their
dependencies resolvable by apt, and the packaged program running a netns
smoke test from where the package puts it."""
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import BUILD, VNETKIT  # noqa: E402

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
        for option in ("DynamicUser=yes", "NoNewPrivileges=yes", "ProtectSystem=strict", "CapabilityBoundingSet=",
                       "SystemCallArchitectures=native", "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6"):
            self.assertIn(option, text)
        unit = os.path.join(unit_dir, "vnetkit-serve@ci.service")
        with open(unit, "w") as f:
            f.write(text.replace("/usr/bin/vnetkit", self.path("bin/vnetkit")))
        r = subprocess.run(["systemd-analyze", "verify", "--man=no", unit], capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        # The example configuration is one vnetkit accepts.
        conf = os.path.join(self.tmp, "vm1.toml")
        with open(os.path.join(SOURCE, "dist/serve.toml.example")) as f:
            example = f.read().replace("/run/vnetkit/NAME", self.tmp)
        with open(conf, "w") as f:
            f.write(example)
        r = subprocess.run([VNETKIT, "--config", conf, "serve", "--help"], capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_debian_packages(self):
        packages = os.path.join(self.tmp, "packages")
        run(["cpack", "-G", "DEB", "--config", os.path.join(BUILD, "CPackConfig.cmake"), "-B", packages], timeout=600)
        debs = {os.path.basename(p).split("_")[0]: p for p in glob.glob(os.path.join(packages, "*.deb"))}
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


# $1: the .deb. Installs it with dpkg into an overlay of / (writes go to a
# tmpfs) and runs the installed program there.
OVERLAY_INSTALL = r"""
set -euo pipefail
t=$(mktemp -d /tmp/vnk-overlay.XXXXXX)
trap 'umount -R "$t" 2>/dev/null || umount -l "$t"; rmdir "$t"' EXIT
mount -t tmpfs none "$t"
mkdir "$t/upper" "$t/work" "$t/root"
mount -t overlay overlay -o "lowerdir=/,upperdir=$t/upper,workdir=$t/work" "$t/root"
mount -t proc proc "$t/root/proc"
mount --rbind /dev "$t/root/dev"
mount --rbind /sys "$t/root/sys"
mount -t tmpfs none "$t/root/tmp"
cp "$1" "$t/root/tmp/"
chroot "$t/root" sh -c '
  dpkg -i /tmp/*.deb
  echo "installed at $(command -v vnetkit)"
  vnetkit --version
  man -w vnetkit-serve
  vnetkit netns --log-level warn -- sh -c "ip -4 -o addr show dev tap0; ip route"'
"""

if __name__ == "__main__":
    unittest.main()
