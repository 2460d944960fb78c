"""The names earlier Vaurien releases had in ``vaurien.util``.

``from vaurien.util import start_proxy, stop_proxy`` works as it did in
both the 2012 releases and 1.x (they live in :mod:`vaurien.testing`), and
``get_data(sock[, buffer])``, which 1.x behaviors used to read a socket,
reads from a socket of a proxied connection.
"""
from vaurien.testing import start_proxy, stop_proxy

__all__ = ['start_proxy', 'stop_proxy', 'get_data']


def get_data(sock, buffer=1024):
    """Read what is available on *sock*: at most *buffer* bytes, or, in
    protocol mode, one whole message; ``b''`` at end of stream.

    *sock* is one of the two sockets a handler (or a 1.x behavior) is given;
    anything else is read with ``recv``.
    """
    conn = getattr(sock, 'conn', None)
    if conn is not None:
        return conn.read(sock is conn.client, buffer)
    return sock.recv(buffer)
