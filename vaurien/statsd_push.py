"""statsd counters (``--statsd.enabled``), pushed from one greenlet.

The data path only bumps integers (see :mod:`vaurien.stats`); a greenlet
wakes every :data:`INTERVAL` seconds, reads a snapshot and sends the
differences since the last push over UDP, batched by the ``statsd``
package (``pip install statsd``, or the ``[statsd]`` extra). A statsd
daemon that is down or unreachable changes nothing: UDP sends do not wait
for anyone.

Names, under ``--statsd.prefix`` (``vaurien``):

==================================  =======  ===============================
name                                type     what
==================================  =======  ===============================
``connections.opened``              counter  clients accepted
``connections.closed``              counter  connections ended
``connections.open``                gauge    connections open now
``handler.NAME``                    counter  picks of handler NAME
``requests.EFFECT``                 counter  requests (protocol mode) by effect
``connections.effect.EFFECT``       counter  closed connections by effect
``backend.failures.REASON``         counter  backend connects that failed
``client.tls_failures.REASON``      counter  client TLS handshakes that failed
``handler_exceptions.NAME``         counter  exceptions raised by handler NAME
``bytes.up``                        counter  bytes read from clients
``bytes.down``                      counter  bytes read from backends
==================================  =======  ===============================

In names, any character other than letters, digits, ``_`` and ``-`` is
replaced by ``_`` (a dotted handler path stays one name).
"""
import logging
import re

import gevent

from vaurien.config import ConfigError, format_hostport
from vaurien.stats import snapshot

__all__ = ['StatsdPusher', 'make_client', 'INTERVAL']

log = logging.getLogger('vaurien')

#: Seconds between two pushes.
INTERVAL = 1.0

_UNSAFE = re.compile(r'[^A-Za-z0-9_-]')


def metric_name(text):
    """*text* made safe as one component of a statsd name."""
    return _UNSAFE.sub('_', text) or '_'


def make_client(host, port, prefix):
    """A ``statsd.StatsClient``; ConfigError if the extra is missing or the
    host cannot be resolved."""
    try:
        import statsd
    except ImportError:
        raise ConfigError('--statsd.enabled needs the statsd package: '
                          'pip install statsd') from None
    try:
        return statsd.StatsClient(host, port, prefix=prefix or None)
    except (OSError, UnicodeError) as exc:
        reason = getattr(exc, 'strerror', None) or str(exc)
        raise ConfigError('cannot send to statsd at %s (--statsd.host): %s'
                          % (format_hostport((host, port)),
                             reason.lower())) from None


class StatsdPusher:
    """Pushes *proxy*'s counters to *client* every *interval* seconds.

    ``start()`` spawns the greenlet; ``stop()`` ends it after a last push,
    so that nothing counted before a shutdown is lost.
    """

    def __init__(self, proxy, client, sample_rate=1.0, interval=INTERVAL):
        self.proxy = proxy
        self.client = client
        self.rate = sample_rate
        self.interval = interval
        self.last = {}
        self.greenlet = None
        self._warned = False

    def counters(self):
        """``{statsd name: total}`` of every counter, right now."""
        snap = snapshot(self.proxy)
        totals = {'connections.opened': snap.opened,
                  'connections.closed': snap.closed,
                  'bytes.up': snap.bytes_up,
                  'bytes.down': snap.bytes_down}
        for name, count in snap.picks_by_name().items():
            key = 'handler.%s' % metric_name(name)
            totals[key] = totals.get(key, 0) + count
        for reason, count in snap.failures.items():
            totals['backend.failures.%s' % reason] = count
        for reason, count in snap.client_tls_failures.items():
            totals['client.tls_failures.%s' % reason] = count
        for name, count in snap.exceptions.items():
            key = 'handler_exceptions.%s' % metric_name(name)
            totals[key] = totals.get(key, 0) + count
        for effect, count in snap.requests_by_effect().items():
            totals['requests.%s' % effect] = count
        for effect, count in snap.connections.items():
            totals['connections.effect.%s' % effect] = count
        return totals, snap

    def push(self):
        """Send what changed since the last push (never raises)."""
        try:
            totals, snap = self.counters()
            with self.client.pipeline() as pipe:
                for name, total in sorted(totals.items()):
                    delta = total - self.last.get(name, 0)
                    if delta > 0:
                        pipe.incr(name, delta, self.rate)
                pipe.gauge('connections.open', snap.open)
            self.last = totals
        except Exception as exc:   # statsd must never hurt the proxy
            if not self._warned:
                self._warned = True
                log.warning('statsd: cannot send counters: %s: %s',
                            type(exc).__name__, exc)

    def _run(self):
        while True:
            gevent.sleep(self.interval)
            self.push()

    def start(self):
        """Push every :attr:`interval` seconds from now on."""
        if self.greenlet is None:
            self.greenlet = gevent.spawn(self._run)

    def stop(self):
        """Stop pushing, after one last push."""
        if self.greenlet is not None:
            self.greenlet.kill(block=False)
            self.greenlet = None
        self.push()
