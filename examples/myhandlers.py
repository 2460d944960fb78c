"""Example handlers written against Vaurien's handler API.

Used by docs/writing-handlers.rst and run by tests/test_docs.py:

    vaurien --behavior 30:myhandlers.Uppercase --handlers.myhandlers.Uppercase.every 2
"""
from vaurien.handlers import BaseHandler


class Uppercase(BaseHandler):
    """Upper-cases what the backend answers, one answer in ``every``."""

    name = 'uppercase'
    options = {'every': ("Upper-case one backend answer in this many", int, 1)}

    def __call__(self, client_sock, backend_sock, to_backend):
        data = self.read(client_sock, backend_sock, to_backend)
        if not data:
            return False            # end of stream: this direction is over
        if not to_backend:
            # One instance serves every connection: count per connection.
            state = self.state(client_sock)
            state['answers'] = state.get('answers', 0) + 1
            if state['answers'] % self.option('every') == 0:
                data = data.upper()
        self.forward(client_sock, backend_sock, to_backend, data)
        return True


def drop_client_data(client_sock, backend_sock, to_backend):
    """A plain callable: swallows what the client sends, passes answers."""
    source = client_sock if to_backend else backend_sock
    data = source.recv(65536)
    if data and not to_backend:
        client_sock.sendall(data)
    return bool(data)
