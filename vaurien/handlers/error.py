"""The ``error`` handler."""
from vaurien.handlers.base import BaseHandler
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

    In protocol mode (``--protocol``) the client gets an error response of
    its protocol instead (see the protocols page).
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

    def __call__(self, client_sock, backend_sock, to_backend):
        data = self._get_data(client_sock, backend_sock, to_backend)
        if not data:
            # end of stream is not a call: it must not use up the warm-up,
            # or the count would depend on when connections close
            return False
        if self.calls < self.warmup:
            self.calls += 1
        elif not to_backend:
            data = self.corrupt(data, self._random(client_sock))
        self._forward(client_sock, backend_sock, to_backend, data)
        return True

    def corrupt(self, data, rng):
        """The bytes the client gets instead of *data*."""
        if self.inject:
            middle = len(data) // 2
            noise = rng.randbytes(rng.randint(1, 32))
            return data[:middle] + noise + data[middle:]
        return rng.randbytes(len(data))
