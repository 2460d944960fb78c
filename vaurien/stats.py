"""What the proxy counts, and one consistent reading of it.

The engine counts with plain integer increments where the work happens,
so that counting costs next to nothing on the hot path:

* picks: ``Behavior.picks[to_backend][index] += 1`` at each readable event;
* bytes: ``Socket.received`` and ``Socket.sent`` on each socket (bytes
  read from it, bytes written to it), summed into :class:`Stats` when the
  connection closes;
* connections: the proxy's sequence number counts the accepted ones,
  :class:`Stats` the closed ones;
* backend connect failures, failed client TLS handshakes and handler
  exceptions (rare): here, by label;
* what each handler call did (its effect, see
  :func:`vaurien.events.effect_of`), by handler, and the last faults, with
  their connection: here, at each handler call (``dummy`` is not called).

:func:`snapshot` adds it all up (open connections included) when someone
asks: the ``/metrics`` page, the statsd pusher, ``vaurienctl stats``.
"""
import collections
import errno
import math
import socket as _socket
import ssl
import time

from vaurien.config import format_hostport

__all__ = ['Stats', 'Snapshot', 'snapshot', 'failure_reason',
           'FAILURE_REASONS', 'handshake_reason', 'HANDSHAKE_REASONS',
           'percentile', 'RECENT', 'NOT_FAULTS', 'effect_shares']

#: The last faults kept, for the dashboard.
RECENT = 20

#: Effects that are not faults: relayed untouched, or nothing done.
NOT_FAULTS = frozenset(['passed', 'none'])


def percentile(values, fraction):
    """The nearest-rank percentile *fraction* (0 to 1) of *values*.

    That is the smallest of the values such that at least that fraction of
    them are at or below it: ``percentile(v, 0.5)`` is the median (the
    lower one for an even count), ``percentile(v, 0.99)`` the value 99% of
    the samples do not exceed. Always one of the values, never
    interpolated. *values* need not be sorted; None when empty. The
    latency figures of ``vaurien --demo`` and of the benchmarks use it.
    """
    if not values:
        return None
    ordered = sorted(values)
    rank = math.ceil(fraction * len(ordered))
    return ordered[min(len(ordered), max(1, rank)) - 1]

# What a connection that met no fault counts as.
_UNTOUCHED = ('passed',)

# How the effects that are not faults read in a summary.
_EFFECT_WORDS = {'passed': 'passed untouched',
                 'none': 'picked with no effect'}


def effect_shares(counts, noun, notes=None, total=None):
    """*counts* (``{effect: count}``) for a person: ``"20.1% of 2000
    requests delayed (by 1.0 s), 4.9% cut, 75.0% passed untouched"``.

    Faults first, most frequent first, then ``passed`` and ``none``;
    *noun* is what is counted (plural); *notes* (``{effect: text}``) adds
    a word to an effect (``{'delayed': 'by 1.0 s'}``); *total*, what the
    shares are of, defaults to the sum of *counts* (give it when one thing
    can be counted under several effects: a connection). None when nothing
    was counted.
    """
    if total is None:
        total = sum(counts.values())
    if not total:
        return None
    notes = notes or {}
    order = sorted((e for e in counts if e not in NOT_FAULTS),
                   key=lambda e: (-counts[e], e))
    order += [e for e in ('passed', 'none') if counts.get(e)]
    parts = []
    for effect in order:
        if not counts[effect]:
            continue
        text = '%.1f%%' % (100.0 * counts[effect] / total)
        if not parts:
            text += ' of %d %s' % (total, noun)
        text += ' ' + _EFFECT_WORDS.get(effect, effect)
        if effect in notes:
            text += ' (%s)' % notes[effect]
        parts.append(text)
    return ', '.join(parts)


#: The labels of backend connect failures.
FAILURE_REASONS = ('refused', 'timeout', 'resolve', 'unreachable', 'tls',
                   'other')

_UNREACHABLE = {errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EHOSTDOWN,
                errno.ENETDOWN}


def failure_reason(exc):
    """The label of a backend connect failure *exc* (one of
    :data:`FAILURE_REASONS`)."""
    if isinstance(exc, _socket.gaierror) or isinstance(exc, UnicodeError):
        return 'resolve'
    if isinstance(exc, (_socket.timeout, TimeoutError)):
        return 'timeout'
    if isinstance(exc, ssl.SSLError):
        return 'tls'        # the TLS handshake failed (--distant-tls)
    err = getattr(exc, 'errno', None)
    if err == errno.ECONNREFUSED:
        return 'refused'
    if err == errno.ETIMEDOUT:
        return 'timeout'
    if err in _UNREACHABLE:
        return 'unreachable'
    return 'other'


