"""The engine: a gevent StreamServer relaying each client to the backend.

Each accepted client gets its own fresh backend connection. The two
directions of a connection are serviced independently (a :class:`_Flow`
each): a handler sleeping on a request does not hold back a response
already on its way. A handler is picked from the current
:class:`~vaurien.behavior.Behavior` and called as
``handler(client_sock, backend_sock, to_backend)`` in a worker greenlet;
``dummy`` picks are relayed by the engine itself, right in the event loop.
When a pick is made (``--pick``):

* ``event`` (tcp's default): at each readable event of a direction (each
  message in protocol mode), each direction on its own;
* ``exchange`` (protocol mode's default): once per request; its response
  (the next unanswered one, in order) gets the same handler, so
  ``20:delay`` delays 20% of the requests and ``5:blackout`` cuts 5% of
  the exchanges. A message no request asked for (a greeting, a push) is a
  pick of its own;
* ``connection``: once when the connection opens, for its whole life.

An end of stream is never a pick: the engine finds it itself (before it
picks) and ends the direction, unless the direction's last pick was a
handler that acts on an end of stream (``end_of_stream``, like
``slow_close``): it is then handed to that handler. A side that speaks TLS
(:mod:`vaurien.endpoints`) does its handshake in a greenlet of its own
first; then handlers and protocols see its plaintext, and its flow reads
and writes through the TLS channel.

What the engine guarantees around the handler contract:

* a falsy return value (other than ``None``) ends that direction: the other
  side's write is half-closed and the opposite direction keeps flowing
  until it ends too, so no response is lost to a client's half-close;
* end of stream on the source ends the direction whatever the handler
  returned, also when the handler read the socket directly;
* a handler that closes a socket ends the whole connection;
* an exception in a handler ends that connection only, logged with the
  handler's name; the proxy keeps serving;
* both sockets are always closed in the end.
"""
import collections
import errno
import fcntl
import logging
import os
import random
import resource
import socket as _socket
import ssl
import struct
from time import monotonic as _monotonic

import gevent
from gevent.event import Event
from greenlet import getcurrent

from vaurien import _gevent
from vaurien._gevent import LoopServer, Socket

from vaurien.behavior import (PASS, Behavior, connection_random,
                              direction_random)
from vaurien.config import ConfigError, format_hostport
from vaurien.endpoints import (HandshakeTimeout, bind, bound_file,
                               listen_address, lookup, resolve, tls_reason,
                               unbind)
from vaurien.events import log_fault, observe_and_log, observe_call
from vaurien.stats import NOT_FAULTS, Stats
from vaurien.toxics import ToxicSet
from vaurien.toxics.link import Link

__all__ = ['Proxy', 'Connection', 'Socket', 'bind', 'resolve', 'PICKS']

#: When a handler is picked (``--pick``).
PICKS = ('event', 'exchange', 'connection')

log = logging.getLogger('vaurien')

_QUIET_ERRNOS = {errno.EBADF, errno.ENOTCONN, errno.EPIPE, errno.ECONNRESET,
                 errno.ECONNABORTED, errno.ESHUTDOWN, errno.ETIMEDOUT}
_IN_PROGRESS = {errno.EINPROGRESS, errno.EWOULDBLOCK, errno.EAGAIN,
                errno.EALREADY}
# Buffers kept for reuse; beyond this many idle ones, they are dropped.
_POOL_MAX = 64
# Seconds new clients wait in the backlog after descriptors ran out.
_EXHAUSTED_PAUSE = 0.1
# SO_LINGER on, 0 seconds: close() sends a reset (RST), not a FIN.
_LINGER_RESET = struct.pack('ii', 1, 0)


