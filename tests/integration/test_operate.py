"""Operating vnetkit: --config files, the Prometheus metrics (a .prom file
and --metrics-listen, read with the Prometheus project's own Python parser),
`vnetkit stats` on a namespace moving real traffic, and logging (the
journal's priority lines, syslog, the level changed by SIGTTIN/SIGTTOU)."""
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import VNETKIT, Process, Serve, Uml  # noqa: E402

try:
    from prometheus_client.parser import text_string_to_metric_families
except ImportError:  # a Python of its own (pyenv) beside Debian's package
    sys.path.append("/usr/lib/python3/dist-packages")
    from prometheus_client.parser import text_string_to_metric_families

NAME = re.compile(r"^vnetkit_[a-z][a-z0-9_]*$")


class Dir:
    def __init__(self):
        self.path = tempfile.mkdtemp(prefix="vnk-operate-")

    def file(self, name, text=None):
        p = os.path.join(self.path, name)
        if text is not None:
            with open(p, "w") as f:
                f.write(text)
        return p


def serve(*args, env=None):
    p = Process([VNETKIT, *args], "vnetkit", env=env)
    p.wait_for(r"vnetkit serve: \w+ backend", 15)
    return p


def stop(p):
    os.kill(p.proc.pid, signal.SIGTERM)
    status = p.wait(15)
    p.reader.join(5)
    p.proc.stdout.close()
    return status


def families(text):
    """name -> family, failing on anything the reference parser rejects."""
    return {f.name: f for f in text_string_to_metric_families(text)}


class ConfigTest(unittest.TestCase):
    def setUp(self):
        self.d = Dir()
        self.addCleanup(shutil.rmtree, self.d.path, True)

    def test_options_from_file_and_command_line_wins(self):
        sock = self.d.file("net.sock")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        conf = self.d.file("vm.toml", f'log-level = "info"\n[serve]\nstream = "{sock}"\nnet = "user"\n'
                                      f'forward = ["tcp:127.0.0.1:{port}:22"]\nguests = 1\nno-sandbox = true\n')
        p = serve("--config", conf, "serve")
        try:
            self.assertIn(f"user backend, QEMU stream framing, listening on {sock}", p.text())
            self.assertIn(f"forwarding --forward tcp:127.0.0.1:{port}:22", p.text())
            self.assertTrue(os.path.exists(sock))
        finally:
            self.assertEqual(stop(p), 0)
        # The command line wins: --net loopback over the file's user.
        p = serve("serve", "--config", conf, "--net", "loopback")
        try:
            self.assertIn("loopback backend", p.text())
        finally:
            self.assertEqual(stop(p), 0)

    def test_unknown_key_is_an_error_naming_it(self):
        conf = self.d.file("bad.toml", '[serve]\nvhost-user = "/tmp/x.sock"\nnett = "user"\n')
        r = subprocess.run([VNETKIT, "--config", conf, "serve"], capture_output=True, text=True, timeout=30)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn(conf, r.stderr)
        self.assertIn("serve.nett", r.stderr)
        bad_value = self.d.file("bad2.toml", '[serve]\nguests = "many"\n')
        r = subprocess.run([VNETKIT, "--config", bad_value, "serve"], capture_output=True, text=True, timeout=30)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("--guests", r.stderr)


