"""Prometheus metrics: ``GET /metrics`` on the control server (``--http``).

:func:`render` writes the proxy's counters in the Prometheus text
exposition format (version 0.0.4), with no dependency. Every metric:

===============================================  =======  =====================
name                                             type     labels
===============================================  =======  =====================
``vaurien_connections_total``                    counter
``vaurien_connections_closed_total``             counter
``vaurien_connections_open``                     gauge
``vaurien_connections_hung``                     gauge
``vaurien_bytes_total``                          counter  ``direction``
``vaurien_handler_picks_total``                  counter  ``handler``,
                                                          ``direction``
``vaurien_handler_effects_total``                counter  ``handler``,
                                                          ``effect``
``vaurien_request_effects_total``                counter  ``handler``,
                                                          ``effect``
``vaurien_connection_effects_total``             counter  ``effect``
``vaurien_backend_connect_failures_total``       counter  ``reason``
``vaurien_client_tls_handshake_failures_total``  counter  ``reason``
``vaurien_handler_exceptions_total``             counter  ``handler``
===============================================  =======  =====================

``direction`` is ``upstream`` (client to backend: bytes read from clients)
or ``downstream`` (backend to client: bytes read from backends). ``reason``
is one of ``refused``, ``timeout``, ``resolve``, ``unreachable``,
``tls``, ``other`` for backend connects, and one of
:data:`~vaurien.stats.HANDSHAKE_REASONS` (``timeout``, ``untrusted``,
``certificate``, ``protocol``, ``reset``, ``other``) for the clients' TLS
handshakes with the proxy. Every handler of the current behavior has its
picks listed, at 0 when not picked yet. ``effect`` is what a fault did
(``delayed``, ``throttled``, ``errored``, ``corrupted``, ``cut``,
``reset``, ``hung``, ``failed``), or ``passed`` (untouched) or ``none``
(picked, did nothing): per handler call, per request (protocol mode: the
effect of the pick of the exchange), and per closed connection (once for
each kind of fault it met, ``passed`` when it met none).
"""
from vaurien.stats import FAILURE_REASONS, HANDSHAKE_REASONS, snapshot

__all__ = ['render', 'render_snapshot', 'CONTENT_TYPE', 'METRICS']

#: The Content-Type of the answer.
CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8'

#: name -> (type, help): every metric :func:`render` writes.
METRICS = {
    'vaurien_connections_total':
        ('counter', 'Client connections accepted.'),
    'vaurien_connections_closed_total':
        ('counter', 'Client connections ended (both sockets closed).'),
    'vaurien_connections_open':
        ('gauge', 'Client connections open now (connecting ones included).'),
    'vaurien_connections_hung':
        ('gauge', 'Connections held open by a hang handler now.'),
    'vaurien_bytes_total':
        ('counter', 'Bytes read from clients (direction="upstream") and '
                    'from backends (direction="downstream").'),
    'vaurien_handler_picks_total':
        ('counter', 'Picks of each handler, per direction (dummy: passed '
                    'through untouched); with --pick exchange, one per '
                    'request, counted upstream.'),
    'vaurien_handler_effects_total':
        ('counter', 'Handler calls, by what they did.'),
    'vaurien_request_effects_total':
        ('counter', 'Requests (protocol mode), by what the pick of their '
                    'exchange did to them or to their response.'),
    'vaurien_connection_effects_total':
        ('counter', 'Closed connections, once for each kind of fault they '
                    'met (passed: none).'),
    'vaurien_backend_connect_failures_total':
        ('counter', 'Backend connections that failed, by reason.'),
    'vaurien_client_tls_handshake_failures_total':
        ('counter', 'Client TLS handshakes with the proxy that failed, by '
                    'reason (not those failed by tls_error).'),
    'vaurien_handler_exceptions_total':
        ('counter', 'Exceptions raised by handlers (each ended its '
                    'connection).'),
}

_DIRECTIONS = ('downstream', 'upstream')   # indexed by to_backend


def _label(value):
    """A label value, escaped as the text format wants."""
    return (str(value).replace('\\', '\\\\').replace('"', '\\"')
            .replace('\n', '\\n'))


def _labels(pairs):
    if not pairs:
        return ''
    return '{%s}' % ','.join('%s="%s"' % (key, _label(value))
                             for key, value in pairs)


def render(proxy):
    """The ``/metrics`` text of *proxy* (a :class:`~vaurien.proxy.Proxy`)."""
    return render_snapshot(snapshot(proxy))


def render_snapshot(snap):
    """The ``/metrics`` text of a :class:`~vaurien.stats.Snapshot`."""
    samples = {
        'vaurien_connections_total': [((), snap.opened)],
        'vaurien_connections_closed_total': [((), snap.closed)],
        'vaurien_connections_open': [((), snap.open)],
        'vaurien_connections_hung': [((), snap.hung)],
        'vaurien_bytes_total': [((('direction', 'upstream'),),
                                 snap.bytes_up),
                                ((('direction', 'downstream'),),
                                 snap.bytes_down)],
        'vaurien_handler_picks_total': [
            ((('handler', name), ('direction', _DIRECTIONS[to_backend])),
             count)
            for (name, to_backend), count in sorted(
                snap.picks.items(), key=lambda item: (item[0][0],
                                                      not item[0][1]))],
        'vaurien_handler_effects_total': [
            ((('handler', name), ('effect', effect)), count)
            for (name, effect), count in sorted(snap.effects.items())],
        'vaurien_request_effects_total': [
            ((('handler', name), ('effect', effect)), count)
            for (name, effect), count in sorted(snap.requests.items())],
        'vaurien_connection_effects_total': [
            ((('effect', effect),), count)
            for effect, count in sorted(snap.connections.items())],
        'vaurien_backend_connect_failures_total': [
            ((('reason', reason),), snap.failures.get(reason, 0))
            for reason in FAILURE_REASONS],
        'vaurien_client_tls_handshake_failures_total': [
            ((('reason', reason),), snap.client_tls_failures.get(reason, 0))
            for reason in HANDSHAKE_REASONS],
        'vaurien_handler_exceptions_total': [
            ((('handler', name),), count)
            for name, count in sorted(snap.exceptions.items())],
    }
    lines = []
    for name, (kind, text) in METRICS.items():
        lines.append('# HELP %s %s' % (name, text))
        lines.append('# TYPE %s %s' % (name, kind))
        for labels, value in samples[name]:
            lines.append('%s%s %d' % (name, _labels(labels), value))
    return '\n'.join(lines) + '\n'