#: The labels of failed client TLS handshakes (``--local-tls-cert``):
#: ``timeout``, no handshake within ``--local-tls-timeout``;
#: ``untrusted``, the client refused the proxy's certificate (it sent an
#: alert about it); ``certificate``, the proxy refused the client's
#: certificate, or got none (``--local-tls-ca``); ``protocol``, not TLS, or
#: no version or cipher in common, or any other alert or malformed
#: handshake; ``reset``, the client went away mid-handshake (a reset, or
#: its end of stream before the handshake was done); ``other``.
HANDSHAKE_REASONS = ('timeout', 'untrusted', 'certificate', 'protocol',
                     'reset', 'other')

# What OpenSSL names the alerts by which a client refuses the server's
# certificate (the "reason" of the SSLError the server gets).
_UNTRUSTED_ALERTS = frozenset(
    prefix + '_ALERT_' + name for prefix in ('SSLV3', 'TLSV1', 'TLSV13')
    for name in ('UNKNOWN_CA', 'BAD_CERTIFICATE', 'CERTIFICATE_UNKNOWN',
                 'CERTIFICATE_EXPIRED', 'CERTIFICATE_REVOKED',
                 'UNSUPPORTED_CERTIFICATE', 'BAD_CERTIFICATE_STATUS_RESPONSE',
                 'ACCESS_DENIED'))

# OpenSSL's reasons for a client certificate the proxy refuses or misses.
_CLIENT_CERTIFICATE = frozenset(['PEER_DID_NOT_RETURN_A_CERTIFICATE',
                                 'CERTIFICATE_VERIFY_FAILED',
                                 'NO_CERTIFICATE_RETURNED'])


def handshake_reason(exc):
    """The label of a failed client TLS handshake *exc* (one of
    :data:`HANDSHAKE_REASONS`)."""
    if isinstance(exc, (_socket.timeout, TimeoutError)):
        return 'timeout'    # (the proxy's HandshakeTimeout among them)
    if isinstance(exc, (ssl.SSLEOFError, ssl.SSLZeroReturnError,
                        ConnectionError)):
        return 'reset'
    if isinstance(exc, ssl.SSLCertVerificationError):
        return 'certificate'
    if isinstance(exc, ssl.SSLError):
        reason = exc.reason or ''
        if reason in _UNTRUSTED_ALERTS:
            return 'untrusted'
        if reason in _CLIENT_CERTIFICATE:
            return 'certificate'
        return 'protocol'
    if getattr(exc, 'errno', None) in (errno.ECONNRESET, errno.EPIPE,
                                       errno.ECONNABORTED):
        return 'reset'
    return 'other'