class PrometheusTest(unittest.TestCase):
    def setUp(self):
        self.d = Dir()
        self.addCleanup(shutil.rmtree, self.d.path, True)

    def check_exposition(self, text, device):
        fams = families(text)
        self.assertGreater(len(fams), 100, "usernet alone has ~100 counters")
        for name, fam in fams.items():
            self.assertRegex(name, NAME)
            self.assertIn(fam.type, ("counter", "gauge"), name)
            self.assertTrue(fam.documentation and not fam.documentation.startswith(name), f"{name}: no HELP")
            for sample in fam.samples:
                self.assertEqual(sample.labels.get("device"), device, sample)
                if fam.type == "counter":
                    self.assertTrue(sample.name.endswith("_total"), sample.name)
        # Counters name what they count: the parser strips _total from the family.
        self.assertIn("vnetkit_backend_drop_link_local", fams)
        self.assertEqual(fams["vnetkit_backend_drop_link_local"].type, "counter")
        self.assertIn("link-local", fams["vnetkit_backend_drop_link_local"].documentation)
        self.assertEqual(fams["vnetkit_build_info"].type, "gauge")
        return fams

    def test_prom_file_and_http_endpoint(self):
        prom = self.d.file("metrics.prom")
        sock = self.d.file("net.sock")
        p = serve("serve", "--vhost-user", sock, "--net", "user", "--metrics", prom, "--metrics-interval", "50",
                  "--metrics-listen", "127.0.0.1:0", "--metrics-device", "vm1")
        try:
            url = "http://" + p.wait_for(r"Prometheus at http://([0-9.:]+)/metrics", 5).group(1)
            with urllib.request.urlopen(url + "/metrics", timeout=10) as r:
                self.assertEqual(r.status, 200)
                self.assertTrue(r.headers["Content-Type"].startswith("text/plain; version=0.0.4"))
                fams = self.check_exposition(r.read().decode(), "vm1")
            self.assertEqual(fams["vnetkit_server_link_up"].type, "gauge")
            self.assertEqual(fams["vnetkit_server_link_up"].samples[0].value, 1)
            self.assertIn("vnetkit_net_tx_packets", fams)
            self.assertIn("vnetkit_vhost_user_messages", fams)
            # SIGUSR1 takes the link down: the gauge follows.
            os.kill(p.proc.pid, signal.SIGUSR1)
            p.wait_for(r"link down", 5)
            with urllib.request.urlopen(url + "/metrics", timeout=10) as r:
                self.assertEqual(families(r.read().decode())["vnetkit_server_link_up"].samples[0].value, 0)
            # The textfile collector's file: the same format, the same names.
            time.sleep(0.2)
            with open(prom) as f:
                self.check_exposition(f.read(), "vm1")
            # Anything else is refused; a HEAD has no body.
            for path, method, code in (("/nope", "GET", 404), ("/metrics", "POST", 405)):
                with self.assertRaises(urllib.error.HTTPError) as e:
                    urllib.request.urlopen(urllib.request.Request(url + path, method=method), timeout=10)
                self.assertEqual(e.exception.code, code)
            with urllib.request.urlopen(urllib.request.Request(url + "/metrics", method="HEAD"), timeout=10) as r:
                self.assertEqual(r.status, 200)
                self.assertEqual(r.read(), b"")
            # Idle clients cannot keep a scrape out: the oldest gives way.
            host, port = url[7:].rsplit(":", 1)
            idle = [socket.create_connection((host, int(port))) for _ in range(40)]
            with urllib.request.urlopen(url + "/metrics", timeout=10) as r:
                fams = families(r.read().decode())
            for s in idle:
                s.close()
            self.assertGreater(fams["vnetkit_metrics_http_evicted"].samples[0].value, 0)
            self.assertGreaterEqual(fams["vnetkit_metrics_http_bad_requests"].samples[0].value, 1)
            self.assertGreaterEqual(fams["vnetkit_metrics_http_not_found"].samples[0].value, 1)
        finally:
            self.assertEqual(stop(p), 0)

    def scrape(self, serve):
        url = "http://" + serve.wait_for(r"Prometheus at http://([0-9.:]+)/metrics", 5).group(1) + "/metrics"
        with urllib.request.urlopen(url, timeout=3) as r:  # a loop that did not serve it would time out
            return families(r.read().decode())

    def test_scrapes_while_a_guest_is_attached(self):
        # The endpoint is served by whichever loop runs: one frontend's
        # session, and the several-frontends loop of --guests.
        for extra in ((), ("--guests", "2")):
            serve = Serve("--metrics-listen", "127.0.0.1:0", *extra)
            self.addCleanup(serve.cleanup)
            g = Uml(serve.sock, "link")
            self.addCleanup(g.kill)
            g.wait_for(r"VNK: ready-link", 60)
            fams = self.scrape(serve)
            self.assertIn("vnetkit_net_rx_packets", fams)
            self.assertGreaterEqual(fams["vnetkit_vhost_user_messages"].samples[0].value, 10)
            if extra:
                self.assertEqual(fams["vnetkit_switch_guests_attached"].samples[0].value, 1)
            serve.signal(signal.SIGUSR1)
            g.wait_for(r"VNK: carrier=0", 20)
            self.assertEqual(self.scrape(serve)["vnetkit_server_link_up"].samples[0].value, 0)
            serve.signal(signal.SIGUSR2)
            g.wait_for(r"VNK: carrier=1", 20)
            # (The guest's echo check after this needs the loopback backend
            # to itself: behind --guests' switch it is not run.)
            if not extra:
                self.assertEqual(g.status(), 0)
            g.kill()
            self.assertEqual(serve.stop(), 0)

    def test_listen_address_errors(self):
        r = subprocess.run([VNETKIT, "serve", "--vhost-user", self.d.file("s.sock"), "--metrics-listen", "nowhere"],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 2)
        self.assertIn("--metrics-listen nowhere: expected PORT, IPV4:PORT or [IPV6]:PORT", r.stderr)


