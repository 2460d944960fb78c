"""The chaos event log (``--event-log FILE``): what happened to whom, when.

One JSON object per line, in the order things happened:

* ``"event": "open"`` when a client connects: its connection number, its
  address, the backend, the seed and the pick mode in force, the behavior;
* ``"event": "data"`` at each readable event (each pick): the direction,
  the handler picked, the bytes read from the source and the outcome
  (``passed``, ``delayed``, ``errored``, ``reset``, ``closed``, ``hung``,
  ``failed``, or ``eof`` when the source had ended); handler events also
  give ``seconds``, how long the handler held the data;
* ``"event": "connect_failed"`` when the backend cannot be reached;
* ``"event": "close"`` when it ends: bytes each way, duration, and who
  ended it (``client``, ``backend``, ``handler``, ``error`` or ``proxy``);
* ``"event": "behavior"`` when the behavior is changed while running.

Writes are buffered and flushed about once a second (or at every line with
``--event-log-flush``) and when the proxy stops. A write that fails later
(a full disk) is dropped with one warning in the log: the traffic never
waits for the event log. When the log is off, the engine's only cost is
one ``is None`` check per event.

A handler says what its events do with an ``outcome`` class attribute
(a string) or method (``outcome(self, to_backend) -> str``), declared in
its own module (see :class:`~vaurien.handlers.BaseHandler`); an object
without one gets ``handled``.
"""
import json
import logging
import sys
import time

from vaurien.config import ConfigError, format_hostport
from vaurien.handlers import get_handlers

__all__ = ['EventLog', 'open_event_log', 'outcome_of', 'observe_call',
           'EFFECT_OF_OUTCOME', 'effect_of']

log = logging.getLogger('vaurien')

#: Seconds between two flushes of the buffered event log.
FLUSH_INTERVAL = 1.0
# Bytes of buffer between the engine and the file.
BUFFER_SIZE = 1 << 16


def outcome_of(handler, name, to_backend):
    """What an event handled by *handler* did, as the handler describes it.

    The handler's ``outcome`` (a string, or a method called with
    *to_backend*; see :class:`~vaurien.handlers.BaseHandler`) wins; an
    object without one (a plain callable) named like a built-in handler
    gets that built-in's string outcome; else ``'handled'``.
    """
    described = getattr(handler, 'outcome', None)
    if described is None:
        builtin = get_handlers().get(name)
        described = getattr(builtin, 'outcome', None)
        if not isinstance(described, str):
            return 'handled'
    if isinstance(described, str):
        return described
    if callable(described):
        try:
            return str(described(to_backend))
        except Exception:   # a handler's bug must not break the log
            return 'handled'
    return 'handled'


#: What an outcome means as an effect (what the fault did, in the words of
#: the report and the dashboard): ``closed`` is a cut connection, ``eof``
#: a pick that met the end of stream and did nothing (``none``).
EFFECT_OF_OUTCOME = {
    'passed': 'passed',
    'eof': 'none',
    'delayed': 'delayed',
    'errored': 'errored',
    'reset': 'reset',
    'closed': 'cut',
    'hung': 'hung',
    'failed': 'failed',
    'handled': 'handled',
}


def effect_of(name, outcome):
    """The effect of a pick of handler *name* whose outcome was
    *outcome*: ``passed`` by another handler than ``dummy`` did nothing
    (``none``)."""
    if outcome == 'passed' and name != 'dummy':
        return 'none'
    return EFFECT_OF_OUTCOME.get(outcome, outcome)


