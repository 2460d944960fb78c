"""The chaos event log (``--event-log FILE``): what happened to whom, when.

One JSON object per line, in the order things happened:

* ``"event": "open"`` when a client connects: its connection number, its
  address, the backend, the seed and the pick mode in force, the behavior;
* ``"event": "data"`` at each handler pick on a direction (each readable
  event with ``--pick event``, each message in protocol mode; with
  ``--pick exchange`` a request and its response share one pick, and the
  response's line says ``"answer": true``: it is not a pick of its own):
  the direction, the handler picked, the bytes read from the source and the
  ``effect`` (see :data:`EFFECTS`), with ``why`` when it is ``none``;
  handler calls also give ``seconds``, how long the handler held the
  data. The end of stream is not a pick: it makes no line, unless it is
  handed to a handler that acts on it (``slow_close``);
* ``"event": "connect_failed"`` when the backend cannot be reached;
* ``"event": "tls_failed"`` when the client's TLS handshake with the
  proxy fails (``--local-tls-cert``; not when ``tls_error`` fails it);
* ``"event": "close"`` when it ends: bytes each way, duration, and who
  ended it (``client``, ``backend``, ``handler``, ``error`` or ``proxy``);
* ``"event": "behavior"`` when the behavior is changed while running.

Writes are buffered and flushed about once a second (or at every line with
``--event-log-flush``) and when the proxy stops. A write that fails later
(a full disk) is dropped with one warning in the log: the traffic never
waits for the event log. When the log is off, the engine's only cost is
one ``is None`` check per event.

A handler says what its calls do with an ``effect`` class attribute (a
string) or method (``effect(self, to_backend)``), declared in its own
module (see :class:`~vaurien.handlers.BaseHandler`); an object without
one gets ``handled``.
"""
import json
import logging
import sys
import time

from vaurien.config import ConfigError, format_hostport
from vaurien.handlers import get_handlers
from vaurien.handlers.base import WRONG_DIRECTION
from vaurien.stats import NOT_FAULTS

__all__ = ['EventLog', 'open_event_log', 'declared_effect', 'observe_call',
           'observe_and_log', 'log_fault', 'EFFECTS', 'EFFECT_OF_OUTCOME', 'effect_of']

log = logging.getLogger('vaurien')

_monotonic = time.monotonic

#: Seconds between two flushes of the buffered event log.
FLUSH_INTERVAL = 1.0
# Bytes of buffer between the engine and the file.
BUFFER_SIZE = 1 << 16


#: The effects, in the words of the stats, the event log, the report and
#: the dashboard: what a fault did. ``passed`` is untouched (``dummy``);
#: ``none`` is a pick of a fault that did nothing, with why.
EFFECTS = ('delayed', 'throttled', 'errored', 'corrupted', 'cut', 'reset',
           'hung', 'failed', 'handled', 'passed', 'none')

#: What an outcome (the older word, still read from event logs and from
#: handlers that declare ``outcome``) means as an effect: ``closed`` is a
#: cut connection, ``eof`` a pick that met the end of stream.
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

#: Why a call had no effect when nothing but the end of stream went
#: through it (see also :data:`vaurien.handlers.base.WRONG_DIRECTION`).
END_OF_STREAM = 'end of stream'


def effect_of(name, outcome):
    """The effect of an *outcome* (the older word) of handler *name*:
    ``passed`` by another handler than ``dummy`` did nothing (``none``)."""
    if outcome == 'passed' and name != 'dummy':
        return 'none'
    return EFFECT_OF_OUTCOME.get(outcome, outcome)


def _told(described, name, to_backend):
    if callable(described):
        try:
            described = described(to_backend)
        except Exception:   # a handler's bug must not break the counts
            return 'handled', None
    if isinstance(described, tuple):
        return str(described[0]), described[1]
    return str(described), None


