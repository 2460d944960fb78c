"""A bare gevent TCP relay: the reference for what gevent itself costs.

``python benchmarks/bare_relay.py LISTEN_PORT BACKEND_HOST BACKEND_PORT``

Per connection: one backend connection and two greenlets (the server's own
and one spawned), each copying one direction with ``recv_into`` and
``sendall``. Nothing else: no options, no logging, no TCP_NODELAY, no chaos.

One thing is not naive: a direction borrows a 64 KiB buffer from a shared
free list only once its source is readable, and gives it back after the
``sendall``. A buffer pair held by every idle connection would cost about
130 KiB each and hide what gevent itself costs per connection, which is
what this relay is the reference for. A proxy built on gevent cannot
reasonably be cheaper than this without changing how it moves bytes; the
suite reports Vaurien's figures relative to it.
"""
from gevent import monkey

monkey.patch_all()

import resource  # noqa: E402
import socket  # noqa: E402
import sys  # noqa: E402

import gevent  # noqa: E402
from gevent.server import StreamServer  # noqa: E402

BUFSIZE = 65536
_free = []      # buffers not in use right now, shared by all connections


def pump(src, dst):
    """Copy *src* to *dst* until end of stream, then half-close *dst*."""
    # The watcher recv_into itself waits on: waiting first lets the buffer
    # be borrowed only while there is data to move.
    wait, readable = src._wait, src._read_event
    recv_into = src._sock.recv_into
    try:
        while True:
            wait(readable)
            buf = _free.pop() if _free else bytearray(BUFSIZE)
            try:
                count = recv_into(buf)
            except BlockingIOError:
                _free.append(buf)
                continue
            if not count:
                _free.append(buf)
                break
            with memoryview(buf) as view:
                dst.sendall(view[:count])
            _free.append(buf)
        dst.shutdown(socket.SHUT_WR)
    except OSError:
        pass


def make_handler(backend_address):
    """The StreamServer handler relaying each client to *backend_address*."""
    def handle(client, address):
        """Relay one client until both directions have ended."""
        try:
            backend = socket.create_connection(backend_address)
        except OSError:
            client.close()
            return
        try:
            other = gevent.spawn(pump, backend, client)
            pump(client, backend)
            other.join()
        finally:
            backend.close()
            client.close()
    return handle


def main(argv=None):
    """Listen on 127.0.0.1:LISTEN_PORT and relay to BACKEND_HOST:PORT."""
    argv = sys.argv[1:] if argv is None else argv
    port, host, backend_port = int(argv[0]), argv[1], int(argv[2])
    # Resolve once: create_connection() would otherwise resolve the name
    # on every connection.
    backend = socket.getaddrinfo(host, backend_port, socket.AF_INET,
                                 socket.SOCK_STREAM)[0][4]
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    server = StreamServer(('127.0.0.1', port), make_handler(backend),
                          backlog=4096)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == '__main__':
    main()
