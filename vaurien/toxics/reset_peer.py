"""The ``reset_peer`` toxic."""
from vaurien.handlers.types import Integer
from vaurien.toxics.base import ToxicType, ms, now


class ResetPeer(ToxicType):
    """Resets the connection (TCP RST) ``timeout`` ms after data first
    reaches it; 0: at once.

    The chunk that set it off and what follows are dropped; both the
    client and the backend see "connection reset by peer".
    """
    name = 'reset_peer'
    attributes = {
        'timeout': ("Milliseconds from the first data to the reset",
                    Integer(min=0), 0),
    }

    def apply(self, link, toxic, chunk, emit):
        state = link.state(toxic)
        start = state.setdefault('start', now())
        while link.present(toxic):
            if link.wait_until(start + ms(toxic.kind.values['timeout']),
                               toxic):
                link.reset()
                return
        emit(chunk)

    def eof(self, link, toxic, emit_eof):
        link.reset()
