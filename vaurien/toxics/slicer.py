"""The ``slicer`` toxic."""
from vaurien.handlers.types import Integer
from vaurien.toxics.base import ToxicType, now


class Slicer(ToxicType):
    """Cuts each chunk into slices of about ``average_size`` bytes (give or
    take ``size_variation``), ``delay`` microseconds apart.

    Nothing is lost or changed, only how the bytes are split in time:
    clients that assume one read returns one message break. Sizes are drawn
    from the connection's seeded generator. As in Toxiproxy, a chunk is cut
    in two halves (moved by up to ``size_variation``) until the pieces are
    within ``size_variation`` of ``average_size``.
    """
    name = 'slicer'
    attributes = {
        'average_size': ("Average size of a slice, in bytes",
                         Integer(min=0), 0),
        'size_variation': ("Largest difference from average_size, in bytes",
                           Integer(min=0), 0),
        'delay': ("Pause between two slices, in microseconds",
                  Integer(min=0), 0),
    }

    def cuts(self, size, rng):
        """The offsets ``[0, ..., size]`` where the chunk is cut."""
        average = self.values['average_size']
        variation = self.values['size_variation']
        bounds = [0]
        todo = [(0, size)]
        while todo:
            start, end = todo.pop()
            if (end - start) - average <= variation or end - start < 2:
                bounds.append(end)
                continue
            mid = start + (end - start) // 2
            if variation:
                mid += rng.randrange(variation * 2) - variation
            mid = min(max(mid, start + 1), end - 1)
            # right half pushed first so that the left one is cut first
            todo.append((mid, end))
            todo.append((start, mid))
        return bounds

    def apply(self, link, toxic, chunk, emit):
        data = chunk.data
        bounds = self.cuts(len(data), link.random)
        for i in range(1, len(bounds)):
            if not link.present(toxic):
                emit(chunk.__class__(data[bounds[i - 1]:], chunk.stamp))
                return
            emit(chunk.__class__(data[bounds[i - 1]:bounds[i]], chunk.stamp))
            delay = toxic.kind.values['delay']
            if delay and i + 1 < len(bounds):
                link.wait_until(now() + delay / 1e6, toxic)

    def instant(self, link, toxic, chunk):
        return not self.values['delay']