@unittest.skipUnless(os.geteuid() == 0 or shutil.which("unshare"), "netns needs root or user namespaces")
class StatsTest(unittest.TestCase):
    def setUp(self):
        self.d = Dir()
        self.addCleanup(shutil.rmtree, self.d.path, True)

    def test_stats_of_a_namespace_moving_traffic(self):
        # A loopback HTTP server on the host; the namespace fetches 8 MiB from
        # it through the gateway (10.0.2.2 is the host's 127.0.0.1) in a loop.
        blob = self.d.file("blob")
        with open(blob, "wb") as f:
            f.write(os.urandom(8 << 20))
        http = Process([sys.executable, "-u", "-m", "http.server", "0", "--bind", "127.0.0.1", "--directory", self.d.path],
                       "http.server")
        self.addCleanup(http.kill)
        port = http.wait_for(r"port (\d+)", 10).group(1)
        metrics = self.d.file("metrics.json")
        ns = Process([VNETKIT, "netns", "--metrics", metrics, "--metrics-interval", "100", "--metrics-listen", "0",
                      "--", "sh", "-c", f"for i in $(seq 40); do curl -s -o /dev/null http://10.0.2.2:{port}/blob; "
                                        "done; curl -s -m 3 -o /dev/null http://169.254.169.254/ || true; sleep 1"],
                     "vnetkit netns")
        self.addCleanup(ns.kill)
        where = ns.wait_for(r"Prometheus at http://([0-9.:]+)/metrics", 10).group(1)
        time.sleep(0.5)
        for source in (where, metrics):
            r = subprocess.run([VNETKIT, "stats", "-i", "0.5", source], capture_output=True, text=True, timeout=30)
            self.assertEqual(r.returncode, 0, r.stderr)
            m = re.search(r"to the guest\s+(\d+)\s+(\d+)\s+\S+ \S+\s+([\d.]+)", r.stdout)
            self.assertIsNotNone(m, r.stdout)
            self.assertGreater(int(m.group(1)), 0)
            self.assertIn("namespace TAP", r.stdout)
        ns.wait(120)
        # The link-local probe was refused and shows up by reason.
        r = subprocess.run([VNETKIT, "stats", "-i", "0.1", metrics], capture_output=True, text=True, timeout=30)
        self.assertRegex(r.stdout, r"backend\.drop_link_local\s+[1-9]")
        # --watch with --count: that many reports.
        r = subprocess.run([VNETKIT, "stats", "--watch", "-n", "3", "-i", "0.1", metrics], capture_output=True,
                           text=True, timeout=30)
        self.assertEqual(r.stdout.count("vnetkit stats: "), 3, r.stdout)

    def test_unreadable_source(self):
        for source in (self.d.file("missing.json"), "127.0.0.1:1"):
            r = subprocess.run([VNETKIT, "stats", source], capture_output=True, text=True, timeout=30)
            self.assertEqual(r.returncode, 1)
            self.assertIn(source, r.stderr)
        garbage = self.d.file("garbage.prom", "vnetkit_x{device=\"a\"} twelve\n")
        r = subprocess.run([VNETKIT, "stats", garbage], capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 1)
        self.assertIn("not a number", r.stderr)


