"""The ``limit_data`` handler."""
import socket

from vaurien.handlers.base import BaseHandler
from vaurien.handlers.types import Integer


class LimitData(BaseHandler):
    """Closes the connection once ``bytes`` bytes have passed through it.

    Bytes are counted per connection, both directions together (data the
    handler takes from the client and from the backend). Exactly ``bytes``
    bytes are let through: the piece that reaches the limit is cut at it, and
    then both the client's and the backend's connection are closed. Aim it
    with ``direction = downstream`` to count only the answers (a download
    cut short), or ``upstream`` to count only what the client sends.

    Each side sees its connection closed after the last byte it was let
    have; a side that still had unread data on its way gets a reset, as
    from a real server that closes on it.
    """
    name = 'limit_data'
    # Until the limit the data passes untouched; the cut is seen by the
    # engine (a closed socket).
    effect = ('none', 'under the limit')
    options = {
        'bytes': ("Bytes let through on a connection (both directions "
                  "together) before it is closed", Integer(min=0), 1024),
    }

    def __init__(self, settings=None, proxy=None):
        super().__init__(settings, proxy)
        self.limit = self.option('bytes')

    def __call__(self, client_sock, backend_sock, to_backend):
        state = self.state(client_sock)
        left = self.limit - state.get('passed', 0)
        if left > 0:
            data = self.read(client_sock, backend_sock, to_backend,
                                  left)
            if not data:
                return False
            # The other direction may have counted bytes while this one
            # waited in the read: count again, before sending.
            left = self.limit - state.get('passed', 0)
            if left > 0:
                data = data[:left]
                state['passed'] = state.get('passed', 0) + len(data)
                self.forward(client_sock, backend_sock, to_backend, data)
                if len(data) < left:
                    return True
        self._close(client_sock)
        self._close(backend_sock)
        return False

    @staticmethod
    def _close(sock):
        """Close after what was sent (FIN), errors ignored."""
        try:
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        try:
            sock.close()
        except OSError:
            pass
