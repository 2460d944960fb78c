"""The ``slow_close`` handler."""
from vaurien.handlers.base import BaseHandler
from vaurien.handlers.types import Number


class SlowClose(BaseHandler):
    """Delays closes: when one side closes, the other learns it late.

    Data passes untouched. An end of stream is not a pick: when a side
    closes its connection and ``slow_close`` was the last pick of that
    direction, the close is handed to it, and it waits ``delay`` seconds
    before the engine passes the close on to the other side (with
    ``100:slow_close``, every close), so a client waits at
    least ``delay`` seconds between the last byte of an answer and the end of
    stream, and a backend waits as long to see its client leave. This is
    what a peer that lingers on close, or a proxy slow to tear connections
    down, looks like.

    The wait is never shorter than ``delay``, except that a live handler
    change through the control API ends it at once.
    """
    name = 'slow_close'
    effect = ('none', 'data passes; only a close is delayed')
    # The end of stream of a direction whose last pick was slow_close is
    # handed to it (not a pick): that close is delayed.
    end_of_stream = 'delayed'
    options = {
        'delay': ("Seconds to wait, once one side has closed, before the "
                  "close is passed on to the other side", Number(min=0), 1.0),
    }

    def __init__(self, settings=None, proxy=None):
        super().__init__(settings, proxy)
        self.delay = float(self.option('delay'))

    def __call__(self, client_sock, backend_sock, to_backend):
        data = self.read(client_sock, backend_sock, to_backend)
        if data:
            self.forward(client_sock, backend_sock, to_backend, data)
            return True
        self.sleep(self.delay)
        return False
