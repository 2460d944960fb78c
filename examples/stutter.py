"""A handler using every helper of the handler author's API.

Used by docs/writing-handlers.rst and run by tests/test_docs.py:

    vaurien --behavior 100:stutter.Stutter --handlers.stutter.Stutter.pause 0.05
"""
from vaurien.handlers import BaseHandler
from vaurien.handlers.types import Number


class Stutter(BaseHandler):
    """Answers arrive in two pieces, with a pause in between.

    Each backend answer is cut at a random point (from the connection's
    seeded generator) and the second piece waits ``pause`` seconds. The
    first ``spare`` answers of each connection pass whole.
    """

    name = 'stutter'
    options = {
        'pause': ("Seconds between the two pieces", Number(min=0), 0.1),
        'spare': ("Answers per connection passed whole first", int, 0),
    }
    effect = 'delayed'            # what the stats and the event log say

    def __call__(self, client_sock, backend_sock, to_backend):
        data = self.read(client_sock, backend_sock, to_backend)
        if not data:
            return False                  # end of stream
        state = self.state(client_sock)   # this connection's, this handler's
        answers = state['answers'] = state.get('answers', 0) + 1
        if to_backend or len(data) < 2 or answers <= self.option('spare'):
            self.forward(client_sock, backend_sock, to_backend, data)
            return True
        cut = self.random(client_sock).randrange(1, len(data))
        self.forward(client_sock, backend_sock, to_backend, data[:cut])
        self.sleep(self.option('pause'))  # woken early by a live change
        self.forward(client_sock, backend_sock, to_backend, data[cut:])
        conn = self.connection(client_sock)    # None outside a proxy
        if conn is not None:
            state['connection'] = conn.seq
        return True
