"""The ``noop`` toxic."""
from vaurien.toxics.base import ToxicType


class Noop(ToxicType):
    """Passes everything on untouched (Toxiproxy has it too: a placeholder
    that a client can add and remove)."""
    name = 'noop'
    attributes = {}

    def instant(self, link, toxic, chunk):
        return True

    def passes(self):
        return True
