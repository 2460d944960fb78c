"""The ``slow_close`` toxic."""
from vaurien.handlers.types import Integer
from vaurien.toxics.base import ToxicType, ms, now


class SlowClose(ToxicType):
    """Holds the end of the stream ``delay`` milliseconds: the data passes
    at once, the close comes late."""
    name = 'slow_close'
    attributes = {
        'delay': ("How long the close is held, in milliseconds",
                  Integer(min=0), 0),
    }

    def eof(self, link, toxic, emit_eof):
        start = now()
        while link.present(toxic):
            if link.wait_until(start + ms(toxic.kind.values['delay']), toxic):
                break
        emit_eof()

    def instant(self, link, toxic, chunk):
        return True

    def passes(self):
        return True
