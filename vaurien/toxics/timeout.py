"""The ``timeout`` toxic."""
from vaurien.handlers.types import Integer
from vaurien.toxics.base import ToxicType, ms, now


class Timeout(ToxicType):
    """Stops all data, then closes the connection after ``timeout`` ms.

    Every chunk that reaches it is dropped. The connection is closed once
    ``timeout`` milliseconds have passed since the toxic started on it or
    since the last chunk it dropped (as Toxiproxy counts). With ``timeout``
    0 the connection is never closed by the toxic: it stays silent until
    the toxic is removed, which then closes it. The end of the stream is
    held too (Toxiproxy lets it through at once): a backend that answers
    and closes still leaves its client waiting.
    """
    name = 'timeout'
    attributes = {
        'timeout': ("Milliseconds before the connection is closed; 0: "
                    "never, until the toxic is removed", Integer(min=0), 0),
    }

    def started(self, link, toxic):
        link.state(toxic)['since'] = now()

    def apply(self, link, toxic, chunk, emit):
        link.state(toxic)['since'] = now()

    def deadline(self, link, toxic):
        timeout = self.values['timeout']
        if not timeout:
            return None
        return link.state(toxic).get('since', now()) + ms(timeout)

    def eof(self, link, toxic, emit_eof):
        while link.present(toxic):
            due = toxic.kind.deadline(link, toxic)
            if due is None:
                due = now() + 3600.0
            if link.wait_until(due, toxic) and toxic.kind.deadline(
                    link, toxic) is not None:
                link.close()
        emit_eof()

    def idle(self, link, toxic):
        link.close()

    def removed(self, link, toxic):
        link.close()

    def instant(self, link, toxic, chunk):
        return True