def declared_effect(handler, name, to_backend):
    """``(effect, why)``: what a call of *handler* does, as it declares.

    The handler's ``effect`` (a string, or a method called with
    *to_backend* returning a string or ``(effect, why)``; see
    :class:`~vaurien.handlers.BaseHandler`) wins; then an ``outcome`` (the
    older word, translated); an object with neither (a plain callable)
    named like a built-in handler gets that built-in's effect when it is a
    string; else ``handled``.
    """
    described = getattr(handler, 'effect', None)
    if described is not None:
        # _told(described, ...), without its frame (this runs at every
        # handler call).
        if callable(described):
            try:
                described = described(to_backend)
            except Exception:   # a handler's bug must not break the counts
                return 'handled', None
        if described.__class__ is str:
            return described, None
        if isinstance(described, tuple):
            return str(described[0]), described[1]
        return str(described), None
    outcome = getattr(handler, 'outcome', None)
    if outcome is not None:
        effect, why = _told(outcome, name, to_backend)
        return effect_of(name, effect), why
    builtin = getattr(get_handlers().get(name), 'effect', None)
    if isinstance(builtin, str):
        return builtin, None
    return 'handled', None


def observe_call(conn, to_backend, name, handler, at_end=False):
    """Call *handler* through ``conn.call`` and tell what it did:
    ``(how, effect, why, bytes read, seconds)``.

    *at_end*: the call hands the end of stream to the handler of the
    direction's last pick (it declared ``end_of_stream``, the effect of
    such a call); not a pick. The engine overrides what the handler
    declares when it knows better: ``failed`` when it raised, ``reset``
    when a peer went away, ``hung``, ``cut`` when it closed a socket
    and declares no other fault,
    ``none`` (end of stream) when nothing but the end of stream went
    through. The effect is counted in the proxy's stats
    (:meth:`vaurien.stats.Stats.handled`) and, when it is a fault, among
    the connection's faults.
    """
    if conn.readers is None:
        # tcp mode: conn.read_count(to_backend), read off the socket once.
        src = conn.client if to_backend else conn.backend
        before = src.received
        start = _monotonic()
        how = conn.call(to_backend, name, handler)
        seconds = _monotonic() - start
        count = src.received - before
    else:
        before = conn.read_count(to_backend)
        start = _monotonic()
        how = conn.call(to_backend, name, handler)
        seconds = _monotonic() - start
        count = conn.read_count(to_backend) - before
    why = None
    if how == 'failed':
        effect = 'failed'
    elif how == 'error':
        effect, why = 'reset', 'a peer went away'
    else:
        told = conn.told
        if told is not None:
            effect, why = told
        elif at_end:
            effect = getattr(handler, 'end_of_stream', None) or 'none'
        else:
            effect, why = declared_effect(handler, name, to_backend)
        if conn.hung and effect == 'handled':
            effect = 'hung'
        elif how is None:
            pass        # the direction goes on: nothing to correct
        elif how == 'closed' and (effect in NOT_FAULTS or
                                  effect == 'handled'):
            # It closed the connection; a fault it did before (error
            # closing after its error answer) is what it did.
            effect, why = 'cut', None
        elif how == 'eof' and not count and effect not in ('delayed',
                                                           'hung'):
            # Nothing but the end of stream went through the handler.
            effect, why = 'none', END_OF_STREAM
    if effect == 'none' and why is None:
        why = WRONG_DIRECTION
    if conn.proxy.stats.handled(conn, to_backend, name, effect, seconds):
        conn.suffered(effect)
    return how, effect, why, count, seconds


def observe_and_log(conn, to_backend, name, handler, at_end=False):
    """:func:`observe_call`, and one INFO line for a fault
    (``--log-faults``): the proxy chooses one or the other when it is
    made, so that the log costs nothing when it is off."""
    result = observe_call(conn, to_backend, name, handler, at_end)
    effect = result[1]
    if effect not in NOT_FAULTS:
        log_fault(conn, to_backend, name, effect, result[4])
    return result


def log_fault(conn, to_backend, name, effect, seconds):
    """The INFO line of one fault (``--log-faults``)."""
    log.info('fault: proxy %s, connection %d, peer %s, %s, handler %s: '
             '%s (%.3f s)', format_hostport(conn.proxy.address),
             conn.seq, format_hostport(conn.address),
             _DIRECTION_NAMES[to_backend], name, effect, seconds)


