"""The private parts of gevent (and greenlet) the engine relies on, in one place.

The engine is fast because it skips gevent's general-purpose layers where
it can: it reads and sends on the OS socket under a gevent socket before
asking gevent to wait, it drives the socket's own libev watchers from loop
callbacks, it accepts without building a throw-away socket object, and its
worker greenlets park on the hub with a raw greenlet switch. None of that
is gevent's public API, so every such use is here and nowhere else:

* :class:`Socket`, gevent's socket with non-blocking-first ``recv``,
  ``recv_into`` and ``sendall``, and the counters the engine reads;
* :func:`raw`, :func:`read_watcher`, :func:`write_watcher`: the OS socket
  and the two watchers of a gevent socket, bound once per connection (never
  looked up per event), :func:`relay_ends` those of both directions of
  a relay at once;
  :func:`wait_read`, :func:`wait_write`: waiting on
  those watchers (the TLS socket of :mod:`vaurien.endpoints` does);
* :class:`LoopServer`: a StreamServer that hands accepted clients to a
  callback right in the loop, as :class:`Socket` objects;
* :func:`new_worker` and :func:`parker`: a greenlet parented to the hub,
  and the raw switch it parks with.

:data:`REQUIRED` lists each private attribute with what it is for;
:func:`missing` checks them against the installed gevent, and the test
suite (``tests/test_gevent_internals.py``) fails naming the attribute when
a gevent upgrade changes one.
"""
import errno
import os as _os
import select as _select
import socket as _socket

from gevent import monkey as _monkey
from gevent.server import StreamServer
from gevent.socket import socket as GeventSocket
from greenlet import greenlet

__all__ = ['Socket', 'LoopServer', 'raw', 'read_watcher', 'write_watcher',
           'relay_ends',
           'wait_read', 'wait_write',
           'new_worker', 'parker', 'close_fd', 'REQUIRED', 'missing']

#: ``(owner, attribute, what it is for)`` for every private name used here.
#: The owner is a class; instance attributes are checked on an instance.
REQUIRED = (
    (GeventSocket, '_sock', 'the OS socket under a gevent socket'),
    (GeventSocket, '_read_event', "the socket's read watcher (libev io)"),
    (GeventSocket, '_write_event', "the socket's write watcher (libev io)"),
    (GeventSocket, '_wait', 'waiting on one of those watchers'),
    (GeventSocket, 'closed', 'whether the gevent socket was closed'),
    (_socket.socket, '_accept', 'accept returning (fd, address)'),
    (StreamServer, 'do_read', 'the hook that accepts one client'),
    (StreamServer, 'do_handle', 'the hook that runs the handler'),
    (StreamServer, 'do_close', 'the hook that closes a handled client'),
    (StreamServer, '_handle', 'the handler StreamServer calls'),
    (greenlet, 'switch', "greenlet's own switch, called on the hub"),
)

_socket_init = GeventSocket.__init__
_recv = GeventSocket.recv
_recv_into = GeventSocket.recv_into
_send = GeventSocket.send
_sendall = GeventSocket.sendall
# Plain ints, not the socket module's MsgFlag members: ``flags & MSG_PEEK``
# on an IntFlag member is a Python-level call (enum's ``__and__``), and
# every read a handler makes tests it.
_MSG_PEEK = int(_socket.MSG_PEEK)
_PEEK = _MSG_PEEK | int(_socket.MSG_DONTWAIT)


