"""The ``transient`` handler."""
from vaurien.handlers.base import BaseHandler
from vaurien.handlers.error import Error
from vaurien.handlers.types import Integer


class Transient(Error):
    """Fails the first ``agitate`` calls, then behaves.

    A call is one answer from the backend (one readable event from the
    backend, or one message in protocol mode). The first ``agitate`` of them
    fail exactly as with the ``error`` handler (random bytes, or with
    ``inject`` random bytes in the middle of the real data, or a protocol
    error response with ``--protocol``); every later one passes untouched.
    What the client sends always reaches the backend untouched.

    The counter is shared by every connection on purpose: "the first
    ``agitate`` answers through the proxy fail", whichever connections carry
    them, so a client that retries, on the same connection or on a new one,
    gets through once the backend has "recovered". The count belongs to the
    handler instance: it starts again from zero whenever the handler is
    created anew (a restart, or new options set through the control API).
    """
    name = 'transient'
    options = {
        'agitate': ("Number of answers that fail before the handler lets "
                    "everything through", Integer(min=0), 1),
        'inject': Error.options['inject'],
    }

    def __init__(self, settings=None, proxy=None):
        super().__init__(settings, proxy)
        # The error logic is reused as is, without its warm-up.
        self.warmup = 0
        self.agitate = self.option('agitate')
        self.failed = 0   # shared by all connections: see the docstring

    def option(self, name):
        """Options of ``error`` not offered here keep error's defaults."""
        if name not in self.settings and name in Error.options:
            return Error.options[name][2]
        return super().option(name)

    def __call__(self, client_sock, backend_sock, to_backend):
        if to_backend or self.failed >= self.agitate:
            if not to_backend:
                self.tell_effect(client_sock, 'none', 'recovered')
            return BaseHandler.__call__(self, client_sock, backend_sock,
                                        to_backend)
        self.failed += 1
        result = Error.__call__(self, client_sock, backend_sock, to_backend)
        if not result:
            self.failed -= 1     # an end of stream is not an answer
        return result
