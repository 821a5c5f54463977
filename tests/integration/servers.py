"""Host-side services the usernet tests reach from the guest, all bound to
127.0.0.1 on ports the kernel picks: a DNS server that answers one name, an
HTTP server with a blob to download and an upload endpoint that hashes what
it receives, and an iperf3 server. Nothing here talks to any other host.
"""
import hashlib
import http.server
import os
import shutil
import socket
import struct
import threading

from harness import Process


class DnsServer:
    """Answers A queries for `names` (name -> IPv4); AAAA and other types for
    those names get an empty NOERROR answer, anything else NXDOMAIN."""

    def __init__(self, names):
        self.names = {n.lower().rstrip("."): ip for n, ip in names.items()}
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.queries = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while True:
            try:
                data, peer = self.sock.recvfrom(4096)
            except OSError:
                return
            reply = self._answer(data)
            if reply:
                self.sock.sendto(reply, peer)

    def _answer(self, q):
        if len(q) < 12:
            return None
        qid, flags, qdcount = struct.unpack("!HHH", q[:6])
        if qdcount != 1:
            return None
        i, labels = 12, []
        while i < len(q) and q[i] != 0:
            n = q[i]
            labels.append(q[i + 1:i + 1 + n].decode(errors="replace"))
            i += 1 + n
        qend = i + 5
        if qend > len(q):
            return None
        qtype = struct.unpack("!H", q[i + 1:i + 3])[0]
        name = ".".join(labels).lower()
        self.queries.append((name, qtype))
        question = q[12:qend]
        rd = flags & 0x0100
        if name not in self.names:
            return struct.pack("!HHHHHH", qid, 0x8000 | rd | 0x0080 | 3, 1, 0, 0, 0) + question
        answers = b""
        count = 0
        if qtype == 1:
            answers = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 60, 4) + socket.inet_aton(self.names[name])
            count = 1
        return struct.pack("!HHHHHH", qid, 0x8000 | rd | 0x0080, 1, count, 0, 0) + question + answers

    def close(self):
        self.sock.close()


class HttpServer:
    """GET /blob returns `size` pseudo-random bytes; POST /upload reads the
    body and answers "bytes=N sha256=HEX"."""

    def __init__(self, size, address="127.0.0.1"):
        self.blob = os.urandom(size)
        self.sha256 = hashlib.sha256(self.blob).hexdigest()
        blob = self.blob

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def log_message(self, *args):
                pass

            def do_GET(self):
                if self.path != "/blob":
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(blob)))
                self.end_headers()
                self.wfile.write(blob)

            def do_POST(self):
                left = int(self.headers.get("Content-Length", "0"))
                h, total = hashlib.sha256(), 0
                while left > 0:
                    chunk = self.rfile.read(min(left, 1 << 20))
                    if not chunk:
                        break
                    h.update(chunk)
                    total += len(chunk)
                    left -= len(chunk)
                body = f"bytes={total} sha256={h.hexdigest()}".encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        server = type("Server", (http.server.ThreadingHTTPServer,),
                      {"address_family": socket.AF_INET6 if ":" in address else socket.AF_INET})
        self.httpd = server((address, 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def free_port(kind=socket.SOCK_STREAM, address="127.0.0.1"):
    with socket.socket(socket.AF_INET6 if ":" in address else socket.AF_INET, kind) as s:
        s.bind((address, 0))
        return s.getsockname()[1]


class Iperf3Server(Process):
    """`iperf3 -s` on 127.0.0.1 (or `address`); None from start() when iperf3
    is missing."""

    @staticmethod
    def start(address="127.0.0.1"):
        exe = shutil.which("iperf3")
        if not exe:
            return None
        port = free_port(address=address)
        srv = Iperf3Server([exe, "-s", "--forceflush", "-B", address, "-p", str(port)], "iperf3 -s")
        srv.port = port
        srv.wait_for(r"Server listening", 10)
        return srv