class Socket(GeventSocket):
    """A gevent socket that tells the engine what handlers did with it.

    ``conn`` is the engine's connection it belongs to; ``eof`` becomes true
    when a read returned end of stream; ``reads`` counts the reads and
    ``received`` the bytes read (by handlers and by the engine alike);
    ``sent`` the bytes written to it: those :meth:`send` and :meth:`sendall`
    handed to the OS, plus those the engine writes on its fast paths
    (which add their count themselves: one integer add per send). Reads
    and sends try the OS socket first, and wait through gevent only when it
    is not ready.

    Fairness: a read that finds data at once does not wait for the loop, so
    a loop of reads over a fast source would never let other connections
    run. ``hot`` is true after a read; the next read then waits for the
    socket's next readable event first, which comes only after the loop
    has polled every socket (a plain ``gevent.sleep(0)`` would not do: the
    loop runs such callbacks for up to a switch interval before it polls
    again). So whoever reads (the protocol relay, any handler) does at most
    one buffer's worth of work per turn of the loop. A read that had to
    wait leaves ``hot`` true too: in a request-and-answer exchange the next
    read would find nothing yet, and trying it first would cost a failed
    system call every time. :meth:`wait_readable` (the loop has just
    turned) clears ``hot``.
    """
    __slots__ = ('conn', 'eof', 'reads', 'received', 'sent', 'hot')

    # The TLS channel of a vaurien.endpoints.TLSSocket (a subclass); a
    # plain socket has none.
    tls = None

    def __init__(self, family=-1, type=-1, proto=-1, fileno=None):
        _socket_init(self, family, type, proto, fileno)
        self.conn = None
        self.eof = False
        self.reads = 0
        self.received = 0
        self.sent = 0
        self.hot = False

    def recv(self, bufsize, flags=0):
        if self.hot and not flags & _MSG_PEEK:
            self._wait(self._read_event)
        try:
            # Most calls come right after a readable event: try the
            # non-blocking read first, wait (gevent's recv) only if needed.
            data = self._sock.recv(bufsize, flags)
            if not flags & _MSG_PEEK:
                self.hot = True
        except BlockingIOError:
            data = _recv(self, bufsize, flags)
            self.hot = not flags & _MSG_PEEK
        self.reads += 1
        if data:
            if not flags & _MSG_PEEK:
                self.received += len(data)
        elif bufsize:
            self.eof = True
        return data

    def send(self, data, flags=0, *args, **kwargs):
        """gevent's send, counted in ``sent``."""
        count = _send(self, data, flags, *args, **kwargs)
        self.sent += count
        return count

    def sendall(self, data, flags=0):
        """Send all of *data*: one plain send first, which is the whole of
        it nearly always; gevent's sendall (which waits) for any rest. Each
        send is counted in ``sent`` as it is done (gevent's sendall sends
        through :meth:`send`)."""
        try:
            sent = self._sock.send(data, flags)
        except BlockingIOError:
            sent = 0
        self.sent += sent
        if sent < len(data):
            with memoryview(data) as view:
                _sendall(self, view[sent:], flags)

    def recv_into(self, buffer, nbytes=0, flags=0):
        if self.hot and not flags & _MSG_PEEK:
            self._wait(self._read_event)
        try:
            count = self._sock.recv_into(buffer, nbytes, flags)
            if not flags & _MSG_PEEK:
                self.hot = True
        except BlockingIOError:
            count = _recv_into(self, buffer, nbytes, flags)
            self.hot = not flags & _MSG_PEEK
        self.reads += 1
        if count:
            if not flags & _MSG_PEEK:
                self.received += count
        elif nbytes or len(buffer):
            self.eof = True
        return count

    def wait_readable(self):
        """Block this greenlet until the socket is readable (or closed)."""
        self._wait(self._read_event)
        self.hot = False

    def at_eof(self):
        """Peek, without waiting or reading data: has the peer ended its
        side (or the socket failed)?"""
        try:
            return not self._sock.recv(1, _PEEK)
        except (BlockingIOError, InterruptedError):
            return False
        except OSError:
            return True


def wait_read(sock):
    """Block this greenlet until *sock* is readable (or closed, which
    raises in the waiter, as gevent does)."""
    sock._wait(sock._read_event)


def wait_write(sock):
    """Block this greenlet until *sock* is writable (or closed)."""
    sock._wait(sock._write_event)


def raw(sock):
    """The OS-level socket under the gevent socket *sock* (non-blocking):
    bind its methods once, at connection setup."""
    return sock._sock


def read_watcher(sock):
    """The libev io watcher of *sock* for readability:
    ``.start(callback, *args)`` and ``.stop()``, driven from the loop."""
    return sock._read_event


def write_watcher(sock):
    """The libev io watcher of *sock* for writability."""
    return sock._write_event


def relay_ends(a, b):
    """What the two directions of a relay between *a* and *b* drive, in
    one call (made once per connection): ``(from a to b, from b to a)``,
    each ``(read watcher of the source, write watcher of the destination,
    OS socket of the source, OS socket of the destination)``."""
    a_raw, b_raw = a._sock, b._sock
    return ((a._read_event, b._write_event, a_raw, b_raw),
            (b._read_event, a._write_event, b_raw, a_raw))


