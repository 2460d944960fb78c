"""The ``tls_error`` handler."""
import logging

from vaurien.config import parse_choice
from vaurien.endpoints import ALERTS, alert_record
from vaurien.handlers.abort import reset
from vaurien.handlers.base import BaseHandler

log = logging.getLogger('vaurien')


class TLSError(BaseHandler):
    """Fails the client's TLS handshake.

    Where the proxy terminates TLS (``--local-tls-cert``), each new
    connection's handshake is an event of its own, picked before the
    handshake like any upstream event (the usual weights, ``--pick`` and
    ``direction``: with ``direction = downstream`` it never fires there).
    When ``tls_error`` is picked for it, the handshake fails:

    * ``mode = alert`` (the default): the client's hello is answered with
      a fatal TLS alert (``alert``, ``handshake_failure`` by default), which
      the client's library reports, e.g. ``sslv3 alert handshake failure``;
    * ``mode = abort``: the client's hello is read, half of the answer is
      sent, and the connection is reset (TCP RST): the client is left in the
      middle of its handshake ("unexpected eof" or "connection reset").

    The backend is never connected for such a connection. Picked for a data
    event (or on a proxy that does not terminate TLS), it passes the data
    untouched.
    """
    name = 'tls_error'
    options = {
        'mode': ("alert (a fatal TLS alert) or abort (reset in the middle "
                 "of the handshake)", parse_choice('alert', 'abort'),
                 'alert'),
        'alert': ("The alert sent with mode alert: %s" % ', '.join(ALERTS),
                  parse_choice(*ALERTS), 'handshake_failure'),
    }
    # On data events it passes everything through; on a handshake, see
    # handshake_effect.
    effect = ('none', 'only a TLS handshake is failed')

    def __init__(self, settings=None, proxy=None):
        super().__init__(settings, proxy)
        self.mode = self.option('mode')
        self.record = alert_record(self.option('alert'))
        if proxy is not None and getattr(proxy, 'local_tls', None) is None:
            log.warning('tls_error acts on TLS handshakes with clients, and '
                        'this proxy does not terminate TLS (no '
                        '--local-tls-cert): it will pass data untouched')

    def handshake_effect(self):
        """What failing a handshake does: an alert is an error the
        client's library reports, an abort a reset."""
        return 'errored' if self.mode == 'alert' else 'reset'

    def tls_handshake(self, conn):
        """Called by the engine instead of the client's handshake."""
        sock = conn.client
        timeout = conn.proxy.local_tls.timeout
        if self.mode == 'alert':
            sock.refuse_handshake(self.record, timeout)
        else:
            sock.abort_handshake(timeout)
            reset(sock)

    def __call__(self, client_sock, backend_sock, to_backend):
        data = self.read(client_sock, backend_sock, to_backend)
        if data:
            self.forward(client_sock, backend_sock, to_backend, data)
        return bool(data)
