"""The engine: a gevent StreamServer relaying each client to the backend.

Each accepted client gets its own fresh backend connection. The two
directions of a connection are serviced by two greenlets, independently: a
handler sleeping on a request does not hold back a response already on its
way. At each readable event on a direction's source, a handler is picked
from the current :class:`~vaurien.behavior.Behavior` and called as
``handler(client_sock, backend_sock, to_backend)``; ``dummy`` picks are
relayed by the engine itself.

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
import errno
import logging
import random
import socket as _socket

import gevent
from gevent.event import Event
from gevent.server import StreamServer
from gevent.socket import socket as _GeventSocket

from vaurien.behavior import PASS, connection_random, direction_random
from vaurien.config import ConfigError, format_hostport

__all__ = ['Proxy', 'Connection', 'Socket']

log = logging.getLogger('vaurien')

_recv = _GeventSocket.recv
_recv_into = _GeventSocket.recv_into
_QUIET_ERRNOS = {errno.EBADF, errno.ENOTCONN, errno.EPIPE, errno.ECONNRESET,
                 errno.ECONNABORTED, errno.ESHUTDOWN, errno.ETIMEDOUT}
_PEEK = _socket.MSG_PEEK | _socket.MSG_DONTWAIT
# Buffers kept for reuse; beyond this many idle ones, they are dropped.
_POOL_MAX = 64


class Socket(_GeventSocket):
    """A gevent socket that tells the engine what handlers did with it.

    ``conn`` is the :class:`Connection` it belongs to; ``eof`` becomes true
    when a read returned end of stream; ``reads`` counts the reads.
    """
    __slots__ = ('conn', 'eof', 'reads')

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.conn = None
        self.eof = False
        self.reads = 0

    def recv(self, bufsize, flags=0):
        data = _recv(self, bufsize, flags)
        self.reads += 1
        if not data and bufsize:
            self.eof = True
        return data

    def recv_into(self, buffer, nbytes=0, flags=0):
        count = _recv_into(self, buffer, nbytes, flags)
        self.reads += 1
        if not count and (nbytes or len(buffer)):
            self.eof = True
        return count


def _quiet(exc):
    """True for the errors that just mean "the peer went away"."""
    return isinstance(exc, OSError) and (
        isinstance(exc, ConnectionError) or exc.errno in _QUIET_ERRNOS
        or isinstance(exc, _socket.timeout))


class Connection:
    """One proxied client: its two sockets and its per-connection state.

    Handlers reach it through ``sock.conn`` (or ``BaseHandler._connection``)
    for what belongs to one connection: its random generator, its sequence
    number, whether it is hung.
    """

    __slots__ = ('proxy', 'seq', 'client', 'backend', 'address', 'hung',
                 'state', 'readers', 'behavior', 'index', '_done', '_closed',
                 '_hrng', '__weakref__')

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
        self._done = 0
        self._closed = False
        self._hrng = None
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

    def handler_random(self):
        """This connection's generator for handlers' own random choices."""
        rng = self._hrng
        if rng is None:
            rng = self._hrng = random.Random(
                (self.proxy.seed << 64) | (self.seq << 2) | 2)
        return rng

    def hang(self):
        """Mark the connection hung: it is closed as soon as a side ends,
        or when the handler is changed through the control API."""
        if not self.hung:
            self.hung = True
            self.proxy.hung.add(self)

    # -- the relay ----------------------------------------------------------

    def serve(self):
        """Connect to the backend and relay until both directions end."""
        proxy = self.proxy
        backend = proxy.connect_backend(self)
        if backend is None:
            self.close()
            return
        self.backend = backend
        backend.conn = self
        proxy.connections.add(self)
        if proxy.pick_per_connection:
            self._pick_connection(proxy.behavior)
        protocol = proxy.protocol
        if protocol is not None:
            self.readers = (protocol.reader(self, False, backend),
                            protocol.reader(self, True, self.client))
        downstream = gevent.spawn(self._relay, False)
        try:
            self._relay(True)
            downstream.join()
        finally:
            self.close()

    def _pick_connection(self, behavior):
        self.behavior = behavior
        self.index = behavior.index(
            connection_random(self.proxy.seed, self.seq))

    def _relay(self, to_backend):
        client, backend = self.client, self.backend
        src, dst = (client, backend) if to_backend else (backend, client)
        proxy = self.proxy
        wait, readable = src._wait, src._read_event
        recv_into = src._sock.recv_into
        reader = self.readers[to_backend] if self.readers else None
        buffers = proxy._buffers
        bufsize = proxy.bufsize
        per_connection = proxy.pick_per_connection
        rng = None
        name = 'dummy'
        how = 'eof'
        try:
            while True:
                if reader is None or not reader.pending:
                    wait(readable)
                behavior = proxy.behavior
                if per_connection:
                    if behavior is not self.behavior:
                        self._pick_connection(behavior)
                    pair = behavior.pair(self.index, to_backend)
                else:
                    pair = (behavior.single_up if to_backend
                            else behavior.single_down)
                    if pair is None:
                        if rng is None:
                            rng = direction_random(proxy.seed, self.seq,
                                                   to_backend)
                        pair = behavior.pick(rng, to_backend)
                name, handler = pair
                if handler is PASS:
                    if reader is not None:
                        # One whole message; a huge one streams through.
                        if not reader.relay(dst):
                            break
                        continue
                    buf = buffers.pop() if buffers else bytearray(bufsize)
                    try:
                        count = recv_into(buf)
                    except BlockingIOError:
                        buffers.append(buf)
                        continue
                    if not count:
                        src.eof = True
                        buffers.append(buf)
                        break
                    with memoryview(buf) as view:
                        dst.sendall(view[:count])
                    if len(buffers) < _POOL_MAX:
                        buffers.append(buf)
                    continue
                reads = src.reads
                result = handler(client, backend, to_backend)
                if client._closed or backend._closed:
                    how = 'closed'
                    break
                if src.eof or (result is not None and not result):
                    break
                # A message already buffered by the protocol reader is not
                # lost to a peek that sees the socket's end of stream.
                if (src.reads == reads and not (reader and reader.pending)
                        and self._at_eof(src)):
                    break
        except OSError as exc:
            how = 'error'
            if not _quiet(exc) and not self._closed:
                log.error('handler %r failed on connection %d (%s): %s',
                          name, self.seq, _direction(to_backend), exc,
                          exc_info=True)
        except gevent.GreenletExit:
            how = 'error'
        except Exception as exc:
            how = 'error'
            log.error('handler %r failed on connection %d (%s): %s: %s',
                      name, self.seq, _direction(to_backend),
                      type(exc).__name__, exc, exc_info=True)
        self._direction_ended(to_backend, how)

    @staticmethod
    def _at_eof(src):
        """Peek: has *src* reached end of stream (without reading data)?"""
        try:
            return not src._sock.recv(1, _PEEK)
        except (BlockingIOError, InterruptedError):
            return False
        except OSError:
            return True

    def _direction_ended(self, to_backend, how):
        if how != 'eof' or self.hung or self._closed:
            self.close()
            return
        self._done += 1
        if self._done >= 2:
            self.close()
            return
        dst = self.backend if to_backend else self.client
        try:
            dst.shutdown(_socket.SHUT_WR)
        except OSError:
            self.close()

    def close(self):
        """Close both sockets (once); the other direction wakes and ends."""
        if self._closed:
            return
        self._closed = True
        proxy = self.proxy
        proxy.connections.discard(self)
        if self.hung:
            proxy.hung.discard(self)
        for sock in (self.client, self.backend):
            if sock is not None:
                try:
                    sock.close()
                except OSError:
                    pass


def _direction(to_backend):
    return 'client->backend' if to_backend else 'backend->client'


class _Server(StreamServer):
    """A StreamServer whose client sockets are :class:`Socket` objects."""

    def do_read(self):
        listener = self.socket
        try:
            fd, address = listener._accept()
        except BlockingIOError:
            return None
        return Socket(listener.family, listener.type, 0, fileno=fd), address


def resolve(host, port, passive=False):
    """``[(family, sockaddr), ...]`` for *host*, IPv4 first."""
    flags = _socket.AI_PASSIVE if passive else 0
    infos = gevent.socket.getaddrinfo(host or None, port, 0,
                                      _socket.SOCK_STREAM, 0, flags)
    infos.sort(key=lambda info: info[0] != _socket.AF_INET)
    return [(info[0], info[4]) for info in infos]


class Proxy:
    """A chaos proxy listening on *local* and relaying to *distant*.

    *behavior* is a :class:`~vaurien.behavior.Behavior`; it can be replaced
    while the proxy runs with :meth:`set_behavior`. ``start()`` binds the
    listening socket (ConfigError when it cannot); ``serve_forever()``
    serves until ``stop()``.
    """

    def __init__(self, local, distant, behavior, bufsize=65536, timeout=30.0,
                 seed=0, backlog=1024, pick='event', protocol=None):
        self.local = local
        self.distant = distant
        self.behavior = behavior
        self.bufsize = bufsize
        self.timeout = timeout
        self.seed = seed
        self.backlog = backlog
        self.pick_per_connection = pick == 'connection'
        self.protocol = protocol
        self.connections = set()
        self.hung = set()
        self.handlers = {}
        self._buffers = []
        self._seq = 0
        self._changed = Event()
        self._resolved = None
        self.server = None
        self.address = None

    # -- listening ------------------------------------------------------------

    def start(self):
        """Bind and start accepting; ConfigError if the address is unusable."""
        host, port = self.local
        where = format_hostport(self.local)
        try:
            family, sockaddr = resolve(host, port, passive=True)[0]
        except _socket.gaierror as exc:
            raise ConfigError('cannot listen on %s: %s'
                              % (where, exc.strerror or exc)) from None
        try:
            listener = _socket.socket(family, _socket.SOCK_STREAM)
            try:
                listener.setsockopt(_socket.SOL_SOCKET,
                                    _socket.SO_REUSEADDR, 1)
                listener.bind(sockaddr)
                listener.listen(self.backlog)
            except BaseException:
                listener.close()
                raise
        except OSError as exc:
            reason = exc.strerror or str(exc)
            if exc.errno == errno.EADDRINUSE:
                reason = 'address already in use'
            raise ConfigError('cannot listen on %s: %s'
                              % (where, reason.lower())) from None
        listener.setblocking(False)
        self.server = _Server(listener, self._handle)
        self.server.start()
        self.address = listener.getsockname()[:2]
        return self.address

    def serve_forever(self):
        if self.server is None:
            self.start()
        self.server.serve_forever()

    def stop(self, timeout=1):
        """Stop listening, wake sleepers and close every open connection."""
        if self.server is not None:
            self.server.close()
        self._wake()
        for conn in list(self.connections):
            conn.close()
        for conn in list(self.hung):
            conn.close()
        if self.server is not None:
            self.server.stop(timeout=timeout)

    # -- connections ------------------------------------------------------------

    def _handle(self, client, address):
        self._seq += 1
        Connection(self, self._seq, client, address).serve()

    def connect_backend(self, conn):
        """A connected backend :class:`Socket`, or None (warning logged)."""
        host, port = self.distant
        try:
            addresses = self._resolved
            if addresses is None:
                addresses = self._resolved = resolve(host, port)
            last = None
            for family, sockaddr in addresses:
                sock = Socket(family, _socket.SOCK_STREAM)
                sock.settimeout(self.timeout)
                try:
                    sock.connect(sockaddr)
                except OSError as exc:
                    sock.close()
                    last = exc
                    continue
                sock.settimeout(None)
                _nodelay(sock)
                _nodelay(conn.client)
                return sock
            self._resolved = None
            raise last
        except _socket.gaierror as exc:
            reason = 'cannot resolve %r: %s' % (host, exc.strerror or exc)
        except _socket.timeout:
            self._resolved = None
            reason = 'no answer within %gs (--timeout)' % self.timeout
        except OSError as exc:
            self._resolved = None
            reason = (exc.strerror or str(exc)).lower()
        log.warning('backend %s unreachable (%s): closing client %s',
                    format_hostport(self.distant), reason,
                    _peer(conn.address))
        return None

    # -- live changes -------------------------------------------------------------

    def set_behavior(self, behavior):
        """Use *behavior* from the next event on, on every connection.

        Handlers sleeping through ``BaseHandler._sleep`` wake at once and go
        on; hung connections are closed.
        """
        self.behavior = behavior
        self._wake()
        for conn in list(self.hung):
            conn.close()

    def wait_change(self, seconds):
        """Sleep *seconds*, or until the behavior changes or the proxy stops."""
        self._changed.wait(seconds)

    def _wake(self):
        changed, self._changed = self._changed, Event()
        changed.set()


def _nodelay(sock):
    try:
        sock.setsockopt(_socket.IPPROTO_TCP, _socket.TCP_NODELAY, 1)
    except OSError:
        pass


def _peer(address):
    if isinstance(address, tuple) and len(address) >= 2:
        return '%s:%s' % address[:2]
    return str(address)
