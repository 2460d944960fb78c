"""The ``hang`` handler."""
from vaurien.handlers.base import BaseHandler


class Hang(BaseHandler):
    """Reads and discards, never answers: the connection hangs.

    Whatever arrives on the side that woke it up is read and thrown away, and
    nothing is forwarded any more in that direction, so the client never gets
    its answer. The connection is held open until the client gives up; then
    both sockets are closed and nothing is left behind. A live handler change
    through the control API closes hung connections at once.
    """
    name = 'hang'
    effect = 'hung'
    options = {}

    def __call__(self, client_sock, backend_sock, to_backend):
        conn = self.connection(client_sock)
        if conn is not None:
            conn.hang()
        while self.read(client_sock, backend_sock, to_backend):
            pass
        return False
