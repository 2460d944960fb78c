"""The ``corrupt`` handler."""
import math
import random

from vaurien.handlers.base import BaseHandler
from vaurien.handlers.types import Number


class Corrupt(BaseHandler):
    """Flips random bits in a share of the bytes passing through.

    Each byte passing through is corrupted with probability ``rate`` (0: no
    byte, 1: every byte); a corrupted byte has one of its eight bits, chosen
    at random, flipped. Nothing is added or lost: the length of the stream
    stays the same, only its content goes bad, as on a faulty link or with
    broken hardware that checksums did not catch.

    Which bytes and which bits are drawn from the connection's random
    generator, one stream of draws per direction that follows the position
    in the data (not how it was split into reads), so ``--seed`` replays
    the same corruption.
    """
    name = 'corrupt'
    effect = 'corrupted'
    options = {
        'rate': ("Share of the bytes corrupted, from 0 (none) to 1 (all)",
                 Number(min=0, max=1), 0.01),
    }

    def __init__(self, settings=None, proxy=None):
        super().__init__(settings, proxy)
        self.rate = float(self.option('rate'))
        # For the gaps between corrupted bytes (a geometric distribution):
        # log of the probability that a byte is left alone.
        self._log_keep = math.log(1.0 - self.rate) if self.rate < 1 else None

    def __call__(self, client_sock, backend_sock, to_backend):
        data = self.read(client_sock, backend_sock, to_backend)
        if not data:
            return False
        if self.rate > 0:
            data = self.corrupt(data, client_sock, to_backend)
        self.forward(client_sock, backend_sock, to_backend, data)
        return True

    def corrupt(self, data, client_sock, to_backend):
        """*data* with bits flipped, continuing this direction's draws."""
        state = self.state(client_sock)
        streams = state.get('streams')
        if streams is None:
            # One generator per direction, both derived at once from the
            # connection's, so that the order in which the directions
            # first speak does not change what either of them gets.
            rng = self.random(client_sock)
            streams = state['streams'] = [
                [random.Random(rng.getrandbits(64)), None],
                [random.Random(rng.getrandbits(64)), None]]
        stream = streams[to_backend]
        rng, position = stream
        if position is None:
            position = self._gap(rng)
        out = bytearray(data)
        size = len(out)
        while position < size:
            out[position] ^= 1 << rng.randrange(8)
            position += 1 + self._gap(rng)
        stream[1] = position - size
        return bytes(out)

    def _gap(self, rng):
        """How many bytes pass untouched before the next corrupted one."""
        if self._log_keep is None:
            return 0
        return int(math.log(1.0 - rng.random()) / self._log_keep)
