"""The ``reset_peer`` handler."""
from vaurien.handlers.abort import reset
from vaurien.handlers.base import BaseHandler
from vaurien.handlers.types import Number


class ResetPeer(BaseHandler):
    """Cuts the connection with a TCP RST, optionally after a delay.

    When it is picked, the data that woke it up is read and thrown away;
    after ``timeout`` seconds (at once with the default 0) both the client's
    and the backend's connection are reset (SO_LINGER on with a zero
    timeout, then close). The client's next read fails with "connection
    reset by peer" (``ECONNRESET``), never with a clean end of stream.

    While it waits, nothing more is read in that direction; the other
    direction keeps flowing. A live handler change through the control API
    ends the wait early, and the reset happens at once.
    """
    name = 'reset_peer'
    effect = 'reset'
    options = {
        'timeout': ("Seconds to wait before the reset (0: at once)",
                    Number(min=0), 0.0),
    }

    def __init__(self, settings=None, proxy=None):
        super().__init__(settings, proxy)
        self.timeout = float(self.option('timeout'))

    def __call__(self, client_sock, backend_sock, to_backend):
        self.read(client_sock, backend_sock, to_backend)
        if self.timeout > 0:
            self.sleep(self.timeout)
        reset(client_sock)
        reset(backend_sock)
        return False
