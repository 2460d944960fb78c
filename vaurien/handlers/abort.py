"""The ``abort`` handler."""
import socket
import struct

from vaurien.handlers.base import BaseHandler

# SO_LINGER on with a timeout of 0: close() drops the connection with a
# TCP RST instead of the orderly FIN exchange.
_LINGER_RESET = struct.pack('ii', 1, 0)


def reset(sock):
    """Close *sock* with a TCP RST: its peer's next read fails with
    ECONNRESET ("connection reset by peer") instead of a clean end of
    stream. Errors (a socket already gone) are ignored."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass


class Abort(BaseHandler):
    """Resets the connection at once, without reading anything.

    As soon as it is picked, both the client's and the backend's connection
    are dropped with a TCP RST: the data that woke it up is never read, and
    the client's next read (or write) fails with "connection reset by peer"
    (``ECONNRESET``), not with a clean end of stream. This is what a crashed
    host, a restarted load balancer or a firewall dropping state looks like
    to a client.

    ``blackout`` closes instead (the client usually sees a clean end of
    stream); ``reset_peer`` can wait before resetting.
    """
    name = 'abort'
    effect = 'reset'
    options = {}

    def __call__(self, client_sock, backend_sock, to_backend):
        reset(client_sock)
        reset(backend_sock)
        return False
