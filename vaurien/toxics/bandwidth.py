"""The ``bandwidth`` toxic."""
from vaurien.handlers.types import Integer
from vaurien.toxics.base import ToxicType, now

# Data goes out in pieces worth this many seconds at the rate.
PIECE_SECONDS = 0.02


class Bandwidth(ToxicType):
    """Limits the stream to ``rate`` kilobytes per second (1 KB = 1000
    bytes, as in Toxiproxy); 0 means no limit.

    Data leaves in small pieces (a fiftieth of a second's worth) on an even
    schedule. The schedule counts from when each chunk was read, so a
    ``latency`` before or after it adds to it instead of multiplying. The
    source is read at most a few buffers ahead: a faster sender is held
    back by TCP flow control, as on a slow link.
    """
    name = 'bandwidth'
    attributes = {
        'rate': ("Largest rate, in KB (1000 bytes) per second; 0: no limit",
                 Integer(min=0), 0),
    }

    def __init__(self, values, proxy=None):
        super().__init__(values, proxy)
        self.rate = self.values['rate'] * 1000.0      # bytes per second
        self.piece = max(1, int(self.rate * PIECE_SECONDS))

    def apply(self, link, toxic, chunk, emit):
        state = link.state(toxic)
        data = chunk.data
        start, size = 0, len(data)
        while start < size:
            kind = toxic.kind
            if not kind.rate or not link.present(toxic):
                emit(chunk.__class__(data[start:], chunk.stamp))
                return
            due = max(state.get('due', 0.0), chunk.stamp)
            if due > now() and not link.wait_until(due, toxic):
                continue      # changed or removed: look again
            if not start and size <= kind.piece:
                state['due'] = due + size / kind.rate
                emit(chunk)        # all of it at once: no copy
                return
            piece = data[start:start + kind.piece]
            start += len(piece)
            state['due'] = due + len(piece) / kind.rate
            emit(chunk.__class__(piece, chunk.stamp))

    def passes(self):
        return not self.rate

    def fast(self, link, toxic, state, size, stamp):
        # As apply() for a chunk read just now (*stamp*: no wait when the
        # schedule is not ahead of it) that fits in one piece.
        due = state.get('due', 0.0)
        if due > stamp or size > self.piece:
            return False
        state['due'] = stamp + size / self.rate
        return True

    def instant(self, link, toxic, chunk):
        if not self.rate:
            return True
        due = max(link.state(toxic).get('due', 0.0), chunk.stamp)
        return due <= now() and len(chunk.data) <= self.piece