def descriptor_reserve(limit):
    """Descriptors kept out of the connections' share of *limit* (the
    control API, its clients, the log, the event log, resolvers...)."""
    return max(64, limit // 10)


def default_max_connections():
    """``--max-connections auto``: what the descriptor limit allows, two
    descriptors a connection, once :func:`descriptor_reserve` is kept."""
    limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if limit == resource.RLIM_INFINITY or limit > 1 << 24:
        limit = 1 << 24
    return max(1, (limit - descriptor_reserve(limit)) // 2)

# Zero-copy pass-through (Linux, Python 3.10+): a tcp-mode direction that
# carries bulk data moves it socket -> pipe -> socket with splice(2), so
# the bytes never enter the process. None where splice is not available.
_splice = getattr(os, 'splice', None)
_SPLICE_FLAGS = (getattr(os, 'SPLICE_F_MOVE', 0)
                 | getattr(os, 'SPLICE_F_NONBLOCK', 0))
_PIPE_SIZE = 65536
_F_SETPIPE_SZ = getattr(fcntl, 'F_SETPIPE_SZ', 1031)


def _quiet(exc):
    """True for the errors that just mean "the peer went away"."""
    return isinstance(exc, OSError) and (
        isinstance(exc, ConnectionError) or exc.errno in _QUIET_ERRNOS
        or isinstance(exc, _socket.timeout))


class Connection:
    """One proxied client: its two sockets and its per-connection state.

    Handlers reach it through ``sock.conn`` (or ``BaseHandler.connection``)
    for what belongs to one connection: its random generator, its sequence
    number, whether it is hung, and each handler's state on it
    (:meth:`handler_state`).

    In tcp mode the connection runs on event-loop callbacks: a pass-through
    event is a read and a send done right in the loop, and only a handler
    call gets a greenlet of its own (handlers may block). In protocol mode
    each direction is a greenlet reading whole messages.
    """

    __slots__ = ('proxy', 'seq', 'client', 'backend', 'address', 'hung',
                 'state', 'readers', 'behavior', 'index', 'flows', '_done',
                 '_closed', '_hrng', '_timer', '_addresses', 'closed_by',
                 'started', 'seen', 'seen_at', 'exchanges', 'faults', 'told',
                 'lent',
                 '__weakref__')

    def __init__(self, proxy, seq, client, address):
        self.proxy = proxy
        self.seq = seq
        self.client = client
        self.backend = None
        self.address = address
        self.hung = False
        self.state = None       # free for handlers: a dict when they need one
        self.readers = None     # protocol mode: (backend reader, client reader)
        self.behavior = None    # --pick connection: the behavior picked from
        self.index = 0          # ... and the index of the pick in it
        self.flows = ()         # tcp mode: the two _Flow objects
        self._done = 0
        self._closed = False
        self._hrng = None
        self._timer = None
        self._addresses = None
        # Who ended the connection first: 'client', 'backend', 'handler',
        # 'error' or 'proxy' (for the event log).
        self.closed_by = None
        self.started = _monotonic()     # for the duration in the event log
        # Protocol mode, unless --pick event: the exchanges whose response
        # has not been relayed yet, oldest first (a deque of _Exchange).
        self.exchanges = None
        self.faults = None      # the kinds of fault met (a set, once one is)
        self.told = None        # (effect, why) a handler call told, if any
        self.seen = 0           # --idle-timeout: bytes read when last swept
        self.seen_at = 0.0      # ... and when they last changed
        # tcp mode: a handler call was given the sockets (it, or what it
        # started, may still use them and their ``conn`` after the close).
        self.lent = False
        client.conn = self

    # -- what handlers use ----------------------------------------------------

    def read(self, to_backend, size=None):
        """Read from the source of a direction (``b''`` at end of stream).

        In protocol mode this is one whole message.
        """
        readers = self.readers
        if readers is not None:
            return readers[to_backend].read(size)
        sock = self.client if to_backend else self.backend
        return sock.recv(size or self.proxy.bufsize)

    def read_count(self, to_backend):
        """Bytes read so far from the source of a direction, by handlers
        and the engine: in protocol mode, the bytes of the messages handed
        out (a message may be buffered before a handler reads it)."""
        readers = self.readers
        if readers is not None:
            return readers[to_backend].taken
        return (self.client if to_backend else self.backend).received

    @property
    def closed(self):
        """True once the connection is closed (both sockets)."""
        return self._closed

    @property
    def protocol_mode(self):
        """True when a protocol (``--protocol``) cuts the traffic into
        messages."""
        return self.readers is not None

    def error_reply(self, rng):
        """Protocol mode: ``(bytes, close)``, the protocol's error to send
        the client instead of the backend's last response; None when that
        response cannot be replaced or in tcp mode. *rng* is the handler's
        random generator."""
        readers = self.readers
        if readers is None:
            return None
        return readers[False].error_reply(rng)

    def handler_state(self, handler):
        """The dict private to *handler* on this connection (made when
        first asked for; gone with the connection)."""
        states = self.state
        if states is None:
            states = self.state = {}
        state = states.get(handler)
        if state is None:
            state = states[handler] = {}
        return state

    def handler_random(self):
        """This connection's generator for handlers' own random choices."""
        rng = self._hrng
        if rng is None:
            rng = self._hrng = random.Random(
                (self.proxy.seed << 64) | (self.seq << 2) | 2)
        return rng

    def tell(self, effect, why=None):
        """What the handler call under way did, when it differs from what
        the handler declares (see ``BaseHandler.tell_effect``)."""
        self.told = (effect, why)

    def suffered(self, effect):
        """Note a fault (an effect) met by this connection; each kind is
        counted once per connection when it closes (or at once, when the
        handler call that did it returned after the close)."""
        faults = self.faults
        if faults is None:
            faults = self.faults = set()
        elif effect in faults:
            return
        faults.add(effect)
        if self._closed:
            self.proxy.stats.late_fault(effect, len(faults) == 1)

    def hang(self):
        """Mark the connection hung: it is closed as soon as a side ends,
        or when the handler is changed through the control API."""
        if not self.hung:
            self.hung = True
            self.proxy.hung.add(self)

    # -- connecting to the backend (in the loop, no greenlet) ---------------------

    def connect(self, addresses, index=0):
        """Start a non-blocking connect to ``addresses[index]``."""
        self._addresses = addresses
        family, sockaddr = addresses[index]
        try:
            sock = self.proxy.backend_socket(family)
        except OSError as exc:
            if exc.errno in _gevent.EXHAUSTED:
                self.proxy.out_of_descriptors()
                self.close('error')
                return
            self._connect_failed(exc)
            return
        self.backend = sock
        sock.conn = self
        raw = _gevent.raw(sock)
        if family != _socket.AF_UNIX:
            # (Before the connect: the same for the connection, and no
            # second look at the socket once connected.)
            _nodelay(raw)
        connect_ex = raw.connect_ex
        err = connect_ex(sockaddr)
        if err in _IN_PROGRESS:
            # A backend on this host has nearly always answered by the time
            # connect() returns: asking once more costs one system call,
            # waiting costs a timer, a watcher and a turn of the loop.
            err = connect_ex(sockaddr)
            if err == errno.EISCONN:
                err = 0
        if err == 0:
            self._connected(index)
        elif err in _IN_PROGRESS:
            timer = self._timer = self.proxy.loop.timer(self.proxy.timeout)
            timer.start(self._connect_timed_out)
            _gevent.write_watcher(sock).start(self._connect_done, index)
        else:
            self._next_address(index, OSError(err, _strerror(err)))

    def _connect_done(self, index):
        sock = self.backend
        _gevent.write_watcher(sock).stop()
        self._stop_timer()
        if self._closed:
            return
        err = sock.getsockopt(_socket.SOL_SOCKET, _socket.SO_ERROR)
        if err:
            self._next_address(index, OSError(err, _strerror(err)))
        else:
            self._connected(index)

    def _connect_timed_out(self):
        self._stop_timer()
        if self._closed:
            return
        _gevent.write_watcher(self.backend).stop()
        self.proxy._resolved = None
        self._connect_failed(_socket.timeout('timed out'))

    def _stop_timer(self):
        timer = self._timer
        if timer is not None:
            self._timer = None
            timer.stop()
            timer.close()

    def _next_address(self, index, exc):
        self.backend.close()
        self.backend = None
        if index + 1 < len(self._addresses):
            self.connect(self._addresses, index + 1)
        else:
            self.proxy._resolved = None
            self._connect_failed(exc)

    def _connect_failed(self, exc):
        self.proxy._backend_failed(self, exc)
        self.close('backend')

    def _connected(self, index):
        self._addresses = None
        backend = self.backend
        if backend.tls is not None:
            gevent.spawn_raw(self._tls_connect)
            return
        self._start()

    def _tls_connect(self):
        """In a greenlet: the TLS handshake with the backend, then relay."""
        try:
            self.backend.do_handshake(self.proxy.timeout)
        except OSError as exc:
            if not self._closed:
                self._connect_failed(exc)
            return
        if not self._closed:
            self._start()

    def _start(self):
        """Both sides are ready: start relaying."""
        proxy = self.proxy
        client, backend = self.client, self.backend
        up, down = _gevent.relay_ends(client, backend)
        # The client's OS socket: its family is a plain int (the gevent
        # socket's property makes an enum member each time), its
        # setsockopt the gevent socket's without a Python frame.
        client_raw = up[2]
        if client_raw.family != _socket.AF_UNIX:
            _nodelay(client_raw)
        if proxy.pick_per_connection and self.behavior is None:
            self._pick_connection(proxy.behavior)
        protocol = proxy.protocol
        client_tls, backend_tls = client.tls, backend.tls
        if client_tls is None and backend_tls is None:
            self.flows = (_Flow(self, False, down), _Flow(self, True, up))
        else:
            self.flows = (_flow(self, False, down, backend_tls, client_tls),
                          _flow(self, True, up, client_tls, backend_tls))
        if proxy.toxics.active:
            self.use_toxics()
        if protocol is None:
            for flow in self.flows:
                flow.arm_read()
            return
        self.readers = (protocol.reader(self, False, backend),
                        protocol.reader(self, True, client))
        if not proxy.pick_per_event:
            self.exchanges = collections.deque()
        gevent.spawn_raw(self._relay, False)
        gevent.spawn_raw(self._relay, True)

    def use_toxics(self):
        """Send each direction whose stream has toxics through them (from
        the next read on); a direction already through them stays so."""
        toxics = self.proxy.toxics
        for flow in self.flows:
            if (flow.link is None and not flow.src.eof
                    and toxics.chain(flow.to_backend)):
                flow.start_link()

    def throw(self, *exc_info):
        """gevent's way of saying a socket we watch was closed: end."""
        self.close('handler')

    def reset(self):
        """Close both sockets with a reset (RST) instead of a FIN, so that
        each peer can tell a cut from a complete answer (shutdown)."""
        for sock in (self.client, self.backend):
            if sock is not None:
                try:
                    sock.setsockopt(_socket.SOL_SOCKET, _socket.SO_LINGER,
                                    _LINGER_RESET)
                except OSError:
                    pass
        self.close('proxy')

    # -- picking and calling handlers ---------------------------------------

    def _pick_connection(self, behavior):
        """--pick connection: the one pick (counted once, upstream)."""
        self.behavior = behavior
        self.index = behavior.index(
            connection_random(self.proxy.seed, self.seq))
        behavior.picks[True][self.index] += 1

    def call(self, to_backend, name, handler):
        """Call *handler* for one event; None to go on, else how it ended:
        ``'eof'``, ``'closed'`` (a socket was closed), ``'failed'`` (the
        handler raised: counted and logged) or ``'error'`` (a peer went
        away while it ran)."""
        client, backend = self.client, self.backend
        src = client if to_backend else backend
        self.told = None
        try:
            reads = src.reads
            result = handler(client, backend, to_backend)
            if client.closed or backend.closed:
                return 'closed'
            if src.eof or (result is not None and not result):
                return 'eof'
            if src.reads == reads and src.at_eof():
                # A message already buffered by a protocol reader is not
                # lost to a peek that sees the socket's end of stream.
                readers = self.readers
                if readers is None or not readers[to_backend].pending:
                    return 'eof'
            return None
        except OSError as exc:
            if not _quiet(exc) and not self._closed:
                self.proxy.stats.handler_failed(name)
                log.error('handler %r failed on connection %d (%s): %s',
                          name, self.seq, _direction(to_backend), exc,
                          exc_info=True)
                return 'failed'
        except gevent.GreenletExit:
            pass
        except (Exception, SystemExit) as exc:
            # SystemExit too: a handler calling sys.exit() must not stop
            # the whole proxy, only its own connection.
            self.proxy.stats.handler_failed(name)
            log.error('handler %r failed on connection %d (%s): %s: %s',
                      name, self.seq, _direction(to_backend),
                      type(exc).__name__, exc, exc_info=True)
            return 'failed'
        return 'error'

    def _relay(self, to_backend):
        """Protocol mode: one direction as a greenlet, message by message.

        With ``--pick exchange`` (or ``connection``) a request opens an
        exchange (its pick) and the response answering it uses that pick
        (the oldest unanswered exchange: requests and responses pair up in
        order); a message no request asked for is a pick of its own, as is
        every message with ``--pick event``.
        """
        client, backend = self.client, self.backend
        dst = backend if to_backend else client
        proxy = self.proxy
        reader = self.readers[to_backend]
        flow = self.flows[to_backend]      # for its picks; never armed
        exchanges = self.exchanges
        how = 'eof'
        # Pass-through messages that were already whole in the buffer
        # (pipelined requests, a burst of answers) are gathered here, up to
        # --bufsize bytes, and go with one send before anything else
        # happens on this direction: a wait for more bytes, a handler call,
        # the end. Each message still has its own pick and event.
        batch = bytearray()
        bufsize = proxy.bufsize
        try:
            while True:
                link = flow.link
                if link is not None:
                    if batch:       # what passed before goes first
                        dst.sendall(batch)
                        batch.clear()
                    # Through the toxics: whole messages to the link.
                    message = reader.read()
                    if not message:
                        link.feed_eof()
                        return
                    flow.feed_link(message)
                    if reader.streaming:
                        # Longer than --max-message: its rest follows,
                        # read at the pace the link takes it.
                        reader.finish(flow.feed_link)
                    continue
                # The end of stream is found here, before any pick (one
                # receive into the reader's buffer, which the next message
                # needs anyway): it is never a pick.
                if batch and not reader.pending:
                    # What passed goes before any wait for more bytes.
                    dst.sendall(batch)
                    batch.clear()
                if not reader.fill():
                    how = flow.at_end()
                    break
                exchange = None
                answer = False      # the message uses its request's pick
                if to_backend and exchanges is not None:
                    # A request: an exchange, one pick.
                    behavior, index = flow.draw()
                    exchange = self._open_exchange(behavior, index)
                elif exchanges:
                    # Its response: the pick of the request.
                    exchange = exchanges[0]
                    behavior, index = exchange.behavior, exchange.index
                    answer = True
                else:
                    # --pick event, or a message no request asked for (a
                    # greeting, a push): a pick of its own.
                    behavior, index = flow.draw()
                    if self.behavior is None:
                        behavior.picks[to_backend][index] += 1
                pair = flow.last = behavior.tables[to_backend][index]
                name, handler = pair
                if handler is PASS:
                    if reader.pending and len(batch) < bufsize:
                        data = reader.read()
                        count = len(data)
                        batch += data
                        if reader.streaming:
                            # Longer than --max-message after all: the
                            # batch goes, then the rest of this message.
                            dst.sendall(batch)
                            batch.clear()
                            count += reader.finish_counted(dst.sendall)
                    else:
                        if batch:
                            dst.sendall(batch)
                            batch.clear()
                        # One whole message; a huge one streams through.
                        count = reader.relay(dst)
                    events = proxy.events
                    if events is not None:
                        events.passed(self, to_backend, name, count,
                                      answer)
                    if exchange is not None:
                        self._exchange_done(exchange, 'passed'
                                            if name == 'dummy' else 'none',
                                            reader)
                    if not count:
                        break
                    continue
                if batch:
                    dst.sendall(batch)
                    batch.clear()
                if exchange is not None:
                    exchange.busy = True
                try:
                    sent = dst.sent
                    how, effect = flow.observe(name, handler,
                                               answer=answer)[:2]
                    if how is None and reader.streaming and \
                            not self._closed:
                        # A message longer than --max-message: the handler
                        # had its head. The rest follows it at the pace dst
                        # takes it, or is dropped if the handler sent
                        # nothing on.
                        reader.finish(dst.sendall if dst.sent != sent
                                      else None)
                finally:
                    if exchange is not None:
                        exchange.busy = False
                if exchange is not None:
                    # (After the rest of a long message: its info is known.)
                    self._exchange_done(exchange, effect, reader)
                if how is not None:
                    break
            if batch:
                dst.sendall(batch)
        except OSError:
            how = 'error'
        except gevent.GreenletExit:
            how = 'error'
        except Exception as exc:
            how = 'error'
            log.error('protocol reader failed on connection %d (%s): %s: %s',
                      self.seq, _direction(to_backend), type(exc).__name__,
                      exc, exc_info=True)
        self.direction_ended(to_backend, how or 'eof')

    def _open_exchange(self, behavior, index):
        """A request picked *index* of *behavior*: a new exchange, counted
        as a pick (with --pick connection, the connection's pick was)."""
        exchanges = self.exchanges
        if len(exchanges) >= _MAX_EXCHANGES:
            # Requests no response answers (memcache's noreply): the
            # oldest one is over.
            exchanges.popleft().note(self.proxy.stats, None, True)
        if self.behavior is None:
            behavior.picks[True][index] += 1
        exchange = _Exchange(behavior, index)
        exchanges.append(exchange)
        return exchange

    def _exchange_done(self, exchange, effect, reader):
        """One side of *exchange* is through, with *effect* (*reader*:
        the side's, whose ``last`` is the message's info). The response
        ends the exchange and takes it off the queue (its last response:
        an HTTP 1xx is followed by another), as does a request that gets
        no response (memcache's noreply), or a closed connection."""
        protocol = reader.protocol
        if reader.to_backend:
            over = not protocol.expects_response(reader.last)
        else:
            over = protocol.final_response(reader.last)
        exchange.note(self.proxy.stats, effect, over or self._closed)
        if over:
            exchanges = self.exchanges
            if exchanges and exchanges[0] is exchange:
                exchanges.popleft()
            elif exchange in exchanges:
                exchanges.remove(exchange)

    # -- ending -------------------------------------------------------------------

    def direction_ended(self, to_backend, how):
        """One direction is over: half-close, or close all when both are."""
        if how != 'eof':
            self.close(_ENDED_BY.get(how, 'error'))
            return
        if self.closed_by is None:
            self.closed_by = _SIDES[to_backend]
        if self.hung or self._closed:
            self.close()
            return
        self._done += 1
        dst = self.backend if to_backend else self.client
        if self._done >= 2:
            if dst.tls is not None:
                # A TLS peer gets its close_notify (a clean end) first.
                try:
                    dst.shutdown(_socket.SHUT_WR)
                except OSError:
                    pass
            self.close()
            return
        try:
            dst.shutdown(_socket.SHUT_WR)
        except OSError:
            self.close()

    def close(self, by='proxy'):
        """Close both sockets (once); whatever waits on them wakes and ends.

        *by* says who ended the connection (the first reason given wins):
        ``'client'``, ``'backend'``, ``'handler'``, ``'error'`` or
        ``'proxy'``.
        """
        if self._closed:
            return
        self._closed = True
        if self.closed_by is None:
            self.closed_by = by
        proxy = self.proxy
        proxy.connections.discard(self)
        if self.hung:
            proxy.hung.discard(self)
        if proxy.paused or proxy.draining is not None:
            proxy.connection_gone()
        if self._timer is not None:     # (connecting)
            self._stop_timer()
        flows = self.flows
        for flow in flows:
            flow.disarm()
        if flows and self.readers is None:
            # tcp mode: nothing reads the flows after the close. Dropping
            # them frees them (their watchers, buffers, bound methods) at
            # once; kept, they would wait for the garbage collector, as
            # the connection and its flows refer to each other.
            self.flows = ()
            if not self.lent and flows[0].link is None \
                    and flows[1].link is None:
                # Only the engine ever had the sockets: none will read
                # their ``conn`` again, and the connection and its
                # sockets, no longer a cycle, are freed with it.
                self.client.conn = self.backend.conn = None
        for sock in (self.client, self.backend):
            if sock is not None:
                try:
                    sock.close()
                except OSError:
                    pass
        # Counted and logged once the sockets are closed: whatever happens
        # here, no descriptor outlives its connection. An exchange whose
        # handler call is under way is counted when that call returns.
        exchanges = self.exchanges
        if exchanges:
            for exchange in exchanges:
                if not exchange.busy:
                    exchange.note(proxy.stats, None, True)
        proxy.stats.connection_closed(self)
        if proxy.events is not None:
            proxy.events.closed(self)


class _Exchange:
    """A request and its response, in protocol mode (``--pick exchange``
    or ``connection``): one pick, and one effect counted per request
    (:meth:`vaurien.stats.Stats.request_done`)."""

    __slots__ = ('behavior', 'index', 'effect', 'settled', 'busy')

    def __init__(self, behavior, index):
        self.behavior = behavior
        self.index = index
        self.effect = None      # what was done so far: None, passed, none
        self.settled = False    # counted
        self.busy = False       # a handler call on it is under way

    def note(self, stats, effect, final):
        """One side did *effect* (None: nothing more will be done). The
        exchange is counted once: at its first fault, or when it is over
        (*final*): ``passed`` when both sides were relayed untouched by
        ``dummy``, else ``none``."""
        if self.settled:
            return
        if effect is not None and effect not in NOT_FAULTS:
            final = True
        elif effect is None or self.effect == 'none':
            effect = self.effect or 'none'
        if final:
            self.settled = True
            stats.request_done(self.behavior.names[self.index], effect)
        else:
            self.effect = effect


class _Flow:
    """One direction of a tcp-mode connection, driven by loop callbacks.

    At each readable event of the source a handler is picked (unless the
    event is the end of stream). A pass-through is done right here, in the
    loop: one ``recv_into`` into a borrowed buffer and one ``send``; only
    when the destination cannot take it all does the flow stop reading and
    wait for the destination to be writable (back-pressure). Any other
    handler runs in a greenlet of its own, with this flow's reading
    stopped until it returns. In protocol mode a flow only draws the
    picks of a relay greenlet (:meth:`Connection._relay`).

    Once a pass-through read fills a whole buffer (bulk data), the flow
    gets a pipe of its own and its later pass-throughs are two splice(2)
    calls, socket -> pipe -> socket, with no copy into the process (see
    :meth:`splice`). Everything else stays as it was: one pick per event,
    at most ``--bufsize`` bytes per event, the byte counts, back-pressure
    (the pipe holds what the destination could not take, and the flow
    reads again only once it is empty, so a handler picked at the next
    event never finds bytes of an earlier event in flight), half-close.
    """

    __slots__ = ('conn', 'to_backend', 'src', 'dst', 'readable', 'writable',
                 'recv_into', 'send', 'rng', 'buf', 'view', 'sent',
                 'reading', 'writing', 'pipe', 'held', 'last', 'link',
                 'room')

    def __init__(self, conn, to_backend, ends, src_tls=None, dst_tls=None):
        """*ends*: this direction's of :func:`vaurien._gevent.relay_ends`;
        *src_tls*, *dst_tls*: the TLS channels of its source and
        destination (their ``tls``), None for plain sockets."""
        self.conn = conn
        self.to_backend = to_backend
        if to_backend:
            src, dst = conn.client, conn.backend
        else:
            src, dst = conn.backend, conn.client
        self.src = src
        self.dst = dst      # its ``sent`` counts what the fast paths write
        self.readable, self.writable, src_raw, dst_raw = ends
        if src_tls is None and dst_tls is None:
            self.recv_into = src_raw.recv_into
            self.send = dst_raw.send
            # Bytes in the pipe not yet sent; None: this flow never
            # splices (no splice(2) here, or TLS on a side: those bytes
            # are not the socket's).
            self.held = None if _splice is None else 0
        else:
            self.recv_into = src_raw.recv_into if src_tls is None \
                else src_tls.read_into
            self.send = dst_raw.send if dst_tls is None else dst_tls.write
            self.held = None
        self.rng = None
        self.buf = self.view = None
        self.sent = 0
        self.reading = self.writing = False
        # Once splicing: (pipe read end, pipe write end, source descriptor,
        # destination descriptor).
        self.pipe = None
        self.last = None        # the (name, handler) of the last pick
        # Through the toxics (vaurien.toxics.link.Link), or None.
        self.link = None
        self.room = None        # protocol mode: set when the link has room

    def arm_read(self):
        self.reading = True
        if self.link is None:
            self.readable.start(self.on_readable)
        else:
            self.readable.start(self.on_link_readable)

    def start_link(self):
        """From now on, this direction goes through the proxy's toxics."""
        conn = self.conn
        proxy = conn.proxy
        self.link = Link(conn, self.to_backend, proxy.toxics, self,
                         self.send, self.pick, seed=proxy.seed,
                         bufsize=proxy.bufsize)
        self.room = Event()
        self.link.start()
        if self.reading:
            # Idle between two reads: switch callbacks now. A flow that is
            # writing or running a handler switches at its next arm_read.
            self.readable.stop()
            self.arm_read()

    def feed_link(self, data):
        """Protocol mode: *data* to the link, waiting (in the relay's
        greenlet) while it is full."""
        if not self.link.feed(data):
            self.room.wait()
            self.room.clear()

    def resume(self):
        """The link has room again: read on."""
        if self.conn._closed:
            return
        if self.conn.readers is not None:
            self.room.set()
        elif not self.reading and not self.src.eof:
            self.arm_read()

    def on_link_readable(self):
        """A read for the link (tcp mode): the data goes to the toxics.
        True when the flow reads on (it was not full, closed or ended)."""
        conn = self.conn
        if conn._closed:
            self.disarm()
            return False
        src = self.src
        buffers = conn.proxy._buffers
        buf = buffers.pop() if buffers else bytearray(conn.proxy.bufsize)
        try:
            count = self.recv_into(buf)    # TLS-aware, as on_readable's
        except (BlockingIOError, InterruptedError):
            buffers.append(buf)
            return False
        except OSError:
            conn.close(_SIDES[self.to_backend])
            return False
        # (Not counted in src.reads, as on_readable's: that counter tells
        # a handler's call whether the handler read, see Connection.call.)
        src.received += count
        if not count:
            if len(buffers) < _POOL_MAX:
                buffers.append(buf)
            src.eof = True
            self.reading = False
            self.readable.stop()
            self.link.feed_eof()
            return False
        # The link copies what it keeps: the buffer goes back to the pool.
        fed = self.link.feed(memoryview(buf)[:count])
        if len(buffers) < _POOL_MAX:
            buffers.append(buf)
        if not fed:
            self.reading = False
            self.readable.stop()
        return fed

    def disarm(self):
        if self.link is not None:
            self.link.stop()
        if self.reading:
            self.reading = False
            self.readable.stop()
        if self.writing:
            self.writing = False
            self.writable.stop()
        self.buf = self.view = None
        pipe = self.pipe
        if pipe is not None:
            self.pipe = None
            _gevent.close_fd(pipe[0])   # the sockets are the connection's
            _gevent.close_fd(pipe[1])

    def throw(self, *exc_info):
        """gevent's way of saying a socket we watch was closed: end."""
        self.conn.close('handler')

    def draw(self):
        """``(behavior, index)`` of this pick: the connection's (``--pick
        connection``), or one drawn from this direction's generator. The
        caller counts it (``behavior.picks``) once it is a pick: not at an
        end of stream, and with ``--pick connection`` never (the
        connection's pick was counted once)."""
        conn = self.conn
        behavior = conn.proxy.behavior
        if conn.behavior is not None:
            if behavior is not conn.behavior:
                conn._pick_connection(behavior)
            return behavior, conn.index
        index = behavior.single_index
        if index is None:
            rng = self.rng
            if rng is None:
                rng = self.rng = direction_random(
                    conn.proxy.seed, conn.seq, self.to_backend)
            index = behavior.index(rng)
        return behavior, index

    def pick(self):
        """The ``(name, handler)`` of one pick, counted: for a chunk of
        data the toxics' link takes (never an end of stream)."""
        conn = self.conn
        to_backend = self.to_backend
        if conn.behavior is None:
            # self.draw(), inlined (the link asks for every chunk).
            behavior = conn.proxy.behavior
            index = behavior.single_index
            if index is None:
                rng = self.rng
                if rng is None:
                    rng = self.rng = direction_random(
                        conn.proxy.seed, conn.seq, to_backend)
                index = behavior.index(rng)
            behavior.picks[to_backend][index] += 1
        else:
            behavior, index = self.draw()
        pair = self.last = behavior.tables[to_backend][index]
        return pair

    def observe(self, name, handler, at_end=False, answer=False):
        """Call *handler* through the event log when it is on, else
        through the proxy's ``observe``; ``(how, effect, why, bytes,
        seconds)`` (see :func:`vaurien.events.observe_call`). *answer*:
        the message is a response using its request's pick."""
        conn = self.conn
        proxy = conn.proxy
        events = proxy.events
        if events is None:
            return proxy.observe(conn, self.to_backend, name, handler, at_end)
        return events.call(conn, self.to_backend, name, handler, at_end,
                           answer)

    def call(self, name, handler, at_end=False):
        """Call *handler* for this event; None to go on, else how the
        direction ended."""
        return self.observe(name, handler, at_end)[0]

    def end_handler(self):
        """The ``(name, handler)`` of the last pick when that handler acts
        on an end of stream (``end_of_stream``) and the behavior still has
        it (a live change since that pick applies to the end of stream as
        to any later event), else None."""
        last = self.last
        if last is not None and last[1] is not PASS and \
                getattr(last[1], 'end_of_stream', None) and \
                last in self.conn.proxy.behavior.tables[self.to_backend]:
            return last
        return None

    def at_end(self):
        """In a greenlet: the source has ended. Not a pick: handed to the
        last pick's handler if it acts on it; how the direction ended."""
        last = self.end_handler()
        if last is None:
            return 'eof'
        return self.call(last[0], last[1], True) or 'eof'

    def ended(self):
        """In the loop: the source has ended (see :meth:`at_end`)."""
        if self.end_handler() is None:
            self.conn.direction_ended(self.to_backend, 'eof')
        else:
            self.conn.proxy._workers.run(self.run_end)

    def run_end(self):
        """In a worker greenlet: :meth:`at_end`, then end the direction."""
        self.conn.direction_ended(self.to_backend, self.at_end())

    def on_readable(self):
        conn = self.conn
        if conn._closed:
            self.disarm()
            return
        proxy = conn.proxy
        to_backend = self.to_backend
        per_event = conn.behavior is None
        if per_event:
            # self.draw(), inlined (this runs at every event).
            behavior = proxy.behavior
            index = behavior.single_index
            if index is None:
                rng = self.rng
                if rng is None:
                    rng = self.rng = direction_random(
                        proxy.seed, conn.seq, to_backend)
                index = behavior.index(rng)
        else:
            behavior, index = self.draw()
        pair = behavior.tables[to_backend][index]
        if pair[1] is not PASS:
            self.reading = False
            self.readable.stop()
            # The loop has just turned (this is its readable callback): the
            # handler's first read owes it no extra turn (Socket.recv's
            # fairness wait is for reads that follow one another).
            self.src.hot = False
            conn.lent = True
            proxy._workers.run(self.run_handler, behavior, index)
            return
        if self.pipe is not None:
            self.splice(behavior, index, pair)
            return
        buffers = proxy._buffers
        buf = buffers.pop() if buffers else bytearray(proxy.bufsize)
        try:
            count = self.recv_into(buf)
        except (BlockingIOError, InterruptedError):
            buffers.append(buf)
            return
        except OSError:
            conn.close(_SIDES[to_backend])
            return
        # The same as self.passed(behavior, index, buf, count), inlined:
        # this is the plaintext hot path.
        if not count:
            # The end of stream: not a pick.
            buffers.append(buf)
            self.src.eof = True
            self.reading = False
            self.readable.stop()
            last = self.last
            if last is None or last[1] is PASS:
                # (self.ended(), when no handler can act on it.)
                conn.direction_ended(to_backend, 'eof')
            else:
                self.ended()
            return
        if per_event:
            behavior.picks[to_backend][index] += 1
        self.last = pair
        if proxy.events is not None:
            proxy.events.passed(conn, to_backend, pair[0], count)
        self.src.received += count
        view = memoryview(buf)[:count]
        try:
            sent = self.send(view)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            conn.close(_SIDES[not to_backend])
            return
        self.dst.sent += sent
        if sent == count:
            if len(buffers) < _POOL_MAX:
                buffers.append(buf)
            if count == len(buf) and self.held is not None:
                # A full buffer: bulk data; splice the next ones.
                self.start_splicing()
            return
        # The destination is full: hold the rest, stop reading until it
        # has been sent.
        self.buf, self.view, self.sent = buf, view, sent
        self.reading = False
        self.readable.stop()
        self.writing = True
        self.writable.start(self.on_writable)

    def passed(self, behavior, index, buf, count):
        """Relay the *count* bytes read into *buf*, a pass-through pick of
        *index* in *behavior*; 0 bytes is the end of stream (not a pick:
        *behavior* and *index* are not used)."""
        conn = self.conn
        proxy = conn.proxy
        to_backend = self.to_backend
        buffers = proxy._buffers
        if not count:
            buffers.append(buf)
            self.src.eof = True
            self.reading = False
            self.readable.stop()
            self.ended()
            return
        if conn.behavior is None:
            behavior.picks[to_backend][index] += 1
        pair = self.last = behavior.tables[to_backend][index]
        if proxy.events is not None:
            proxy.events.passed(conn, to_backend, pair[0], count)
        self.src.received += count
        view = memoryview(buf)[:count]
        try:
            sent = self.send(view)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            conn.close(_SIDES[not to_backend])
            return
        self.dst.sent += sent
        if sent == count:
            if len(buffers) < _POOL_MAX:
                buffers.append(buf)
            return
        # The destination is full: hold the rest, stop reading until it
        # has been sent.
        self.buf, self.view, self.sent = buf, view, sent
        self.reading = False
        self.readable.stop()
        self.writing = True
        self.writable.start(self.on_writable)

    def start_splicing(self):
        conn = self.conn
        src, dst = ((conn.client, conn.backend) if self.to_backend
                    else (conn.backend, conn.client))
        try:
            pipe = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError:     # out of descriptors: keep copying
            return
        bufsize = conn.proxy.bufsize
        if bufsize > _PIPE_SIZE:
            # Room for one whole event (a pipe holds 64 KiB by default).
            try:
                fcntl.fcntl(pipe[1], _F_SETPIPE_SZ, bufsize)
            except OSError:     # above /proc/sys/fs/pipe-max-size
                pass
        self.pipe = pipe + (src.fileno(), dst.fileno())

    def splice(self, behavior, index, pair):
        """A pass-through event on the splice path (the pick *index* of
        *behavior*, whose ``(name, handler)`` is *pair*): at most
        ``--bufsize`` bytes from the source into the (empty) pipe, then as
        much of them as the destination takes; the rest waits in the pipe.
        As on the copying path, the end of stream is not a pick."""
        conn = self.conn
        proxy = conn.proxy
        to_backend = self.to_backend
        pipe = self.pipe
        try:
            count = _splice(pipe[2], pipe[1], proxy.bufsize,
                            flags=_SPLICE_FLAGS)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            conn.close(_SIDES[to_backend])
            return
        if not count:
            self.src.eof = True
            self.reading = False
            self.readable.stop()
            self.ended()
            return
        if conn.behavior is None:
            behavior.picks[to_backend][index] += 1
        self.last = pair
        if proxy.events is not None:
            proxy.events.passed(conn, to_backend, pair[0], count)
        self.src.received += count
        self.held = count
        self.flush()

    def flush(self):
        """Splice what the pipe holds to the destination; when it cannot
        take it all, stop reading and wait for it to be writable."""
        pipe = self.pipe
        try:
            count = _splice(pipe[0], pipe[3], self.held,
                            flags=_SPLICE_FLAGS)
            self.held -= count
            self.dst.sent += count
        except (BlockingIOError, InterruptedError):
            pass
        except OSError:
            self.conn.close(_SIDES[not self.to_backend])
            return
        if not self.held:
            if not self.reading:
                self.writing = False
                self.writable.stop()
                self.arm_read()
            return
        if self.reading:
            self.reading = False
            self.readable.stop()
            self.writing = True
            self.writable.start(self.on_writable)

    def on_writable(self):
        conn = self.conn
        if conn._closed:
            self.disarm()
            return
        if self.held:
            self.flush()
            return
        view = self.view
        try:
            count = self.send(view[self.sent:])
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            conn.close(_SIDES[not self.to_backend])
            return
        self.sent += count
        self.dst.sent += count
        if self.sent < len(view):
            return
        self.writing = False
        self.writable.stop()
        buffers = conn.proxy._buffers
        if len(buffers) < _POOL_MAX:
            buffers.append(self.buf)
        self.buf = self.view = None
        self.arm_read()

    def run_handler(self, behavior, index, has_data=False):
        """In a worker greenlet: one handler call, then read again.

        A readable event may be the end of stream: unless the flow read
        data already (*has_data*, TLS), a peek tells, before the handler
        is called, so that an end of stream is never a pick.
        """
        conn = self.conn
        if not has_data and self.src.at_eof():
            conn.direction_ended(self.to_backend, self.at_end())
            return
        to_backend = self.to_backend
        if conn.behavior is None:
            behavior.picks[to_backend][index] += 1
        name, handler = self.last = behavior.tables[to_backend][index]
        # self.call(name, handler), without its two frames:
        proxy = conn.proxy
        events = proxy.events
        if events is None:
            how = proxy.observe(conn, to_backend, name, handler)[0]
        else:
            how = events.call(conn, to_backend, name, handler)[0]
        if how is None:
            if not conn._closed:
                self.arm_read()
        else:
            conn.direction_ended(to_backend, how)


class _TLSFlow(_Flow):
    """A direction whose source speaks TLS.

    The socket's readability is not the plaintext's: a readable socket may
    bring only part of a record, or a record without data (a session
    ticket). So the flow reads first and picks only once plaintext (or the
    end of the stream) is there; a handler picked gets it back through
    its ``recv``. A read may leave decrypted data in the channel that no
    socket event will announce: the flow comes back for it by a loop
    callback, after giving the loop its turn.
    """

    __slots__ = ('tls', 'again')

    def __init__(self, conn, to_backend, ends, src_tls, dst_tls=None):
        super().__init__(conn, to_backend, ends, src_tls, dst_tls)
        self.tls = src_tls
        self.again = False

    def arm_read(self):
        _Flow.arm_read(self)
        self.check_buffered()

    def on_readable(self):
        conn = self.conn
        if conn._closed:
            self.disarm()
            return
        proxy = conn.proxy
        buffers = proxy._buffers
        buf = buffers.pop() if buffers else bytearray(proxy.bufsize)
        try:
            count = self.recv_into(buf)
        except (BlockingIOError, InterruptedError):
            buffers.append(buf)
            return
        except OSError:
            conn.close(_SIDES[self.to_backend])
            return
        if not count:
            self.passed(None, None, buf, 0)     # the end of stream
            return
        behavior, index = self.draw()
        handler = behavior.tables[self.to_backend][index][1]
        if handler is not PASS:
            self.tls.unread(bytes(buf[:count]))
            buffers.append(buf)
            self.reading = False
            self.readable.stop()
            conn.lent = True
            proxy._workers.run(self.run_handler, behavior, index, True)
            return
        self.passed(behavior, index, buf, count)
        tls = self.tls
        if count == len(buf) or tls.ended or tls.ahead is not None \
                or tls.error is not None:
            # A read that did not stop for want of data.
            self.check_buffered()

    def check_buffered(self):
        if self.reading and not self.again and self.tls.buffered():
            self.again = True
            self.conn.proxy.loop.run_callback(self.on_again)

    def on_again(self):
        self.again = False
        if self.reading and not self.conn._closed:
            if self.link is None:
                self.on_readable()
            else:
                self.on_link_readable()

    def on_link_readable(self):
        # After a read for the link, come back for plaintext already
        # decrypted (no socket event will say so).
        fed = _Flow.on_link_readable(self)
        if fed:
            self.check_buffered()
        return fed


def _flow(conn, to_backend, ends, src_tls, dst_tls):
    """The flow of one direction (arguments as :class:`_Flow`'s): a
    :class:`_TLSFlow` when its source speaks TLS."""
    return (_Flow if src_tls is None else _TLSFlow)(conn, to_backend, ends,
                                                     src_tls, dst_tls)


class _Workers:
    """Parked greenlets that run handler calls, reused from call to call.

    A handler may block, so it cannot run in the loop itself; creating a
    greenlet for every call costs more than the rest of a call. A worker
    runs one call, then parks itself here until the next one.
    """

    __slots__ = ('hub', 'idle', 'limit')

    def __init__(self, limit=128):
        self.hub = None
        self.idle = []
        self.limit = limit

    def run(self, func, *args):
        """Run ``func(*args)`` in a worker now (call it from the loop)."""
        idle = self.idle
        if idle:
            worker = idle.pop()
        else:
            hub = self.hub
            if hub is None:
                hub = self.hub = gevent.get_hub()
            worker = _gevent.new_worker(self._work, hub)
        worker.switch(func, args)

    def _work(self, func, args):
        idle = self.idle
        # The raw switch to the hub: the hub resumes this worker only with
        # the next call.
        park = _gevent.parker(self.hub)
        while True:
            try:
                func(*args)
            except BaseException as exc:  # pragma: no cover - func catches
                log.error('worker: %s: %s', type(exc).__name__, exc,
                          exc_info=True)
            func = args = None
            if len(idle) >= self.limit:
                return
            idle.append(getcurrent())
            func, args = park()


def _direction(to_backend):
    return 'client->backend' if to_backend else 'backend->client'


# The side a direction reads from, indexed by to_backend.
_SIDES = ('backend', 'client')
# Exchanges waiting for their response on one connection, at most.
_MAX_EXCHANGES = 1024
# Who ended a connection, by how a direction ended (see Connection.call).
_ENDED_BY = {'closed': 'handler', 'error': 'error', 'failed': 'error'}


def _strerror(err):
    return os.strerror(err)




class Proxy:
    """A chaos proxy listening on *local* and relaying to *distant*.

    *behavior* is a :class:`~vaurien.behavior.Behavior`; it can be replaced
    while the proxy runs with :meth:`set_behavior`. *protocol* is the
    protocol object (None: raw tcp). Handlers and protocols are given their
    proxy when they are made, so either may also be a function that takes
    the proxy and returns it: it is called last, on the otherwise complete
    proxy (this is how :mod:`vaurien.service` builds one). *events* is the
    chaos event log (:class:`vaurien.events.EventLog`) or None. *pick* is
    ``event``, ``exchange`` (protocol mode only) or ``connection``: when a
    handler is picked (see the module's docstring). With *log_faults*,
    every fault applied is logged at INFO (one line each). ``toxics``
    is the proxy's :class:`~vaurien.toxics.ToxicSet`, empty at first;
    *handlers* (the handler registry) makes handlers usable as toxics.
    *name* is its name among several proxies (``[proxy:NAME]``), or None.
    ``start()`` binds the listening socket (ConfigError when it cannot);
    ``serve_forever()`` serves until ``stop()``.

    *local* and *distant* are ``(host, port)`` or a Unix socket's path;
    *local_mode* is the permissions of that socket file. *local_tls* (a
    :class:`vaurien.endpoints.ServerTLS`) makes clients connect with TLS;
    *distant_tls* (a :class:`vaurien.endpoints.ClientTLS`) makes the proxy
    speak TLS to the backend.

    Limits: *max_message* bytes of one protocol message are held whole
    (see :class:`vaurien.protocols.base.Reader`); at most *max_connections*
    clients are served at once (None: :func:`default_max_connections`),
    the next ones waiting in the listen backlog; with *idle_timeout*
    seconds, a connection with no traffic either way for that long is
    closed. :meth:`shutdown` stops the proxy gracefully.
    """

    def __init__(self, local, distant, behavior, bufsize=65536, timeout=30.0,
                 seed=0, backlog=1024, pick='event', protocol=None,
                 reuse_port=False, worker=0, workers=1, events=None,
                 local_mode=None, local_tls=None, distant_tls=None,
                 max_message=1 << 20, max_connections=None,
                 idle_timeout=None, handlers=None, name=None,
                 log_faults=False):
        if pick not in PICKS:
            raise ConfigError('--pick must be one of %s, got %r'
                              % (', '.join(PICKS), pick))
        self.local = local
        self.local_mode = local_mode
        self.local_tls = local_tls
        self.distant_tls = distant_tls
        self._bound = None         # the Unix socket file bound, to remove
        self.max_message = max_message
        self.max_connections = max_connections or default_max_connections()
        self.idle_timeout = idle_timeout
        # Accepting is paused: --max-connections reached, or descriptors
        # ran out (then _resume_timer runs).
        self.paused = False
        # shutdown(): an Event set when the last connection is gone.
        self.draining = None
        self._resume_timer = None
        self._idle_timer = None
        self._warned_at = -1.0
        self._unwarned = 0
        # Its name among the proxies of the process ([proxy:NAME]); None
        # for the one proxy of a plain run (the event log then says none).
        self.name = name
        # The toxics (vaurien.toxics.ToxicSet; *handlers*, the handler
        # registry, makes handlers usable as toxics). While it is empty a
        # connection never looks at it after its start.
        self.toxics = ToxicSet(self, handlers, self.toxics_changed)
        # --workers: every worker listens on the port (SO_REUSEPORT) and
        # numbers its connections worker+1, worker+1+workers, ... so that
        # connection numbers (and the picks derived from them) stay unique.
        self.reuse_port = reuse_port
        self.seq_step = workers
        self.distant = distant
        self.behavior = behavior
        self.bufsize = bufsize
        self.timeout = timeout
        self.seed = seed
        self.backlog = backlog
        self.pick = pick
        self.pick_per_connection = pick == 'connection'
        self.pick_per_event = pick == 'event'
        # How handler calls are observed (vaurien.events), chosen once:
        # with --log-faults off, logging costs nothing per call.
        self.observe = observe_and_log if log_faults else observe_call
        self.log_faults = log_faults
        self.protocol = protocol
        self.connections = set()
        self.hung = set()
        self.stats = Stats()
        # The chaos event log (vaurien.events.EventLog), None when off: the
        # engine checks for None and does nothing more.
        self.events = events
        self._buffers = []
        self._workers = _Workers()
        self._seq = worker + 1 - workers
        self.opened = 0            # connections accepted
        self._changed = Event()
        self._resolved = None
        self.server = None
        self.loop = gevent.get_hub().loop
        self.address = None
        if callable(protocol):
            self.protocol = protocol(self)
        if pick == 'exchange' and self.protocol is None:
            raise ConfigError('--pick exchange needs a --protocol (in tcp '
                              'mode there are no requests, only readable '
                              'events: --pick event)')
        if behavior is not None and not isinstance(behavior, Behavior):
            self.behavior = behavior(self)

    # -- listening ------------------------------------------------------------

    def start(self, listener=None):
        """Bind and start accepting; ConfigError if the address is unusable.

        *listener*: a socket already bound and listening, used instead.
        """
        if listener is None:
            listener = bind(self.local, 'listen on %s'
                            % format_hostport(self.local), self.backlog,
                            self.reuse_port, self.local_mode)
            self._bound = bound_file(self.local)
        client_socket = None
        if self.local_tls is not None:
            client_socket = self.local_tls.socket_maker(self.bufsize)
        self.server = LoopServer(listener, self._on_client,
                                 self.out_of_descriptors, client_socket)
        self.server.start()
        self.loop = self.server.loop
        self.address = listen_address(listener, self.local)
        if self.idle_timeout:
            every = min(max(self.idle_timeout / 4, 0.05), 1.0)
            self._idle_timer = self.loop.timer(every, every)
            self._idle_timer.start(self._sweep_idle)
        return self.address

    def serve_forever(self):
        if self.server is None:
            self.start()
        self.server.serve_forever()

    def stop(self, timeout=1):
        """Stop listening, wake sleepers and close every open connection."""
        self._stop_timers()
        if self.server is not None:
            self.server.close()
        self._wake()
        for conn in list(self.connections):
            conn.close()
        for conn in list(self.hung):
            conn.close()
        if self.server is not None:
            self.server.stop(timeout=timeout)
        unbind(self.local, self._bound)
        self._bound = None

    # -- connections ------------------------------------------------------------

    def _on_client(self, client, address):
        """A new client (in the loop): start connecting to the backend."""
        self._seq += self.seq_step
        self.opened += 1
        conn = Connection(self, self._seq, client, address)
        self.connections.add(conn)
        if len(self.connections) >= self.max_connections:
            self._pause()
        if self.events is not None:
            self.events.opened(conn)
        if client.tls is not None:
            gevent.spawn_raw(self._tls_accept, conn)
            return
        self._connect(conn)

    def _connect(self, conn):
        addresses = self._resolved
        try:
            if addresses is None:
                gevent.spawn_raw(self._resolve_and_connect, conn)
            else:
                conn.connect(addresses)
        except Exception as exc:   # never let the accept loop see it
            log.error('connection %d: %s: %s', conn.seq, type(exc).__name__,
                      exc, exc_info=True)
            conn.close('error')

    def _tls_accept(self, conn):
        """In a greenlet: the client's TLS handshake (within
        ``local_tls.timeout``), then the backend connection.

        The handshake is an upstream event of its own: a handler picked for
        it that has a ``tls_handshake(conn)`` method (``tls_error``) is
        called instead of the handshake, and the connection is closed
        after it. Any other pick does nothing here and is not counted.
        """
        client = conn.client
        _nodelay(client)
        behavior = self.behavior
        if self.pick_per_connection:
            conn._pick_connection(behavior)
            index = conn.index
        elif behavior.single_index is not None:
            index = behavior.single_index
        else:
            # The connection's own generator: unused when picks are per
            # event, so the per-direction picks stay those of plain TCP.
            index = behavior.index(connection_random(self.seed, conn.seq))
        name, handler = behavior.pair(index, True)
        hook = getattr(handler, 'tls_handshake', None)
        if hook is not None:
            if not self.pick_per_connection:    # (counted when picked)
                behavior.picks[True][index] += 1
            effect = getattr(handler, 'handshake_effect', lambda: 'cut')()
            try:
                hook(conn)
            except Exception as exc:
                if not _quiet(exc):
                    log.error('handler %r failed on connection %d (TLS '
                              'handshake): %s: %s', name, conn.seq,
                              type(exc).__name__, exc, exc_info=True)
            # What it did, counted and logged as a handler call's would be
            # (the handshake is no data: no event-log line).
            self.stats.handled(conn, True, name, effect, 0.0)
            conn.suffered(effect)
            if self.log_faults:
                log_fault(conn, True, name, effect, 0.0)
            conn.close('handler')
            return
        try:
            client.do_handshake(self.local_tls.timeout)
        except OSError as exc:
            if not conn._closed:    # (not when the proxy closed it)
                self._client_tls_failed(conn, exc)
                conn.close('client')
            return
        if not conn._closed:
            self._connect(conn)

    def _client_tls_failed(self, conn, exc):
        """The client's TLS handshake failed (*exc*): counted by reason
        (:func:`vaurien.stats.handshake_reason`), logged at INFO and in
        the event log. A handshake failed by ``tls_error`` does not come
        here: it is that handler's effect."""
        label = self.stats.client_tls_failed(exc)
        reason = tls_reason(exc)
        log.info('TLS handshake with client %s failed: %s',
                 format_hostport(conn.address), reason)
        if self.events is not None:
            self.events.client_tls_failed(conn, label, reason)

    def backend_socket(self, family):
        """A new socket to connect to the backend with (TLS or not)."""
        tls = self.distant_tls
        if tls is None:
            return Socket(family, _socket.SOCK_STREAM)
        return tls.socket(family, self.distant, self.bufsize)

    def _resolve_and_connect(self, conn):
        distant = self.distant
        try:
            addresses = lookup(distant)
        except (_socket.gaierror, UnicodeError) as exc:
            self._backend_failed(conn, exc)
            conn.close('backend')
            return
        if self.distant == distant:
            # Not when the backend was switched (set_backend) meanwhile:
            # the cache must name the current one.
            self._resolved = addresses
        conn.connect(addresses)

    def _backend_failed(self, conn, exc):
        label = self.stats.backend_failed(exc)
        if isinstance(exc, _socket.gaierror):
            reason = 'cannot resolve %r: %s' % (self.distant[0],
                                                exc.strerror or exc)
        elif isinstance(exc, (ssl.SSLError, HandshakeTimeout)):
            reason = tls_reason(exc)
        elif isinstance(exc, _socket.timeout):
            reason = 'no answer within %gs (--timeout)' % self.timeout
        else:
            reason = (getattr(exc, 'strerror', None) or str(exc)).lower()
        log.warning('backend %s unreachable (%s): closing client %s',
                    format_hostport(self.distant), reason,
                    format_hostport(conn.address))
        if self.events is not None:
            self.events.backend_failed(conn, label, reason)

    # -- limits: connections, descriptors, idle time ---------------------------

    def _pause(self):
        """Stop accepting: new clients wait in the listen backlog."""
        if not self.paused:
            self.paused = True
            self.server.stop_accepting()

    def _resume(self):
        if self.paused and self._resume_timer is None \
                and self.draining is None and not self.disabled \
                and len(self.connections) < self.max_connections:
            self.paused = False
            self.server.start_accepting()

    def connection_gone(self):
        """A connection closed while accepting was paused or while
        draining (called by :meth:`Connection.close`)."""
        draining = self.draining
        if draining is not None:
            if not self.connections:
                draining.set()
            return
        self._resume()

    def out_of_descriptors(self):
        """Accepting or connecting failed for want of descriptors: new
        clients wait in the backlog for a moment; one WARNING a second at
        most says so."""
        now = _monotonic()
        if now - self._warned_at >= 1.0:
            limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
            log.warning('out of file descriptors (limit %s): %d connections '
                        'open, new clients wait%s; see --max-connections',
                        limit, len(self.connections),
                        ' (%d more times since the last warning)'
                        % self._unwarned if self._unwarned else '')
            self._warned_at = now
            self._unwarned = 0
        else:
            self._unwarned += 1
        if self._resume_timer is None and self.server is not None \
                and self.draining is None:
            self._pause()
            timer = self._resume_timer = self.loop.timer(_EXHAUSTED_PAUSE)
            timer.start(self._exhaustion_over)

    def _exhaustion_over(self):
        timer, self._resume_timer = self._resume_timer, None
        if timer is not None:
            timer.close()
        self._resume()

    def _sweep_idle(self):
        """--idle-timeout: close connections with no bytes read either way
        since ``idle_timeout`` seconds."""
        now = _monotonic()
        limit = self.idle_timeout
        for conn in list(self.connections):
            backend = conn.backend
            seen = conn.client.received + (0 if backend is None
                                           else backend.received)
            if seen != conn.seen or not conn.seen_at:
                conn.seen = seen
                conn.seen_at = now
            elif now - conn.seen_at >= limit:
                conn.close('proxy')

    def _stop_timers(self):
        for name in ('_idle_timer', '_resume_timer'):
            timer = getattr(self, name)
            if timer is not None:
                setattr(self, name, None)
                timer.stop()
                timer.close()

    # -- stopping gracefully ----------------------------------------------------

    def shutdown(self, grace, cut_now=None):
        """Stop accepting at once, let open connections finish for *grace*
        seconds (less if the :class:`~gevent.event.Event` *cut_now* is set
        meanwhile), then reset (RST) those still open and stop.

        Blocks the calling greenlet; returns ``(drained, cut)``, the
        numbers of connections that ended by themselves and that were cut.
        Handlers are not woken: a request held in a delay finishes if it
        can within *grace*.
        """
        self.draining = Event()
        self._stop_timers()
        server = self.server
        if server is not None and not self.disabled:
            # Not server.close(): that would end serve_forever() at once.
            server.stop_accepting()
            server.socket.close()
        before = len(self.connections)
        if before and grace > 0:
            waits = [self.draining]
            if cut_now is not None:
                waits.append(cut_now)
            gevent.wait(waits, timeout=grace, count=1)
        left = list(self.connections)
        for conn in left:
            conn.reset()
        self.stop()
        return before - len(left), len(left)

    # -- live changes -------------------------------------------------------------

    def set_behavior(self, behavior):
        """Use *behavior* from the next event on, on every connection.

        Handlers sleeping through ``BaseHandler.sleep`` wake at once and go
        on; hung connections are closed.
        """
        self.stats.track(self.behavior)
        self.behavior = behavior
        self.stats.track(behavior)
        if self.events is not None:
            self.events.behavior_changed(behavior)
        self._wake()
        for conn in list(self.hung):
            conn.close()

    def toxics_changed(self):
        """The toxics changed: open connections whose directions did not go
        through them yet do from their next read on."""
        if self.toxics:
            for conn in list(self.connections):
                if conn.flows:
                    conn.use_toxics()

    def wait_change(self, seconds):
        """Sleep *seconds*, or until the behavior changes or the proxy stops."""
        self._changed.wait(seconds)

    def _wake(self):
        changed, self._changed = self._changed, Event()
        changed.set()

    # -- service down and up, backend switch (the control API) ----------------

    disabled = False

    def disable(self):
        """Take the service down: stop listening and cut open connections.

        New clients get "connection refused", as when the real backend is
        down; :meth:`enable` listens again on the same address.
        """
        server = self.server
        if self.disabled or server is None:
            return
        self.disabled = True
        self.paused = False
        self._family = server.socket.family
        server.stop_accepting()
        server.socket.close()
        self._wake()
        for conn in list(self.connections) + list(self.hung):
            conn.close()

    def enable(self, listener=None):
        """Listen again on the address used before :meth:`disable`.

        Raises ConfigError when the address cannot be bound any more (taken
        by another process meanwhile); the proxy then stays down. With
        *listener* (bound and listening), listen on it instead.
        """
        if not self.disabled:
            return
        if listener is None:
            listener = bind(self.address, 'listen on %s again'
                            % format_hostport(self.address), self.backlog,
                            self.reuse_port, self.local_mode)
            self._bound = bound_file(self.address)
        self.server.socket = listener
        self.address = listen_address(listener, self.address)
        self.server.start_accepting()
        self.disabled = False

    def set_backend(self, distant):
        """Relay new connections to *distant* (``(host, port)`` or a Unix
        socket's path) from now on;
        open connections keep their backend."""
        self.distant = distant
        self._resolved = None


def _nodelay(sock):
    """TCP_NODELAY on *sock* (a gevent socket or the OS socket under
    one), if it takes it."""
    try:
        sock.setsockopt(_socket.IPPROTO_TCP, _socket.TCP_NODELAY, 1)
    except OSError:
        pass