class Stats:
    """The proxy's counters that do not live on a connection or behavior.

    ``closed``: connections closed; ``bytes_up``/``bytes_down``: bytes read
    from clients / from backends by connections already closed;
    ``sent_up``/``sent_down``: bytes written to backends / to clients by
    them (after handlers and toxics: what the destination was given);
    ``failures``: ``{reason: count}`` of backend connect failures;
    ``client_tls_failures``: ``{reason: count}`` of failed client TLS
    handshakes (not those failed on purpose by ``tls_error``);
    ``exceptions``: ``{handler name: count}`` of exceptions raised by
    handlers (not counting "the peer went away" errors); ``picks``:
    ``{(handler name, to_backend): count}`` of behaviors no longer in use;
    ``effects``: ``{(handler name, effect): count}`` of handler calls;
    ``requests``: ``{(handler name, effect): count}``, one per request
    (protocol mode, ``--pick exchange`` or ``connection``): what the pick
    of the exchange did to the request or its response; ``connections``:
    ``{effect: count}`` of closed connections, each counted once for every
    kind of fault it met, or as ``passed`` when it met none;
    ``recent``: the last :data:`RECENT` faults, ``(time, connection
    number, client address, to_backend, handler name, effect, seconds)``.
    """

    __slots__ = ('closed', 'bytes_up', 'bytes_down', 'sent_up', 'sent_down',
                 'failures', 'client_tls_failures',
                 'exceptions', 'exception_count', 'picks', 'behavior',
                 'effects', 'requests', 'connections', 'recent')

    def __init__(self):
        self.closed = 0
        self.bytes_up = 0
        self.bytes_down = 0
        self.sent_up = 0
        self.sent_down = 0
        self.failures = dict.fromkeys(FAILURE_REASONS, 0)
        self.client_tls_failures = dict.fromkeys(HANDSHAKE_REASONS, 0)
        self.exceptions = {}
        self.exception_count = 0
        self.picks = {}
        self.behavior = None   # the behavior whose counts are not folded yet
        self.effects = {}
        self.requests = {}
        self.connections = {}
        self.recent = collections.deque(maxlen=RECENT)

    def connection_closed(self, conn):
        """Fold a closing connection's byte counts and the faults it met
        (``conn.faults``) into the totals."""
        self.closed += 1
        client = conn.client
        self.bytes_up += client.received
        self.sent_down += client.sent
        backend = conn.backend
        if backend is not None:
            self.bytes_down += backend.received
            self.sent_up += backend.sent
        counts = self.connections
        faults = conn.faults
        if faults is None:      # (most connections)
            counts['passed'] = counts.get('passed', 0) + 1
            return
        for effect in faults or _UNTOUCHED:
            counts[effect] = counts.get(effect, 0) + 1

    def late_fault(self, effect, first):
        """A closed connection met *effect* (a handler call on it ended
        after the close); *first*: it was counted as ``passed``."""
        counts = self.connections
        counts[effect] = counts.get(effect, 0) + 1
        if first:
            counts['passed'] -= 1

    def request_done(self, name, effect):
        """Count what the pick of one exchange (handler *name*) did to
        its request and response: *effect*."""
        key = (name, effect)
        self.requests[key] = self.requests.get(key, 0) + 1

    def backend_failed(self, exc):
        """Count one backend connect failure; returns its reason label."""
        reason = failure_reason(exc)
        self.failures[reason] += 1
        return reason

    def client_tls_failed(self, exc):
        """Count one failed client TLS handshake; returns its reason
        label."""
        reason = handshake_reason(exc)
        self.client_tls_failures[reason] += 1
        return reason

    def handler_failed(self, name):
        """Count one exception raised by handler *name*."""
        self.exceptions[name] = self.exceptions.get(name, 0) + 1
        self.exception_count += 1

    def handled(self, conn, to_backend, name, effect, seconds):
        """Count what one call of handler *name* did (*effect*); a fault
        is kept among the recent ones. True when *effect* is a fault."""
        key = (name, effect)
        effects = self.effects
        effects[key] = effects.get(key, 0) + 1
        if effect in NOT_FAULTS:
            return False
        self.recent.append((time.time(), conn.seq, conn.address,
                            to_backend, name, effect, seconds))
        return True

    def track(self, behavior):
        """Make *behavior* the one counted live; fold the previous one's
        pick counts into :attr:`picks` (and zero them, so that a behavior
        put back later is not counted twice)."""
        old = self.behavior
        if old is behavior:
            return
        if old is not None:
            fold_picks(old, self.picks)
        self.behavior = behavior


def fold_picks(behavior, into):
    """Add *behavior*'s pick counts to *into* and zero them."""
    names = behavior.names
    for to_backend in (False, True):
        counts = behavior.picks[to_backend]
        for index, count in enumerate(counts):
            if count:
                key = (names[index], to_backend)
                into[key] = into.get(key, 0) + count
                counts[index] = 0