def observe_call(conn, to_backend, name, handler):
    """Call *handler* through ``conn.call`` and tell what it did:
    ``(how, outcome, bytes read, seconds)``; the effect is counted in the
    proxy's stats (:meth:`vaurien.stats.Stats.handled`)."""
    src = conn.client if to_backend else conn.backend
    before = src.received
    stats = conn.proxy.stats
    start = time.monotonic()
    how = conn.call(to_backend, name, handler)
    seconds = time.monotonic() - start
    count = src.received - before
    if how == 'failed':
        outcome = 'failed'
    elif how == 'error':
        outcome = 'reset'
    else:
        outcome = outcome_of(handler, name, to_backend)
        if conn.hung and outcome == 'handled':
            outcome = 'hung'
        elif how == 'closed' and outcome not in ('reset', 'hung'):
            outcome = 'closed'
        elif how == 'eof' and not count and outcome != 'delayed':
            # Nothing but the end of stream went through the handler.
            outcome = 'eof'
    stats.handled(conn, to_backend, name, effect_of(name, outcome), seconds)
    return how, outcome, count, seconds


_DIRECTIONS = ('"downstream"', '"upstream"')   # indexed by to_backend
_now = time.time


class EventLog:
    """Writes the chaos event log of one proxy to *stream* (a text file).

    The proxy calls :meth:`opened`, :meth:`passed`, :meth:`call`,
    :meth:`backend_failed`, :meth:`closed` and :meth:`behavior_changed`;
    :meth:`close` flushes and closes (not for standard output).
    """

    def __init__(self, stream, proxy=None, flush=False, owned=True):
        self.stream = stream
        self.proxy = proxy
        self.flush_each = flush
        self.owned = owned
        self.failed = False
        self._shut = False
        self._names = {}      # handler name -> its JSON string
        self._heads = {}      # connection -> '"conn":N,"client":"..."'
        # Handler calls under way per connection, and the close lines held
        # until they end: a connection's close line is always its last.
        self._calls = {}
        self._held = {}
        self._second = None
        self._stamp = ''
        self._timer = None

    # -- writing -------------------------------------------------------------

    def _time(self):
        """``"2026-11-25T08:01:02.123Z"``; the date part is made once a
        second."""
        now = time.time()
        second = int(now)
        if second != self._second:
            self._second = second
            self._stamp = time.strftime('%Y-%m-%dT%H:%M:%S',
                                        time.gmtime(second))
        return '"%s.%03dZ"' % (self._stamp, int((now - second) * 1000))

    def write(self, line):
        """Write one line; a failure (full disk) warns once, never raises."""
        if self._shut:     # a handler finishing after the proxy stopped
            return
        try:
            self.stream.write(line)
            if self.flush_each:
                self.stream.flush()
        except (OSError, ValueError) as exc:
            self._failed(exc)

    def _failed(self, exc):
        if not self.failed:
            self.failed = True
            log.warning('event log: cannot write (%s); events are dropped '
                        'from now on, the traffic goes on',
                        getattr(exc, 'strerror', None) or exc)

    def flush(self):
        """Flush what is buffered (never raises)."""
        if self._shut:
            return
        try:
            self.stream.flush()
        except (OSError, ValueError) as exc:
            self._failed(exc)

    def start(self, loop=None):
        """Flush about every :data:`FLUSH_INTERVAL` seconds from now on."""
        if self.flush_each or self._timer is not None:
            return
        if loop is None:
            import gevent
            loop = gevent.get_hub().loop
        timer = self._timer = loop.timer(FLUSH_INTERVAL, FLUSH_INTERVAL)
        timer.ref = False    # the timer alone does not keep the loop alive
        timer.start(self.flush)

    def close(self):
        """Write the close lines still held (handlers that did not return),
        stop the timer, flush, and close the file (unless not ours)."""
        for conn in list(self._held):
            self._write_close(conn)
        if self._timer is not None:
            self._timer.stop()
            self._timer.close()
            self._timer = None
        self.flush()
        self._shut = True
        if self.owned:
            try:
                self.stream.close()
            except (OSError, ValueError):
                pass

    def _name(self, name):
        text = self._names.get(name)
        if text is None:
            text = self._names[name] = json.dumps(name)
        return text

    def _head(self, conn):
        head = self._heads.get(conn)
        if head is None:
            head = self._heads[conn] = '"conn":%d,"client":%s' % (
                conn.seq, json.dumps(format_hostport(conn.address)))
        return head

    # -- what the proxy tells ------------------------------------------------

    def opened(self, conn):
        """A client connected (before the backend is reached)."""
        proxy = conn.proxy
        self.write('{"time":%s,"event":"open",%s,"backend":%s,"seed":%d,'
                   '"pick":"%s","behavior":%s}\n'
                   % (self._time(), self._head(conn),
                      json.dumps(format_hostport(proxy.distant)), proxy.seed,
                      'connection' if proxy.pick_per_connection else 'event',
                      json.dumps(proxy.behavior.text
                                 if proxy.behavior is not None else '')))

    def passed(self, conn, to_backend, name, count):
        """A pass-through event: *count* bytes relayed (0: end of stream).

        The most frequent line: the lookups of :meth:`_time`, :meth:`_head`
        and :meth:`_name` are done inline.
        """
        now = _now()
        second = int(now)
        if second != self._second:
            self._time()
        head = self._heads.get(conn) or self._head(conn)
        quoted = self._names.get(name) or self._name(name)
        self.write('{"time":"%s.%03dZ","event":"data",%s,"direction":%s,'
                   '"handler":%s,"bytes":%d,"outcome":"%s"}\n'
                   % (self._stamp, (now - second) * 1000, head,
                      _DIRECTIONS[to_backend], quoted, count,
                      'passed' if count else 'eof'))

    def call(self, conn, to_backend, name, handler):
        """Call a handler (:func:`observe_call`) and log what it did."""
        calls = self._calls
        calls[conn] = calls.get(conn, 0) + 1
        try:
            how, outcome, count, seconds = observe_call(conn, to_backend,
                                                        name, handler)
        finally:
            left = calls.pop(conn) - 1
            if left:
                calls[conn] = left
        self.write('{"time":%s,"event":"data",%s,"direction":%s,'
                   '"handler":%s,"bytes":%d,"outcome":%s,"seconds":%.3f}\n'
                   % (self._time(), self._head(conn), _DIRECTIONS[to_backend],
                      self._name(name), count, json.dumps(outcome), seconds))
        if not left and conn in self._held:
            self._write_close(conn)
        return how

    def backend_failed(self, conn, reason, message):
        """The backend could not be reached for *conn*."""
        self.write('{"time":%s,"event":"connect_failed",%s,"reason":"%s",'
                   '"message":%s}\n'
                   % (self._time(), self._head(conn), reason,
                      json.dumps(message)))

    def closed(self, conn):
        """*conn* ended: bytes each way, duration, who ended it.

        While a handler call on *conn* is still under way (a handler that
        closed the connection itself, or one sleeping on the other
        direction), the line is held and written after that call's own
        line, so that ``close`` is always the connection's last line.
        """
        duration = time.monotonic() - conn.started
        backend = conn.backend
        self._held[conn] = (
            ',"event":"close",%s,"bytes_up":%d,"bytes_down":%d,'
            '"duration":%.3f,"closed_by":"%s"}\n'
            % (self._head(conn), conn.client.received,
               backend.received if backend is not None else 0,
               duration, conn.closed_by or 'proxy'))
        if conn not in self._calls:
            self._write_close(conn)

    def _write_close(self, conn):
        self.write('{"time":%s%s' % (self._time(), self._held.pop(conn)))
        self._heads.pop(conn, None)

    def behavior_changed(self, behavior):
        """The behavior was changed while running (control API)."""
        self.write('{"time":%s,"event":"behavior","behavior":%s}\n'
                   % (self._time(), json.dumps(behavior.text)))


def open_event_log(path, flush=False):
    """An :class:`EventLog` writing to *path* (``-``: standard output).

    Raises ConfigError (one line) when the file cannot be opened for
    appending.
    """
    if path == '-':
        return EventLog(sys.stdout, flush=flush, owned=False)
    try:
        stream = open(path, 'a', encoding='utf-8', buffering=BUFFER_SIZE)
    except OSError as exc:
        reason = (exc.strerror or str(exc)).lower()
        raise ConfigError('cannot write the event log to %s: %s'
                          % (path, reason)) from None
    return EventLog(stream, flush=flush)
