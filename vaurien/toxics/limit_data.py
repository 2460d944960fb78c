"""The ``limit_data`` toxic."""
from vaurien.handlers.types import Integer
from vaurien.toxics.base import ToxicType


class LimitData(ToxicType):
    """Closes the connection once ``bytes`` bytes have passed this stream.

    The count is per connection and survives changes of the toxic; the
    chunk that reaches the limit is cut at it.
    """
    name = 'limit_data'
    attributes = {
        'bytes': ("Bytes let through before the connection is closed",
                  Integer(min=0), 0),
    }

    def apply(self, link, toxic, chunk, emit):
        state = link.state(toxic)
        sent = state.get('sent', 0)
        left = self.values['bytes'] - sent
        if left > 0:
            if len(chunk.data) > left:
                chunk = chunk.__class__(chunk.data[:left], chunk.stamp)
            state['sent'] = sent + len(chunk.data)
            emit(chunk)
            left -= len(chunk.data)
        if left <= 0:
            link.close()

    def instant(self, link, toxic, chunk):
        return True
