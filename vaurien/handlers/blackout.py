"""The ``blackout`` handler."""
from vaurien.handlers.base import BaseHandler


class Blackout(BaseHandler):
    """Closes the client connection at once, and its backend connection.

    The data that woke it up is not read: the client sees its connection
    closed (or reset, when its data was still unread), as when a server
    crashes.
    """
    name = 'blackout'
    effect = 'cut'
    options = {}

    def __call__(self, client_sock, backend_sock, to_backend):
        client_sock.close()
        backend_sock.close()
        return False
