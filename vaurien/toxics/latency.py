"""The ``latency`` toxic."""
from vaurien.handlers.types import Integer
from vaurien.toxics.base import ToxicType, ms, now


class Latency(ToxicType):
    """Holds each chunk ``latency`` milliseconds, give or take ``jitter``.

    The delay counts from the moment the chunk was read from the source,
    so a stream of chunks is delayed, not slowed down: the next chunk is
    read while this one waits. With ``jitter`` each chunk's delay is drawn
    uniformly within ``latency ± jitter`` (never below 0) from the
    connection's seeded generator. Removing or changing the toxic releases
    held chunks at once (or at their new time).
    """
    name = 'latency'
    attributes = {
        'latency': ("Delay of each chunk, in milliseconds", Integer(min=0), 0),
        'jitter': ("Random spread of each delay, in milliseconds",
                   Integer(min=0), 0),
    }

    def __init__(self, values, proxy=None):
        super().__init__(values, proxy)
        self.latency = ms(self.values['latency'])
        self.jitter = ms(self.values['jitter'])

    def apply(self, link, toxic, chunk, emit):
        if not self.latency and not self.jitter:
            emit(chunk)
            return
        spread = 0.0
        if self.jitter:
            spread = link.random.uniform(-self.jitter, self.jitter)
        while True:
            kind = toxic.kind
            target = chunk.stamp + max(0.0, kind.latency + spread)
            if link.wait_until(target, toxic):
                # Chained latencies add up: the next one counts from here.
                chunk.stamp = target
                break
            if not link.present(toxic):
                break
        emit(chunk)

    def instant(self, link, toxic, chunk):
        return not self.jitter and chunk.stamp + self.latency <= now()

    def passes(self):
        return not self.latency and not self.jitter
