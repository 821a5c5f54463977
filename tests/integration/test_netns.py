"""`vnetkit netns`: real programs in a network namespace served by usernet
through a TAP device. The namespace is configured without DHCP; inside it
busybox ping, the glibc resolver (through the private /etc/resolv.conf),
Python's HTTP client (100 MiB down and up, sha256-checked) and iperf3 reach
servers this test runs on the host's 127.0.0.1 via the gateway address; a
port forward reaches a server inside from the host. Traffic goes only to
127.0.0.1 and to the namespaces the tests create.
"""
import hashlib
import json
import os
import shutil
import resource
import signal
import socket
import subprocess
import threading
import sys
import tempfile
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
from harness import VNETKIT, Process, kv, read_metrics  # noqa: E402
from servers import DnsServer, HttpServer, Iperf3Server, free_port  # noqa: E402

CLIENT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "netns_client.py")
MANY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "many_connections.py")
PYTHON = "/usr/bin/python3"


class Netns(Process):
    """`vnetkit netns ARGS` with a metrics file."""

    def __init__(self, *args, env=None, prefix=()):
        """env: extra environment (e.g. VNETKIT_PRETEND_MISSING); prefix: a command to run vnetkit under (prlimit)."""
        self.dir = tempfile.mkdtemp(prefix="vnk-netns-")
        os.chmod(self.dir, 0o755)
        self.metrics_path = os.path.join(self.dir, "metrics.json")
        argv = [*prefix, VNETKIT, "netns", "--metrics", self.metrics_path, "--metrics-interval", "50", *args]
        super().__init__(argv, "vnetkit netns", env={**os.environ, **(env or {})})

    def metrics(self):
        return read_metrics(self.metrics_path)

    def cleanup(self):
        if self.alive():
            self.kill()
        self.reader.join(5)
        self.proc.stdout.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def local_dns(test):
    dns = DnsServer({"vnetkit.test": "192.0.2.7"})
    test.addCleanup(dns.close)
    return ["--dns-upstream", f"127.0.0.1:{dns.port}"]