class Snapshot:
    """All the counters at one moment, added up.

    ``opened``, ``closed``, ``open`` (connections), ``hung``, ``bytes_up``,
    ``bytes_down`` (read from clients, from backends), ``sent_up``,
    ``sent_down`` (written to backends, to clients), ``picks``
    (``{(name, to_backend): count}``, every name of the current behavior
    present), ``failures`` (``{reason: count}``), ``client_tls_failures``
    (``{reason: count}``), ``exceptions`` (``{name: count}``),
    ``behavior`` (its text), ``effects`` (``{(name, effect): count}``,
    one per handler call), ``requests`` (``{(name, effect): count}``, one
    per request, protocol mode), ``connections`` (``{effect: count}``, closed connections by the
    faults they met, ``passed`` for none) and ``recent`` (the last
    faults, oldest first: dicts with ``time``, ``conn``, ``client``,
    ``direction``, ``handler``, ``effect``, ``seconds``).
    """

    __slots__ = ('opened', 'closed', 'open', 'hung', 'bytes_up',
                 'bytes_down', 'sent_up', 'sent_down', 'picks', 'failures',
                 'client_tls_failures', 'exceptions', 'behavior', 'effects',
                 'requests', 'connections', 'recent')

    def __init__(self):
        self.effects, self.requests, self.connections = {}, {}, {}
        self.client_tls_failures = {}
        self.recent = []

    def to_json(self):
        """The snapshot as JSON-able data (for ``--workers`` and
        ``GET /stats``)."""
        data = {name: getattr(self, name) for name in self.__slots__}
        data['picks'] = [[name, to_backend, count] for (name, to_backend),
                         count in sorted(self.picks.items())]
        for field in ('effects', 'requests'):
            data[field] = [[name, effect, count] for (name, effect), count
                           in sorted(getattr(self, field).items())]
        return data

    @classmethod
    def merged(cls, parts):
        """One snapshot adding up the JSON data of several (``to_json``)."""
        snap = cls()
        for name in ('opened', 'closed', 'open', 'hung', 'bytes_up',
                     'bytes_down', 'sent_up', 'sent_down'):
            setattr(snap, name, sum(part.get(name, 0) for part in parts))
        snap.picks, snap.failures, snap.exceptions = {}, {}, {}
        snap.client_tls_failures = {}
        for part in parts:
            for name, to_backend, count in part['picks']:
                key = (name, to_backend)
                snap.picks[key] = snap.picks.get(key, 0) + count
            for field in ('failures', 'client_tls_failures', 'exceptions'):
                total = getattr(snap, field)
                for key, count in part.get(field, {}).items():
                    total[key] = total.get(key, 0) + count
        snap.effects, snap.requests, snap.connections = {}, {}, {}
        recent = []
        for part in parts:
            for field in ('effects', 'requests'):
                total = getattr(snap, field)
                for name, effect, count in part[field]:
                    key = (name, effect)
                    total[key] = total.get(key, 0) + count
            for effect, count in part['connections'].items():
                snap.connections[effect] = \
                    snap.connections.get(effect, 0) + count
            recent.extend(part['recent'])
        recent.sort(key=lambda fault: fault['time'])
        snap.recent = recent[-RECENT:]
        snap.behavior = parts[0]['behavior'] if parts else ''
        return snap

    def requests_by_effect(self):
        """``{effect: requests}``, every handler together."""
        result = {}
        for (_, effect), count in self.requests.items():
            result[effect] = result.get(effect, 0) + count
        return result

    def picks_by_name(self):
        """``{name: picks in both directions}``."""
        result = {}
        for (name, _), count in self.picks.items():
            result[name] = result.get(name, 0) + count
        return result


def snapshot(proxy):
    """A :class:`Snapshot` of *proxy*'s counters, open connections included.

    Runs in the proxy's thread (gevent): nothing changes while it adds up.
    """
    stats = proxy.stats
    behavior = proxy.behavior
    if behavior is not None:
        stats.track(behavior)
    snap = Snapshot()
    snap.opened = proxy.opened
    snap.closed = stats.closed
    snap.open = max(0, snap.opened - snap.closed)
    snap.hung = len(proxy.hung)
    up, down = stats.bytes_up, stats.bytes_down
    sent_up, sent_down = stats.sent_up, stats.sent_down
    for conn in list(proxy.connections):
        if conn.closed:
            continue
        up += conn.client.received
        sent_down += conn.client.sent
        backend = conn.backend
        if backend is not None:
            down += backend.received
            sent_up += backend.sent
    snap.bytes_up, snap.bytes_down = up, down
    snap.sent_up, snap.sent_down = sent_up, sent_down
    picks = dict(stats.picks)
    if behavior is not None:
        names = behavior.names
        for to_backend in (False, True):
            for index, count in enumerate(behavior.picks[to_backend]):
                key = (names[index], to_backend)
                picks[key] = picks.get(key, 0) + count
    snap.picks = picks
    snap.failures = dict(stats.failures)
    snap.client_tls_failures = dict(stats.client_tls_failures)
    snap.exceptions = dict(stats.exceptions)
    snap.behavior = behavior.text if behavior is not None else ''
    snap.effects = dict(stats.effects)
    snap.requests = dict(stats.requests)
    snap.connections = dict(stats.connections)
    snap.recent = [{'time': round(when, 3), 'conn': seq,
                    'client': _peer(address),
                    'direction': 'upstream' if to_backend else 'downstream',
                    'handler': name, 'effect': effect,
                    'seconds': round(seconds, 3)}
                   for when, seq, address, to_backend, name, effect, seconds
                   in stats.recent]
    return snap


def _peer(address):
    if isinstance(address, tuple) and len(address) >= 2:
        return format_hostport(address[:2])
    return str(address)
