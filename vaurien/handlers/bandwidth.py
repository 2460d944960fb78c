"""The ``bandwidth`` handler."""
import time

from vaurien.handlers.base import BaseHandler
from vaurien.handlers.types import Number

# Data goes out in pieces worth this many seconds at the rate: small enough
# for a smooth flow, large enough to keep the number of sends reasonable.
PIECE_SECONDS = 0.02
# How far behind its schedule a flow may be and still catch up (an oversleep
# is made good); a longer lag is an idle flow, which earns no burst.
CATCH_UP = 0.05


class Bandwidth(BaseHandler):
    """Throttles the flow to ``rate`` kilobytes per second, smoothly.

    Each direction of each connection is held to ``rate`` on its own (1 KB
    is 1024 bytes). Data is sent in small pieces (a fiftieth of a second's
    worth) spaced evenly in time, not in one burst per second, so the
    client sees a slow link rather than a stuttering one. A connection that
    stays idle does not save up credit for a burst later.

    At most a quarter of a second's worth is read at a time, so that a fast
    sender is slowed down by TCP flow control as it would be by a slow link.
    A live handler change through the control API sends what is already
    read at once.
    """
    name = 'bandwidth'
    effect = 'throttled'
    options = {
        'rate': ("Largest rate of each direction, in KB per second "
                 "(1 KB = 1024 bytes)", Number(min=0, min_exclusive=True),
                 100.0),
    }

    def __init__(self, settings=None, proxy=None):
        super().__init__(settings, proxy)
        self.rate = float(self.option('rate')) * 1024.0     # bytes/second
        self.piece = max(1, int(self.rate * PIECE_SECONDS))
        read_size = max(self.piece, int(self.rate / 4))
        bufsize = getattr(proxy, 'bufsize', None)
        if bufsize:
            read_size = min(read_size, bufsize)
        self.read_size = read_size

    def __call__(self, client_sock, backend_sock, to_backend):
        data = self.read(client_sock, backend_sock, to_backend,
                              self.read_size)
        if not data:
            return False
        state = self.state(client_sock)
        # When the next byte of this direction may leave (monotonic clock).
        due = state.get(to_backend, 0.0)
        now = time.monotonic()
        if due < now - CATCH_UP:
            due = now
        dest = backend_sock if to_backend else client_sock
        rate, piece = self.rate, self.piece
        with memoryview(data) as view:
            start, size = 0, len(data)
            while start < size:
                wait = due - time.monotonic()
                if wait > 0:
                    behavior = getattr(self.proxy, 'behavior', None)
                    self.sleep(wait)
                    if getattr(self.proxy, 'behavior', None) is not behavior:
                        # The handler was changed live: no more throttling.
                        dest.sendall(view[start:])
                        due = time.monotonic()
                        break
                chunk = view[start:start + piece]
                dest.sendall(chunk)
                start += len(chunk)
                due += len(chunk) / rate
        state[to_backend] = due
        return True
