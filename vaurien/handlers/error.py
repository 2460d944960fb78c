"""The ``error`` handler."""
import socket as _socket

from vaurien.handlers.base import WRONG_DIRECTION, BaseHandler
from vaurien.handlers.types import Integer


class Error(BaseHandler):
    """Answers the client with errors instead of the backend's data.

    Data from the client reaches the backend untouched; data from the
    backend is replaced by as many random bytes before the client gets it.
    With ``inject``, the backend's data is kept and random bytes are
    inserted in its middle instead. ``warmup`` lets that many calls
    (readable events carrying data, in either direction) through untouched
    first; its counter is shared by every connection on purpose
    ("the first N calls through the proxy succeed").

    In protocol mode (``--protocol``) requests pass untouched and the
    backend's response to a request is replaced by an error response of the
    protocol (an HTTP 5xx, a Redis ``-ERR``, a memcache ``SERVER_ERROR``, a
    MySQL ERR packet, an SMTP ``451``), which the client's library reports
    as a server error; ``inject`` does not apply there. See the protocols
    page.
    """
    name = 'error'
    options = {
        'inject': ("Insert random bytes in the middle of the real data"
                   " instead of replacing it", bool, False),
        'warmup': ("Number of calls let through untouched before erroring",
                   Integer(min=0), 0),
    }

    def __init__(self, settings=None, proxy=None):
        super().__init__(settings, proxy)
        self.inject = self.option('inject')
        self.warmup = self.option('warmup')
        self.calls = 0   # shared by all connections: see the docstring

    def effect(self, to_backend):
        """A request goes to the backend untouched; what the backend
        answers is spoiled (a call of the warm-up says so itself)."""
        if to_backend:
            return 'none', WRONG_DIRECTION
        return 'errored'

    def __call__(self, client_sock, backend_sock, to_backend):
        if self.calls >= self.warmup:
            conn = self.connection(client_sock)
            if conn is not None and conn.protocol_mode:
                return self.protocol_error(client_sock, backend_sock,
                                           to_backend)
        data = self.read(client_sock, backend_sock, to_backend)
        if not data:
            # end of stream is not a call: it must not use up the warm-up,
            # or the count would depend on when connections close
            return False
        if self.calls < self.warmup:
            self.calls += 1
            self.tell_effect(client_sock, 'none', 'warm-up')
        elif not to_backend:
            data = self.corrupt(data, self.random(client_sock))
        self.forward(client_sock, backend_sock, to_backend, data)
        return True

    def protocol_error(self, client_sock, backend_sock, to_backend):
        """Protocol mode: answer the client's request with a protocol error.

        A request (``to_backend``) goes to the backend untouched; the
        backend's response to it is read whole and replaced by the error the
        protocol makes for it (an HTTP 5xx, a Redis ``-ERR``, ...), so the
        client's library raises its usual server-error exception. When the
        protocol says the exchange cannot go on in step after that error,
        the connection is closed once the error is sent. A message the
        protocol cannot replace (a Redis push, raw traffic) passes as it is.
        Returns the handler result (False at end of stream or when closed).
        """
        data = self.read(client_sock, backend_sock, to_backend)
        if not data:
            return False
        conn = self.connection(client_sock)
        reply = None
        if not to_backend:
            reply = conn.error_reply(self.random(client_sock))
        if reply is None:
            self.forward(client_sock, backend_sock, to_backend, data)
            return True
        error, close = reply
        client_sock.sendall(error)
        if close:
            try:
                client_sock.shutdown(_socket.SHUT_WR)
            except OSError:
                pass
            conn.close()
            return False
        return True

    def corrupt(self, data, rng):
        """The bytes the client gets instead of *data*."""
        if self.inject:
            middle = len(data) // 2
            noise = rng.randbytes(rng.randint(1, 32))
            return data[:middle] + noise + data[middle:]
        return rng.randbytes(len(data))
