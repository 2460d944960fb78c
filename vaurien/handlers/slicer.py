"""The ``slicer`` handler."""
from vaurien.handlers.base import BaseHandler
from vaurien.handlers.types import Integer, Number


class Slicer(BaseHandler):
    """Cuts data into small pieces, with an optional pause between them.

    What is read at once is sent on as slices of ``average_size`` bytes,
    give or take up to ``size_variation`` bytes (uniformly, and never less
    than one byte), with ``delay`` seconds between two slices. Nothing is
    lost or changed: only the way the bytes are split in time changes, which
    finds the clients that assume one read returns one whole message.

    Slice sizes are drawn from the connection's random generator, so
    ``--seed`` replays them.
    """
    name = 'slicer'
    effect = 'delayed'
    options = {
        'average_size': ("Average size of a slice, in bytes",
                         Integer(min=1), 64),
        'size_variation': ("Largest difference between a slice's size and "
                           "average_size, in bytes", Integer(min=0), 32),
        'delay': ("Pause between two slices, in seconds", Number(min=0),
                  0.01),
    }

    def __init__(self, settings=None, proxy=None):
        super().__init__(settings, proxy)
        self.average_size = self.option('average_size')
        self.size_variation = self.option('size_variation')
        self.delay = float(self.option('delay'))

    def __call__(self, client_sock, backend_sock, to_backend):
        data = self.read(client_sock, backend_sock, to_backend)
        if not data:
            return False
        rng = self.random(client_sock)
        dest = backend_sock if to_backend else client_sock
        average, variation = self.average_size, self.size_variation
        with memoryview(data) as view:
            start, size = 0, len(data)
            while start < size:
                length = average
                if variation:
                    length = max(1, average + rng.randint(-variation,
                                                          variation))
                dest.sendall(view[start:start + length])
                start += length
                if start < size and self.delay:
                    self.sleep(self.delay)
        return True