@unittest.skipUnless(os.path.exists("/dev/net/tun"), "no /dev/net/tun on this machine")
class NetnsTest(unittest.TestCase):
    def run_netns(self, *args, timeout=60, env=None, prefix=()):
        n = Netns(*args, env=env, prefix=prefix)
        self.addCleanup(n.cleanup)
        status = n.wait(timeout)
        n.reader.join(5)
        return n, status

    def test_command_runs_in_a_configured_namespace_and_its_status_is_returned(self):
        n, status = self.run_netns(*local_dns(self), "--", "sh", "-c",
                                   "ip -o -4 addr show tap0; ip -o link show tap0; ip route; cat /etc/resolv.conf; exit 7")
        out = n.text()
        self.assertEqual(status, 7, out)
        self.assertIn("inet 10.0.2.15/24", out)
        self.assertIn("mtu 65520", out)
        self.assertIn("link/ether 02:00:00:00:00:01", out)
        self.assertIn("default via 10.0.2.2 dev tap0", out)
        self.assertIn("nameserver 10.0.2.3", out)

    def test_clear_errors_and_exit_codes(self):
        n, status = self.run_netns(*local_dns(self), "--", "no-such-command-vnk")
        self.assertEqual(status, 127)
        self.assertIn("cannot run no-such-command-vnk: No such file or directory", n.text())
        plain = tempfile.NamedTemporaryFile(prefix="vnk-not-executable-")
        self.addCleanup(plain.close)
        n, status = self.run_netns(*local_dns(self), "--", plain.name)
        self.assertEqual(status, 126)
        self.assertIn("Permission denied", n.text())
        n, status = self.run_netns("--netns", "/nonexistent/ns")
        self.assertEqual(status, 125)
        self.assertIn("cannot open /nonexistent/ns", n.text())
        n, status = self.run_netns("--mtu", "70000", "--", "true")
        self.assertNotEqual(status, 0)
        n, status = self.run_netns(*local_dns(self), "--ifname", "x" * 20, "--", "true")
        self.assertEqual(status, 125)
        self.assertIn("must be 1..15 characters", n.text())

    def test_namespace_reaches_host_services(self):
        self.reach_host_services()

    def test_namespace_reaches_host_services_without_peek_off_or_ping_sockets(self):
        """As on Linux before 6.9 with ping sockets closed: TCP re-peeks from
        the queue head, pings go through a raw ICMP socket (we are root)."""
        n = self.reach_host_services({"VNETKIT_PRETEND_MISSING": "tcp-peek-off,ping-sockets"})
        self.assertIn("no TCP SO_PEEK_OFF", n.text())
        m = n.metrics()["backend"]
        self.assertGreater(m["tcp_bytes_repeeked"], 0)
        self.assertEqual(m["icmp_echo_replies"], 3)

    def test_at_mtu_1500_tcp_travels_in_64k_frames_with_offloads_and_without(self):
        """A namespace at MTU 1500: with the TAP's offloads TCP crosses in
        frames far larger than the MTU (GSO both ways), with partial
        checksums; with --no-offload in MTU-sized frames. Byte-exact either way."""
        n = self.reach_host_services(args=("--mtu", "1500"))
        self.assertIn("checksum and TCP segmentation offload", n.text())
        tap = n.metrics()["tap"]
        print(f"MTU 1500 with offloads: {tap['bytes_to_tap'] / tap['frames_to_tap']:.0f} B per frame to the TAP, "
              f"{tap['bytes_from_tap'] / tap['frames_from_tap']:.0f} B from it", flush=True)
        self.assertGreater(tap["bytes_to_tap"] / tap["frames_to_tap"], 4000, "GSO frames toward the namespace")
        self.assertGreater(tap["bytes_from_tap"] / tap["frames_from_tap"], 4000, "GSO frames from the namespace")
        plain = self.reach_host_services(args=("--mtu", "1500", "--no-offload"))
        self.assertIn("no offloads", plain.text())
        tap = plain.metrics()["tap"]
        self.assertLess(tap["bytes_to_tap"] / tap["frames_to_tap"], 1515)

    def test_ipv6_slaac_in_the_namespace(self):
        """--ipv6: the namespace's kernel configures itself from usernet's
        Router Advertisement: an fd00::/64 address from its MAC (EUI-64), the
        gateway's link-local address as default router, the RA's MTU."""
        script = ("for i in $(seq 100); do ip -6 -o addr show dev tap0 scope global -tentative | grep -q fd00 "
                  "&& break; sleep 0.1; done; ip -6 -o addr show dev tap0 scope global; ip -6 route show default; "
                  "echo mtu6=$(cat /proc/sys/net/ipv6/conf/tap0/mtu)")
        n, status = self.run_netns(*local_dns(self), "--ipv6", "--mac", "02:00:00:00:0a:0f", "--", "sh", "-c", script)
        out = n.text()
        self.assertEqual(status, 0, out)
        self.assertIn("inet6 fd00::ff:fe00:a0f/64 scope global", out)
        self.assertIn("default via fe80::5055:aff:fe00:202 dev tap0 proto ra", out)
        self.assertIn("mtu6=65520", out)
        b = n.metrics()["backend"]
        self.assertGreaterEqual(b["ndp_router_solicitations"], 1)
        self.assertEqual((b["ndp_malformed"], b["ipv6_malformed"]), (0, 0))

    def test_udp_datagrams_larger_than_the_mtu_cross_in_fragments(self):
        """A namespace at MTU 1500 sends UDP datagrams of 3,000 and 20,000
        bytes as IPv4 fragments; usernet puts them together, and a host echo
        server's answers go back in fragments of at most the MTU, which the
        namespace's kernel puts together."""
        self.fragments_both_ways(socket.AF_INET, "10.0.2.2")

    def test_udp_datagrams_larger_than_the_mtu_cross_in_ipv6_fragments(self):
        """The same over IPv6 (--ipv6): Fragment headers both ways."""
        self.fragments_both_ways(socket.AF_INET6, "fd00::2")

    def fragments_both_ways(self, family, gateway):
        v6 = family == socket.AF_INET6
        echo = socket.socket(family, socket.SOCK_DGRAM)
        echo.bind(("::1" if v6 else "127.0.0.1", 0))
        self.addCleanup(echo.close)

        def serve():
            try:
                for _ in range(3):
                    data, peer = echo.recvfrom(65536)
                    echo.sendto(data, peer)
            except OSError:
                pass
        threading.Thread(target=serve, daemon=True).start()
        wait = ("import subprocess, time\n"
                "for _ in range(100):\n"
                "    if 'fd00:' in subprocess.run(['ip', '-6', '-o', 'addr', 'show', 'scope', 'global', '-tentative'],"
                " capture_output=True, text=True).stdout: break\n"
                "    time.sleep(0.1)\n") if v6 else ""
        script = (wait + "import hashlib, socket\n"
                  f"s = socket.socket({int(family)}, socket.SOCK_DGRAM)\n"
                  "s.settimeout(5)\n"
                  "for n in (1000, 3000, 20000):\n"
                  "    data = bytes(i * 7 % 251 for i in range(n))\n"
                  f"    s.sendto(data, ('{gateway}', {echo.getsockname()[1]}))\n"
                  "    back, _ = s.recvfrom(65536)\n"
                  "    print('VNK: echo', f'size={n}', f'same={back == data}', flush=True)\n")
        n, status = self.run_netns(*local_dns(self), *(["--ipv6"] if v6 else []), "--mtu", "1500", "--",
                                   PYTHON, "-c", script)
        self.assertEqual(status, 0, n.tail())
        for size in (1000, 3000, 20000):
            self.assertIn(f"VNK: echo size={size} same=True", n.text())
        b = n.metrics()["backend"]
        self.assertEqual(b["ip_reassembled"], 2)  # 1000 bytes fit one frame
        self.assertGreaterEqual(b["ip_fragments"], 3 + 14)
        self.assertGreaterEqual(b["ip_fragments_to_guest"], 3 + 14, "the answers come back in fragments too")
        self.assertEqual((b["ip_fragments_dropped"], b["ip_reassembly_timeouts"], b["drop_malformed"]), (0, 0, 0))

    def test_a_real_dhcpv6_client_gets_dns_and_an_address(self):
        """ISC dhclient -6 in the namespace against usernet's DHCPv6 server:
        stateless (-S, Information-Request) it learns fd00::3 as name server;
        with --dhcpv6-address the stateful exchange (Solicit, Advertise,
        Request, Reply) binds fd00::15. dhclient's script reports what it got."""
        dhclient = shutil.which("dhclient") or "/usr/sbin/dhclient"
        if not os.path.exists(dhclient):
            self.skipTest("dhclient (isc-dhcp-client, installed by scripts/setup) is missing")
        work = tempfile.mkdtemp(prefix="vnk-dhclient-")
        self.addCleanup(shutil.rmtree, work, True)
        report = os.path.join(work, "report.sh")
        with open(report, "w") as f:
            f.write("#!/bin/sh\necho \"VNK: dhcpv6 reason=$reason address=${new_ip6_address:-none} "
                    "dns=${new_dhcp6_name_servers:-none}\"\n")
        os.chmod(report, 0o755)
        run = (f"timeout 8 {dhclient} -6 {{flags}} -d -1 -v -lf {work}/{{name}}.leases -pf {work}/{{name}}.pid "
               f"-sf {report} tap0 > {work}/{{name}}.log 2>&1 & sleep 3; kill $! 2>/dev/null; wait; "
               f"grep VNK: {work}/{{name}}.log; ")
        script = ("for i in $(seq 100); do ip -6 -o addr show dev tap0 scope link -tentative | grep -q fe80 "
                  "&& break; sleep 0.1; done; " + run.format(flags="-S", name="stateless") +
                  run.format(flags="", name="stateful"))
        n, status = self.run_netns(*local_dns(self), "--dhcpv6-address", "--", "sh", "-c", script)
        out = n.text()
        # (dhclient 4.4 runs its script with reason RENEW6 for an Information-Request's Reply.)
        self.assertRegex(out, r"VNK: dhcpv6 reason=(INFORM6|RENEW6) address=none dns=fd00::3")
        self.assertIn("VNK: dhcpv6 reason=BOUND6 address=fd00::15 dns=fd00::3", out)
        b = n.metrics()["backend"]
        self.assertGreaterEqual(b["dhcpv6_information_requests"], 1)
        self.assertGreaterEqual(b["dhcpv6_solicits"], 1)
        self.assertGreaterEqual(b["dhcpv6_addresses"], 1)
        self.assertEqual((b["dhcpv6_ignored"], b["drop_malformed"]), (0, 0))

    def test_outside_ipv6_destinations_fail_fast_where_the_host_has_no_ipv6_route(self):
        """The tests' namespace has no route off the machine: a UDP datagram
        and a TCP connection to outside IPv6 addresses get an ICMPv6
        unreachable and a RST at once (the guest's sockets see EACCES and
        ECONNREFUSED within a second), never a hang."""
        script = ("import socket, subprocess, time\n"
                  "for _ in range(100):\n"
                  "    if 'fd00:' in subprocess.run(['ip', '-6', '-o', 'addr', 'show', 'scope', 'global', '-tentative'],"
                  " capture_output=True, text=True).stdout: break\n"
                  "    time.sleep(0.1)\n"
                  "def attempt(kind, port):\n"
                  "    t = time.monotonic()\n"
                  "    s = socket.socket(socket.AF_INET6, kind)\n"
                  "    s.settimeout(5)\n"
                  "    try:\n"
                  "        s.connect(('2001:db8::7', port))\n"
                  "        if kind == socket.SOCK_DGRAM:\n"
                  "            s.send(b'query')\n"
                  "            s.recv(512)\n"
                  "        r = 'answered'\n"
                  "    except OSError as e:\n"
                  "        r = f'errno={e.errno}' if e.errno else 'timeout'\n"
                  "    print('VNK: outside', f'kind={kind}', r, f'seconds={time.monotonic() - t:.2f}', flush=True)\n"
                  "attempt(socket.SOCK_DGRAM, 53)\n"
                  "attempt(socket.SOCK_STREAM, 80)\n")
        n, status = self.run_netns(*local_dns(self), "--", PYTHON, "-c", script)
        self.assertEqual(status, 0, n.tail())
        udp = kv(n.wait_for(r"VNK: outside kind=2 .*", 1).group(0))
        tcp = kv(n.wait_for(r"VNK: outside kind=1 .*", 1).group(0))
        self.assertEqual(udp.get("errno"), "13", udp)  # EACCES: the ICMPv6 error (administratively prohibited)
        self.assertEqual(tcp.get("errno"), "111", tcp)  # ECONNREFUSED from the RST
        self.assertLess(float(udp["seconds"]), 1.0)
        self.assertLess(float(tcp["seconds"]), 1.0)
        b = n.metrics()["backend"]
        self.assertGreaterEqual(b["icmp_unreachable_sent"], 1)

    def test_namespace_reaches_host_services_over_ipv6(self):
        """--ipv6: once SLAAC has given the namespace its fd00::/64 address,
        the same checks over IPv6 -- ping -6 to the gateway, a DNS query to
        fd00::3 relayed to the (IPv4) resolver, 100 MiB each way over HTTP to
        a server on the host's ::1, byte-exact, and iperf3 both ways."""
        n = self.reach_host_services({"VNK_FAMILY": "6"}, address="::1")
        self.assertRegex(n.text(), r"VNK: slaac address=fd00:")
        b = n.metrics()["backend"]
        self.assertGreaterEqual(b["ipv6_flows_opened"], 3)  # ping, DNS, HTTP (and iperf3)
        self.assertEqual((b["ipv6_malformed"], b["ipv6_unsupported"], b["drop_no_route"]), (0, 0, 0))

    def test_namespace_reaches_host_services_over_ipv6_without_peek_off_or_ping_sockets(self):
        """The same over IPv6 as on Linux before 6.9 with ping sockets closed:
        TCP re-peeks from the queue head, ping -6 goes through the raw ICMPv6
        socket opened before the sandbox dropped CAP_NET_RAW."""
        n = self.reach_host_services({"VNK_FAMILY": "6", "VNETKIT_PRETEND_MISSING": "tcp-peek-off,ping-sockets"},
                                     address="::1")
        self.assertGreaterEqual(n.metrics()["backend"]["icmp_echo_replies"], 3)

    def reach_host_services(self, env=None, args=(), address="127.0.0.1"):
        web = HttpServer(100 << 20, address)
        self.addCleanup(web.close)
        iperf = Iperf3Server.start(address)
        iperf_port = 0
        if iperf:
            self.addCleanup(iperf.kill)
            iperf_port = iperf.port
        n, status = self.run_netns(*local_dns(self), *args, "--", PYTHON, CLIENT, "vnetkit.test", str(web.port),
                                   str(iperf_port), "2", timeout=120, env=env)
        out = n.text()
        self.assertEqual(status, 0, out)
        self.assertEqual(kv(n.wait_for(r"VNK: ping .*", 1).group(0))["received"], "3", out)
        self.assertEqual(kv(n.wait_for(r"VNK: dns .*", 1).group(0)).get("address"), "192.0.2.7", out)
        down = kv(n.wait_for(r"VNK: download .*", 1).group(0))
        self.assertEqual((down["status"], down["bytes"], down["sha256"]), ("200", str(100 << 20), web.sha256))
        up = kv(n.wait_for(r"VNK: upload .*", 1).group(0))
        self.assertEqual(up["bytes"], str(100 << 20))
        self.assertEqual(up["sha256"], up["sent_sha256"])
        if iperf:
            for direction in ("up", "down"):
                r = kv(n.wait_for(rf"VNK: iperf direction={direction} .*", 1).group(0))
                self.assertGreater(int(r.get("mbps", 0)), 100, out)
        m = n.metrics()
        self.assertEqual(m["backend"]["drop_malformed"], 0)
        self.assertEqual(m["tap"]["write_errors"], 0)
        self.assertGreater(m["tap"]["bytes_to_tap"], 100 << 20)
        self.assertGreater(m["tap"]["bytes_from_tap"], 100 << 20)
        return n

    def many_connections(self, count, nofile):
        """`vnetkit netns` under `prlimit --nofile=SOFT:HARD` whose command
        opens `count` connections at once to a host listener (they complete
        in its accept queue), then fetches a page."""
        listener = socket.create_server(("127.0.0.1", 0), backlog=4096)
        self.addCleanup(listener.close)
        web = HttpServer(1000)
        self.addCleanup(web.close)
        script = (f"{PYTHON} {MANY} 10.0.2.2 {listener.getsockname()[1]} {count} && "
                  f"{PYTHON} -c \"import urllib.request as u; "
                  f"print('VNK: http', u.urlopen('http://10.0.2.2:{web.port}/blob', timeout=10).status)\"")
        n, status = self.run_netns(*local_dns(self), "--", "sh", "-c", script, timeout=120,
                                   prefix=("prlimit", f"--nofile={nofile}"))
        self.assertEqual(status, 0, n.tail())
        got = kv(n.wait_for(r"VNK: connections .*", 1).group(0))
        self.assertIn("VNK: http 200", n.text(), "a new connection after the burst")
        self.assertNotIn("cannot write metrics", n.text())
        return n, {k: int(v) for k, v in got.items()}

    def test_thousands_of_connections_under_a_desktop_fd_limit(self):
        """A soft limit of 1024 (a desktop's default) is raised to the hard one."""
        if resource.getrlimit(resource.RLIMIT_NOFILE)[1] < 8192:
            self.skipTest("the hard RLIMIT_NOFILE here is below 8192")
        n, got = self.many_connections(3000, "1024:8192")
        print(f"3000 connections under soft 1024 / hard 8192: {got}", flush=True)
        self.assertEqual(got["connected"], 3000, n.tail())
        self.assertEqual(n.metrics()["backend"]["flows_refused_fd_limit"], 0)

    def test_connections_beyond_the_fd_limit_are_refused_and_counted(self):
        """With a hard limit of 1024, flows get the limit less a reserve: the
        rest are refused with RST, counted, and vnetkit carries on."""
        n, got = self.many_connections(1010, "1024:1024")
        print(f"1010 connections under hard 1024: {got}", flush=True)
        m = n.metrics()["backend"]
        self.assertGreater(got["connected"], 800, n.tail())
        self.assertGreater(got["refused"], 0, n.tail())
        self.assertEqual(got["timeout"], 0, "refused at once, not left to time out")
        self.assertEqual(m["flows_refused_fd_limit"], got["refused"])

    def test_port_forward_reaches_a_server_inside_and_signals_are_relayed(self):
        site = tempfile.mkdtemp(prefix="vnk-site-")
        self.addCleanup(shutil.rmtree, site, True)
        blob = os.urandom(8 << 20)
        with open(os.path.join(site, "blob"), "wb") as f:
            f.write(blob)
        os.chmod(site, 0o755)
        port = free_port()
        n = Netns(*local_dns(self), "--forward", f"tcp:{port}:8080", "--", PYTHON, "-u", "-m", "http.server", "8080",
                  "--directory", site)
        self.addCleanup(n.cleanup)
        n.wait_for(r"Serving HTTP", 20)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/blob", timeout=30) as r:
            got = r.read()
        self.assertEqual(hashlib.sha256(got).hexdigest(), hashlib.sha256(blob).hexdigest())
        # SIGTERM to vnetkit reaches the command; vnetkit exits with its status.
        os.kill(n.proc.pid, signal.SIGTERM)
        self.assertEqual(n.wait(20), 128 + signal.SIGTERM)
        self.assertGreaterEqual(n.metrics()["backend"]["tcp_forwards_accepted"], 1)

    def test_join_an_existing_namespace_by_pid(self):
        holder = Process(["unshare", "--net", "--", "sleep", "60"], "unshare sleep")
        self.addCleanup(holder.kill)
        time.sleep(0.3)
        pid = holder.proc.pid  # unshare execs sleep in the new namespace
        n = Netns(*local_dns(self), "--pid", str(pid))
        self.addCleanup(n.cleanup)
        n.wait_for(r"vnetkit netns: tap0 10.0.2.15/24", 10)
        ping = subprocess.run(["nsenter", "-t", str(pid), "-n", "busybox", "ping", "-c", "2", "-W", "2", "10.0.2.2"],
                              capture_output=True, text=True, timeout=30)
        self.assertIn("2 packets received", ping.stdout, ping.stdout + ping.stderr)
        # With --pid alone, vnetkit stops when that process exits.
        holder.kill()
        self.assertEqual(n.wait(10), 0)

    def test_rootless_user_namespace(self):
        if os.geteuid() != 0:
            self.skipTest("needs root to drop to an unprivileged user")
        # A copy of the binary any user can run, wherever the build tree is.
        tmp = tempfile.mkdtemp(prefix="vnk-rootless-")
        self.addCleanup(shutil.rmtree, tmp, True)
        os.chmod(tmp, 0o755)
        exe = os.path.join(tmp, "vnetkit")
        shutil.copy(VNETKIT, exe)
        probe = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "unshare", "-rn", "true"],
                               capture_output=True)
        if probe.returncode != 0:
            self.skipTest("unprivileged user namespaces are not available here")
        dns = DnsServer({"vnetkit.test": "192.0.2.7"})
        self.addCleanup(dns.close)
        argv = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", exe, "netns", "--dns-upstream",
                f"127.0.0.1:{dns.port}", "--", "sh", "-c",
                "id -u; busybox ping -c 2 -W 2 10.0.2.2 && getent hosts vnetkit.test"]
        r = subprocess.run(argv, capture_output=True, text=True, timeout=60, cwd=tmp)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(r.stdout.splitlines()[0], "0")  # root inside its own user namespace
        self.assertIn("2 packets received", r.stdout)
        self.assertIn("192.0.2.7", r.stdout)


if __name__ == "__main__":
    unittest.main()