# accept() failed for want of descriptors (or of kernel memory for them).
EXHAUSTED = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS,
                       errno.ENOMEM})


# LoopServer.do_read's steps within one readable event of the listener:
# the first accept, the poll after it, the accepts of a burst.
_FIRST, _POLL, _BURST = 'first', 'poll', 'burst'


class LoopServer(StreamServer):
    """A StreamServer whose clients are :class:`Socket` objects, handed to
    ``handle(client, address)`` right in the loop (no greenlet is spawned:
    the handle callback must not block). When accepting fails for want of
    descriptors, ``exhausted()`` is called instead of gevent's error
    handling (which prints a traceback).

    *client_socket*, when given, makes the client's socket instead:
    ``client_socket(family, type, fileno)`` (a TLS socket, say)."""

    def __init__(self, listener, handle, exhausted, client_socket=None):
        super().__init__(listener, handle)
        self.exhausted = exhausted
        self.client_socket = client_socket
        # gevent's accept loop calls do_read until it returns None, so
        # every readable event of the listener ends with a failing accept
        # and the BlockingIOError it raises (about 5,000 instructions).
        # Most events bring one client: after the first accept of an
        # event, poll(2) (the same one system call) tells whether another
        # waits; if one does, the rest of the event accepts until the
        # queue is empty, as gevent's loop does.
        self._waiting = _poll()
        self._waiting.register(self.socket.fileno(), _select.POLLIN)
        self._step = _FIRST

    def do_read(self):
        listener = self.socket
        step = self._step
        if step is _POLL:
            if not self._waiting.poll(0):
                self._step = _FIRST
                return None
            self._step = _BURST
        try:
            fd, address = listener._accept()
        except BlockingIOError:
            self._step = _FIRST
            return None
        except OSError as exc:
            self._step = _FIRST
            if exc.errno in EXHAUSTED:
                self.exhausted()
                return None
            raise
        if step is _FIRST:
            self._step = _POLL
        if self.client_socket is not None:
            return self.client_socket(listener.family, listener.type,
                                      fd), address
        return Socket(listener.family, listener.type, 0, fd), address

    def do_handle(self, *args):
        self._handle(*args)

    def do_close(self, *args):
        pass


#: ``select.poll`` as the OS has it (gevent's, under ``monkey.patch_all()``,
#: waits through the hub).
_poll = _monkey.get_original('select', 'poll') if hasattr(
    _monkey, 'get_original') else _select.poll

#: ``os.close`` as the OS has it. Under ``monkey.patch_all()`` (as
#: ``python -m vaurien`` runs), ``os.close`` is gevent's, which first wakes
#: whatever waits on the descriptor and closes it later, from the loop; the
#: engine's splice pipes have no waiters and must be gone with their
#: connection. (``get_original`` is gevent's public API.)
close_fd = _monkey.get_original('os', 'close') if hasattr(
    _monkey, 'get_original') else _os.close


def new_worker(run, hub):
    """A new greenlet running *run*, whose parent is *hub*: when *run*
    returns, control goes back to the event loop."""
    return greenlet(run, parent=hub)


def parker(hub):
    """A function that switches to *hub* (the event loop) and returns what
    the next ``worker.switch(...)`` passes in. It is greenlet's own switch,
    not the hub's override, whose checks a parked worker does not need."""
    return greenlet.switch.__get__(hub)


def missing(required=REQUIRED):
    """The private names of *required* that the installed gevent lacks, as
    one message each (empty when all are there). Instance attributes are
    looked for on a fresh (unbound, unstarted) socket and server."""
    sock = GeventSocket()
    server = StreamServer(('127.0.0.1', 0), lambda *args: None)
    instances = {GeventSocket: sock, StreamServer: server}
    problems = []
    try:
        for owner, attr, what in required:
            instance = instances.get(owner, owner)
            if hasattr(owner, attr) or hasattr(instance, attr):
                continue
            problems.append(
                '%s.%s.%s is gone (%s): vaurien/_gevent.py relies on it, and '
                'this gevent release changed its internals'
                % (owner.__module__, owner.__qualname__, attr, what))
    finally:
        sock.close()
    return problems
