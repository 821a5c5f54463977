"""Opens COUNT TCP connections to HOST:PORT at once and holds them, the way
a busy program in a namespace or guest would; prints one line
"VNK: connections connected=N refused=N timeout=N no-fd=N" and exits 0.

usage: many_connections.py HOST PORT COUNT [SECONDS]
"""
import errno
import resource
import select
import socket
import struct
import sys
import time


def main():
    host, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    seconds = float(sys.argv[4]) if len(sys.argv) > 4 else 20
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    pending, connected = {}, []
    refused = no_fd = 0
    for _ in range(count):
        try:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        except OSError as e:
            if e.errno in (errno.EMFILE, errno.ENFILE):
                no_fd += 1
                continue
            raise
        s.setblocking(False)
        rc = s.connect_ex((host, port))
        if rc in (0, errno.EINPROGRESS):
            pending[s.fileno()] = s
        else:
            refused += 1
            s.close()
    poller = select.epoll()
    for fd in pending:
        poller.register(fd, select.EPOLLOUT)
    deadline = time.monotonic() + seconds
    while pending and time.monotonic() < deadline:
        for fd, _ in poller.poll(0.5):
            s = pending.pop(fd)
            poller.unregister(fd)
            if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
                connected.append(s)
            else:
                refused += 1
                s.close()
    print(f"VNK: connections connected={len(connected)} refused={refused} timeout={len(pending)} no-fd={no_fd}",
          flush=True)
    # Reset them (SO_LINGER 0), so their flows end at once, not after a FIN
    # handshake the host listener -- which never accepts -- cannot finish.
    for s in connected:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()


if __name__ == "__main__":
    main()
