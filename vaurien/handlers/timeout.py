"""The ``timeout`` handler."""
import time

import gevent

from vaurien.handlers.base import BaseHandler
from vaurien.handlers.types import Number


class Timeout(BaseHandler):
    """Swallows all data, then closes the connection after ``timeout``.

    From the first event it handles on a connection, everything that
    arrives in that direction is read and thrown away: the other side never
    gets it, and the client waits for an answer that never comes. ``timeout``
    seconds after that first event the connection is closed (a clean close:
    the client sees end of stream). With ``timeout = 0`` it is never closed
    by the handler: the connection hangs until the client gives up, like
    with ``hang``.

    A live handler change through the control API closes the connections it
    holds at once.
    """
    name = 'timeout'
    effect = 'hung'
    options = {
        'timeout': ("Seconds before the connection is closed, counted from "
                    "the first event the handler takes on it; 0: never "
                    "closed by the handler", Number(min=0), 5.0),
    }

    def __init__(self, settings=None, proxy=None):
        super().__init__(settings, proxy)
        self.timeout = float(self.option('timeout'))

    def __call__(self, client_sock, backend_sock, to_backend):
        conn = self.connection(client_sock)
        if conn is not None:
            # A hung connection is closed as soon as a side ends, or at
            # once by a live handler change: no wait outlives the fault.
            conn.hang()
        if not self.timeout:
            while self.read(client_sock, backend_sock, to_backend):
                pass
            return False
        state = self.state(client_sock)
        deadline = state.get('deadline')
        if deadline is None:
            deadline = state['deadline'] = time.monotonic() + self.timeout
        remaining = deadline - time.monotonic()
        if remaining > 0:
            with gevent.Timeout(remaining, False):
                while self.read(client_sock, backend_sock, to_backend):
                    pass
                return False    # the source ended first
        for sock in (client_sock, backend_sock):
            try:
                sock.close()
            except OSError:
                pass
        return False
