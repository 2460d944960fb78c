"""The behavior: a weighted mix of handlers and the picks made from it.

``--behavior "20:delay,10:error"`` becomes a :class:`Behavior`: a table of
cumulative thresholds over 0-100, the remainder going to ``dummy``. A pick
draws one number from a generator; generators are per connection and per
direction, derived from the seed and the connection's sequence number, so
connection *k* sees the same picks from run to run however connections
interleave.

Every handler can be aimed with the ``direction`` option (``both``,
``upstream`` for client->backend, ``downstream`` for backend->client): an
event of the other direction that picks it passes through untouched.
"""
import random
from bisect import bisect_right as _bisect_right

__all__ = ['Behavior', 'PASS', 'direction_random', 'connection_random',
           'DIRECTIONS']

# The handler slot of a pick that the engine relays itself, untouched (the
# built-in dummy handler, or any handler aimed at the other direction).
PASS = None

DIRECTIONS = ('both', 'upstream', 'downstream')


def direction_random(seed, seq, to_backend):
    """The generator of picks for one direction of connection *seq*."""
    return random.Random((seed << 64) | (seq << 2) | (1 if to_backend else 0))


def connection_random(seed, seq):
    """The generator of the one pick of connection *seq* (``--pick connection``)."""
    return random.Random((seed << 64) | (seq << 2) | 3)


class Behavior:
    """A weighted mix of named handlers, ready to pick from.

    *entries* is ``[(percent, name, handler), ...]`` or
    ``[(percent, name, handler, direction), ...]``; *handler* is a handler
    instance or callable, or :data:`PASS` for a pass-through. A pick returns
    a ``(name, handler)`` pair from a prebuilt table (no allocation);
    ``handler`` is PASS when the picked handler is aimed at the other
    direction. ``picks[to_backend][index]`` counts the picks of each entry
    (the engine increments it; :mod:`vaurien.stats` reads it).
    """

    __slots__ = ('entries', 'text', 'thresholds', 'names', 'single_index',
                 'tables', 'picks')

    def __init__(self, entries):
        self.entries = []
        thresholds, up, down = [], [], []
        total = 0
        for entry in entries:
            percent, name, handler = entry[:3]
            direction = entry[3] if len(entry) > 3 else 'both'
            if direction not in DIRECTIONS:
                raise ValueError('direction must be one of %s, got %r'
                                 % (', '.join(DIRECTIONS), direction))
            self.entries.append((percent, name, handler, direction))
            if percent <= 0:
                continue
            total += percent
            thresholds.append(float(total))
            up.append((name, handler if direction != 'downstream' else PASS))
            down.append((name, handler if direction != 'upstream' else PASS))
        if total < 100:
            thresholds.append(100.0)
            up.append(('dummy', PASS))
            down.append(('dummy', PASS))
        self.thresholds = tuple(thresholds)
        self.names = tuple(pair[0] for pair in up)
        # Indexed by to_backend (False: down, True: up), like picks.
        self.tables = (tuple(down), tuple(up))
        # How many times each entry was picked, per direction: the engine
        # adds 1 at each pick (an exchange or a connection counts
        # upstream; vaurien.stats adds them up).
        self.picks = ([0] * len(up), [0] * len(up))
        # With one entry (100:NAME), no draw is needed.
        self.single_index = 0 if len(thresholds) == 1 else None
        self.text = ','.join('%d:%s' % (p, n) for p, n, _, _ in self.entries)

    def index(self, rng):
        """The index of one weighted pick, drawn with *rng*."""
        if self.single_index is not None:
            return 0
        # The first threshold above the point (bisect: in C, no loop).
        thresholds = self.thresholds
        index = _bisect_right(thresholds, rng.random() * 100.0)
        return index if index < len(thresholds) else len(thresholds) - 1

    def pick(self, rng, to_backend=True):
        """One ``(name, handler)`` pair for an event of one direction."""
        return self.tables[to_backend][self.index(rng)]

    def pair(self, index, to_backend):
        """The ``(name, handler)`` pair at *index* for one direction."""
        return self.tables[to_backend][index]

    def handler_names(self):
        """The names in the mix with a share above 0, remainder included."""
        return self.names

    def __repr__(self):
        return '<Behavior %s>' % self.text
