"""The ``delay`` handler."""
from vaurien.handlers.base import WRONG_DIRECTION, BaseHandler
from vaurien.handlers.types import Number


class Delay(BaseHandler):
    """Adds a delay before the backend is called, or before the answer.

    With ``before`` (the default) each piece of data from the client waits
    ``sleep`` seconds before it is forwarded to the backend; data from the
    backend passes at once. With ``before = false`` it is the other way
    round: data from the backend is read, then held ``sleep`` seconds before
    the client gets it.

    With ``jitter``, each delay is drawn uniformly between ``sleep - jitter``
    and ``sleep + jitter`` seconds (never below 0), from the connection's
    random generator, so ``--seed`` replays the same delays.

    A live handler change through the control API ends a sleep early: the
    data then goes on at once.
    """
    name = 'delay'
    options = {
        'sleep': ("Delay in seconds (fractions allowed)", Number(min=0), 1.0),
        'before': ("If true, sleep before client data is sent to the backend;"
                   " otherwise sleep after backend data is read, before the"
                   " client gets it", bool, True),
        'jitter': ("Random spread of each delay in seconds: it is drawn"
                   " uniformly within sleep +/- jitter, never below 0",
                   Number(min=0), 0.0),
    }

    def __init__(self, settings=None, proxy=None):
        super().__init__(settings, proxy)
        self.seconds = float(self.option('sleep'))
        self.before = self.option('before')
        self.jitter = float(self.option('jitter'))

    def effect(self, to_backend):
        """Client data is held with ``before``, backend data otherwise; the
        other direction passes untouched."""
        if to_backend == bool(self.before):
            return 'delayed'
        return 'none', WRONG_DIRECTION

    def _delay(self, client_sock):
        """The length of one delay, in seconds."""
        if not self.jitter:
            return self.seconds
        spread = self.random(client_sock).uniform(-self.jitter, self.jitter)
        return max(0.0, self.seconds + spread)

    def __call__(self, client_sock, backend_sock, to_backend):
        if to_backend and self.before:
            self.sleep(self._delay(client_sock))
        data = self.read(client_sock, backend_sock, to_backend)
        if not data:
            return False
        if not to_backend and not self.before:
            self.sleep(self._delay(client_sock))
        self.forward(client_sock, backend_sock, to_backend, data)
        return True
