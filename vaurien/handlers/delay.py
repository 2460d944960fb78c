"""The ``delay`` handler."""
from vaurien.handlers.base import BaseHandler
from vaurien.handlers.types import Number


class Delay(BaseHandler):
    """Adds a delay before the backend is called, or before the answer.

    With ``before`` (the default) each piece of data from the client waits
    ``sleep`` seconds before it is forwarded to the backend; data from the
    backend passes at once. With ``before = false`` it is the other way
    round: data from the backend is read, then held ``sleep`` seconds before
    the client gets it.

    A live handler change through the control API ends a sleep early: the
    data then goes on at once.
    """
    name = 'delay'
    options = {
        'sleep': ("Delay in seconds (fractions allowed)", Number(min=0), 1.0),
        'before': ("If true, sleep before client data is sent to the backend;"
                   " otherwise sleep after backend data is read, before the"
                   " client gets it", bool, True),
    }

    def __init__(self, settings=None, proxy=None):
        super().__init__(settings, proxy)
        self.sleep = float(self.option('sleep'))
        self.before = self.option('before')

    def __call__(self, client_sock, backend_sock, to_backend):
        if to_backend and self.before:
            self._sleep(self.sleep)
        data = self._get_data(client_sock, backend_sock, to_backend)
        if not data:
            return False
        if not to_backend and not self.before:
            self._sleep(self.sleep)
        self._forward(client_sock, backend_sock, to_backend, data)
        return True