_DIRECTIONS = ('"downstream"', '"upstream"')   # indexed by to_backend
_DIRECTION_NAMES = ('downstream', 'upstream')
_now = time.time


class EventLog:
    """Writes the chaos event log of one proxy to *stream* (a text file).

    The proxy calls :meth:`opened`, :meth:`passed`, :meth:`call`,
    :meth:`backend_failed`, :meth:`client_tls_failed`, :meth:`closed` and
    :meth:`behavior_changed`;
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
        self._passes = {}     # handler name -> its pass-through fields
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
            if conn.proxy.name is not None:
                # several proxies in one log: which one
                head = self._heads[conn] = '"proxy":%s,%s' % (
                    json.dumps(conn.proxy.name), head)
        return head

    # -- what the proxy tells ------------------------------------------------

    def opened(self, conn):
        """A client connected (before the backend is reached)."""
        proxy = conn.proxy
        self.write('{"time":%s,"event":"open",%s,"backend":%s,"seed":%d,'
                   '"pick":"%s","behavior":%s}\n'
                   % (self._time(), self._head(conn),
                      json.dumps(format_hostport(proxy.distant)), proxy.seed,
                      proxy.pick,
                      json.dumps(proxy.behavior.text
                                 if proxy.behavior is not None else '')))

    def passed(self, conn, to_backend, name, count, answer=False):
        """A pass-through pick: *count* bytes relayed untouched by the
        engine (``dummy``: ``passed``; a handler aimed at the other
        direction: ``none``). *answer*: a response using its request's
        pick (``"answer":true``, not a pick of its own).

        The most frequent line: the lookups of :meth:`_time`, :meth:`_head`
        and :meth:`_pass` are done inline.
        """
        now = _now()
        second = int(now)
        if second != self._second:
            self._time()
        head = self._heads.get(conn) or self._head(conn)
        quoted, effect = self._passes.get(name) or self._pass(name)
        self.write('{"time":"%s.%03dZ","event":"data",%s,"direction":%s,'
                   '"handler":%s,"bytes":%d,%s%s}\n'
                   % (self._stamp, (now - second) * 1000, head,
                      _DIRECTIONS[to_backend], quoted, count, effect,
                      ',"answer":true' if answer else ''))

    def _pass(self, name):
        """``(quoted name, '"effect":...')`` of a pass-through pick of
        *name*: ``dummy`` passed, any other was aimed elsewhere."""
        if name == 'dummy':
            effect = '"effect":"passed"'
        else:
            effect = '"effect":"none","why":"%s"' % WRONG_DIRECTION
        pair = self._passes[name] = (self._name(name), effect)
        return pair

    def call(self, conn, to_backend, name, handler, at_end=False,
             answer=False):
        """Call a handler (the proxy's ``observe``: :func:`observe_call`)
        and log what it did; returns what ``observe`` does."""
        calls = self._calls
        calls[conn] = calls.get(conn, 0) + 1
        try:
            result = conn.proxy.observe(conn, to_backend, name, handler,
                                        at_end)
        finally:
            left = calls.pop(conn) - 1
            if left:
                calls[conn] = left
        _, effect, why, count, seconds = result
        self.write('{"time":%s,"event":"data",%s,"direction":%s,'
                   '"handler":%s,"bytes":%d,"effect":"%s"%s,'
                   '"seconds":%.3f%s}\n'
                   % (self._time(), self._head(conn), _DIRECTIONS[to_backend],
                      self._name(name), count, effect,
                      ',"why":%s' % json.dumps(why) if why else '', seconds,
                      ',"answer":true' if answer else ''))
        if not left and conn in self._held:
            self._write_close(conn)
        return result

    def backend_failed(self, conn, reason, message):
        """The backend could not be reached for *conn*."""
        self.write('{"time":%s,"event":"connect_failed",%s,"reason":"%s",'
                   '"message":%s}\n'
                   % (self._time(), self._head(conn), reason,
                      json.dumps(message)))

    def client_tls_failed(self, conn, reason, message):
        """The client's TLS handshake on *conn* failed (not by a
        handler)."""
        self.write('{"time":%s,"event":"tls_failed",%s,"reason":"%s",'
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