class LoggingTest(unittest.TestCase):
    def setUp(self):
        self.d = Dir()
        self.addCleanup(shutil.rmtree, self.d.path, True)

    def test_journal_priorities_and_level_by_signal(self):
        # What systemd does for a service: stderr is a stream the journal
        # reads, named in JOURNAL_STREAM. Here it is a file.
        log = self.d.file("journal.log")
        with open(log, "w") as err:
            st = os.fstat(err.fileno())
            env = {**os.environ, "JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"}
            proc = subprocess.Popen([VNETKIT, "serve", "--stream", self.d.file("s.sock"), "--net", "user"],
                                    stderr=err, stdout=subprocess.DEVNULL, env=env)
            try:
                def wait_text(pattern):
                    deadline = time.monotonic() + 10
                    while time.monotonic() < deadline:
                        with open(log) as f:
                            text = f.read()
                        if re.search(pattern, text, re.M):
                            return text
                        time.sleep(0.05)
                    self.fail(f"no {pattern!r} in:\n{text}")
                text = wait_text(r"^<6>vnetkit serve: user backend")
                self.assertNotRegex(text, r"^\[20", "no time stamps: the journal has its own")
                self.assertNotRegex(text, r"^<7>")
                proc.send_signal(signal.SIGTTIN)
                wait_text(r"^<4>log level is now debug \(SIGTTIN\)")
                proc.send_signal(signal.SIGTTOU)
                wait_text(r"^<4>log level is now info \(SIGTTOU\)")
                proc.send_signal(signal.SIGTTOU)  # (one at a time: a pending signal is not queued twice)
                wait_text(r"^<4>log level is now warn \(SIGTTOU\)")
            finally:
                proc.send_signal(signal.SIGTERM)
                self.assertEqual(proc.wait(15), 0)

    @unittest.skipUnless(os.geteuid() == 0 and shutil.which("unshare"), "needs root: a private /dev with a log socket")
    def test_syslog_target(self):
        # A mount namespace whose /dev/log is a datagram socket of ours.
        sock_path = self.d.file("log")
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        s.bind(sock_path)
        s.settimeout(10)
        self.addCleanup(s.close)
        script = (f"mount -t tmpfs none /dev && ln -s {sock_path} /dev/log && "
                  f"exec timeout -s TERM 2 {VNETKIT} --log-target syslog serve --stream {self.d.file('s.sock')}")
        subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script], capture_output=True,
                       text=True, timeout=30)
        got = []
        try:
            while True:
                got.append(s.recv(4096).decode(errors="replace"))
                if any("vnetkit serve: loopback backend" in g for g in got):
                    break
        except socket.timeout:
            pass
        msg = next((g for g in got if "vnetkit serve: loopback backend" in g), None)
        self.assertIsNotNone(msg, got)
        # <PRI> = facility daemon (3) * 8 + info (6) = 30; the tag names vnetkit and its pid.
        self.assertRegex(msg, r"^<30>.*vnetkit\[\d+\]: ")


if __name__ == "__main__":
    unittest.main()
