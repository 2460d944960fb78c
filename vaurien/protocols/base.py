"""The protocol contract: :class:`BaseProtocol`, :class:`Stream` and the reader.

A protocol cuts each direction of a connection into whole messages, so
that every handler acts per message, and it knows how to answer a request
with an error its clients understand.

Writing one means subclassing :class:`BaseProtocol` and implementing two
generator methods, one per direction::

    class Lines(BaseProtocol):
        name = 'lines'

        def request(self, stream, session):
            yield from stream.line()           # one request = one line

        def response(self, stream, session):
            yield from stream.line()

        def error(self, info, session, rng):
            return b'ERR busy\\r\\n', False     # (bytes, close the connection?)

The generators pull bytes with the :class:`Stream` helpers (``yield from
stream.line()``, ``stream.exact(n)``, ``stream.skip(n)``, ``stream.until(marker)``,
``stream.to_eof()``); the message is everything they consumed. Their return
value is kept as the message's *info* (given back to :meth:`BaseProtocol.error`
for the last response). ``session`` is one object per proxied connection,
shared by its two directions: that is where a response parser learns which
request it answers (the HTTP method, the MySQL command).

A generator raises :class:`Malformed` when the bytes are not its protocol:
the connection then goes on as raw bytes, both ways, with one warning in the
log (the policy is the same for every protocol, see the protocols page).
"""
import logging

from vaurien.config import convert

__all__ = ['BaseProtocol', 'Stream', 'Reader', 'Session', 'Malformed']

log = logging.getLogger('vaurien')

# The longest line (or header block) a parser waits for before it decides
# that the traffic is not its protocol; bodies and values are not bounded.
MAX_LINE = 1 << 20

# The default of --max-message: a message is held whole up to this many
# bytes. Beyond, a pass-through pick sends it on in pieces as it arrives,
# and a handler is given its head, the rest following the handler's
# decision (see Reader), so that memory stays bounded.
STREAM_OVER = 1 << 20


class Malformed(Exception):
    """The bytes on a connection are not the protocol they should be."""


class Session:
    """What the two directions of one connection share (one per connection).

    ``raw`` is true once the connection is relayed as raw bytes (malformed
    traffic, or a switch to TLS or another protocol). Protocols keep their
    own pairing state as attributes of this object; :meth:`BaseProtocol.session`
    can return a richer subclass.
    """

    def __init__(self):
        self.raw = False


class Stream:
    """The buffered bytes of one direction, for a protocol's parsers.

    Each helper is a generator to use with ``yield from``: it yields while it
    needs more bytes (the reader then receives more and resumes it) and
    returns its result. ``pos`` is the end of what the current message has
    consumed so far; the message starts at 0.
    """

    __slots__ = ('buf', 'pos', 'eof', 'want', 'sink', 'over', '_searched')

    def __init__(self, over=STREAM_OVER):
        self.buf = bytearray()
        self.pos = 0
        self.eof = False
        self.want = 0          # bytes a skip is waiting for (bigger reads)
        self.sink = None       # the Reader's: where a long message streams
        self.over = over       # bytes held before the sink gets them
        self._searched = 0

    def line(self, limit=MAX_LINE):
        """One line, without its ``\\r\\n`` (or bare ``\\n``) ending."""
        buf = self.buf
        start = self.pos
        self._searched = start
        while True:
            end = buf.find(b'\n', self._searched)
            if end >= 0:
                self.pos = end + 1
                if end > start and buf[end - 1] == 13:
                    end -= 1
                return bytes(buf[start:end])
            if len(buf) - start > limit:
                raise Malformed('no end of line within %d bytes' % limit)
            self._searched = len(buf)
            if self.sink is not None and start >= self.over:
                # Send on what the message consumed before this line.
                self._spill(start)
                self._searched -= start
                start = 0
            yield

    def exact(self, count):
        """The next *count* bytes (a copy: for small fields)."""
        end = self.pos + count
        while len(self.buf) < end:
            self.want = end - len(self.buf)
            yield
        self.want = 0
        data = bytes(self.buf[self.pos:end])
        self.pos = end
        return data

    def skip(self, count):
        """Consume the next *count* bytes without copying them (bodies).

        When the message is being relayed untouched (``sink`` set), what it
        has consumed so far may be sent on before the skip ends, so that a
        huge body never sits whole in memory: do not keep positions in the
        buffer across a skip.
        """
        remaining = count
        while True:
            buf = self.buf
            available = len(buf) - self.pos
            if available >= remaining:
                break
            if self.sink is not None and len(buf) >= self.over:
                self.sink(buf)
                buf.clear()
                self.pos = 0
                remaining -= available
                self._searched = 0
            self.want = self.pos + remaining - len(self.buf)
            yield
        self.want = 0
        self.pos += remaining

    def until(self, marker, limit=None):
        """Consume up to and including *marker*; returns nothing."""
        buf = self.buf
        searched = self.pos
        while True:
            found = buf.find(marker, searched)
            if found >= 0:
                self.pos = found + len(marker)
                return
            if limit is not None and len(buf) - self.pos > limit:
                raise Malformed('no %r within %d bytes' % (marker, limit))
            searched = max(self.pos, len(buf) - len(marker) + 1)
            if self.sink is not None and searched >= self.over:
                # No marker starts before *searched*: send that much on.
                self._spill(searched)
                searched = 0
            yield

    def to_eof(self):
        """Consume everything until the source ends (close-delimited)."""
        while not self.eof:
            if self.sink is not None and len(self.buf) >= self.over:
                self.sink(self.buf)
                self.buf.clear()
            self.pos = len(self.buf)
            yield
        self.pos = len(self.buf)

    def _spill(self, count):
        """Send the first *count* bytes of the message on (``sink``)."""
        with memoryview(self.buf) as view:
            self.sink(view[:count])
        del self.buf[:count]
        self.pos = max(0, self.pos - count)

    def startswith(self, prefix):
        """Wait for ``len(prefix)`` bytes; True if the message goes on so."""
        end = self.pos + len(prefix)
        while len(self.buf) < end:
            if self.eof:
                return False
            yield
        return self.buf[self.pos:end] == prefix

    def replace(self, start, end, data):
        """Replace ``buf[start:end]`` (already consumed) by *data*."""
        self.buf[start:end] = data
        self.pos += len(data) - (end - start)


class Reader:
    """One direction of one connection, read one whole message at a time.

    This is what the engine calls (``Connection.read`` and the relay loop):
    :meth:`read` returns one whole message (``b''`` at end of stream), and
    :attr:`pending` is true when a complete message (or, in raw mode, any
    byte) is already buffered, so the engine must not wait for the socket.
    Bytes are received through ``sock.recv``, so the engine's end-of-stream
    tracking sees them. After end of stream, an incomplete message is
    returned as it is, so that no byte is ever lost.

    Memory is bounded by *max_message* (``--max-message``): a message
    longer than that is not held whole. :meth:`read` then returns its
    *head* (the first *max_message* bytes or so) and :attr:`streaming`
    becomes true: the rest of the message has not been read yet. A handler
    that reads again gets the next piece of the rest; whatever rest is left
    when the handler returns is finished by the engine with :meth:`finish`
    (sent on, at the pace the destination takes it, or dropped), and
    :meth:`error_reply` reads it to its end, dropping it, so that an error
    replaces the whole message.
    """

    __slots__ = ('protocol', 'conn', 'to_backend', 'sock', 'stream',
                 'pending', 'last', 'streaming', '_gen', '_ready', '_session',
                 'bufsize', '_fast', '_head', 'taken')

    def __init__(self, protocol, conn, to_backend, sock, max_message=None):
        self.protocol = protocol
        self.conn = conn
        self.to_backend = to_backend
        self.sock = sock
        proxy = getattr(conn, 'proxy', None)
        if max_message is None:
            max_message = getattr(proxy, 'max_message', None) or STREAM_OVER
        self.stream = Stream(max_message)
        self.pending = False
        self.last = None         # info of the last message returned
        self.streaming = False   # the last message returned was a head
        self.taken = 0           # bytes read() handed out so far
        self._gen = None
        self._ready = None       # (end, info) of a complete buffered message
        self._session = None
        self._head = None        # a head taken while parsing (see read)
        self._fast = (protocol.fast_request if to_backend
                      else protocol.fast_response)
        self.bufsize = getattr(proxy, 'bufsize', 65536)

    @property
    def session(self):
        """The :class:`Session` shared with the other direction's reader."""
        session = self._session
        if session is None:
            readers = getattr(self.conn, 'readers', None)
            other = None
            if readers is not None and readers[not self.to_backend] is not self:
                other = readers[not self.to_backend]
            if other is not None and other._session is not None:
                session = other._session
            else:
                session = self.protocol.session(self.conn)
                if other is not None:
                    other._session = session
            self._session = session
        return session

    def read(self, size=None):
        """One whole message from the source (``b''`` at end of stream).

        *size* is ignored: a message is returned whole, whatever its size,
        up to *max_message* bytes; a longer one is returned as its head
        (:attr:`streaming` then becomes true), and the next reads return
        the pieces of its rest.
        """
        data = None
        if self.streaming:
            tail = self._pump(self._take_head)
            head = self._head
            if head is not None:
                self._head = None
                data = head
            elif tail or (self.stream.eof and not self.stream.buf):
                data = tail
        if data is None:
            data = self._read(self._take_head)
        self.taken += len(data)
        return data

    def fill(self):
        """Wait for the next message to begin: True once a byte of it is
        buffered, False at the end of stream with nothing left.

        One receive into the buffer the message is parsed from (it needs
        those bytes anyway): this is how the engine finds an end of stream
        before it picks a handler, since an end of stream is never a pick.
        """
        stream = self.stream
        if stream.buf:
            return True
        if not stream.eof:
            self._receive()
        return bool(stream.buf)

    def relay(self, dst):
        """Forward one whole message to *dst* untouched.

        Returns the number of bytes forwarded: 0 at the end of the stream.
        The engine's pass-through: the same as ``dst.sendall(self.read())``,
        except that a message longer than *max_message* (a big body or
        value) goes on in pieces as it arrives instead of being held whole
        in memory.
        """
        streamed = [0]
        sendall = dst.sendall

        def sink(data):
            sendall(data)
            streamed[0] += len(data)
        data = self._read(sink)
        if data:
            sendall(data)
            return streamed[0] + len(data)
        return streamed[0]

    def finish_counted(self, send):
        """:meth:`finish` to *send*; the number of bytes sent."""
        counted = [0]

        def sink(data):
            send(data)
            counted[0] += len(data)
        self.finish(sink)
        return counted[0]

    def finish(self, send):
        """The engine, after a handler returned: the rest of a message
        whose head the handler had goes to ``send`` (``dst.sendall``), or
        is read and dropped when *send* is None. Returns at the message's
        end (or the source's)."""
        sink = send if send is not None else _drop
        while self.streaming:
            tail = self._pump(sink)
            if tail:
                sink(tail)

    def error_reply(self, rng):
        """The protocol's error answering the last message, or None.

        Returns ``(bytes, close)``; *close* means the connection must end
        after the error is sent (the stream could not go on in step). When
        the last message was a head, its rest is read and dropped first,
        so that the error replaces the whole message.
        """
        if self.streaming:
            self.finish(None)
        if self.session.raw:
            return None
        return self.protocol.error(self.last, self.session, rng)

    # -- internals ------------------------------------------------------------

    def _take_head(self, piece):
        """The sink while a handler reads: keep the piece as the head."""
        if self._head is None:
            self._head = bytes(piece)
        else:                           # not expected: one spill per yield
            self._head += piece

    def _read(self, sink):
        """One whole message; a long one goes to *sink* as it is parsed.

        With the handler's sink (:meth:`_take_head`), the first piece stops
        the read: the head is returned and the reader is streaming.
        """
        if self._ready is not None:
            end, info = self._ready
            self._ready = None
            return self._take(end, info)
        stream = self.stream
        session = self.session
        stream.sink = sink
        try:
            while True:
                if session.raw:
                    return self._raw()
                gen = self._gen
                if gen is None:
                    fast = self._fast
                    if fast is not None and stream.buf:
                        try:
                            found = fast(stream.buf, session)
                        except Exception as exc:
                            self._malformed(exc)
                            return self._raw()
                        if found is not None:
                            return self._take(*found)
                    gen = self._gen = self._parser(session)
                try:
                    next(gen)
                except StopIteration as stop:
                    message = self._take(stream.pos, stop.value)
                    head = self._head
                    if head is not None:   # not expected (see _take_head)
                        self._head = None
                        message = head + message
                    return message
                except Exception as exc:    # Malformed, or a parser's slip
                    self._malformed(exc)
                    return self._raw()
                head = self._head
                if head is not None:
                    self._head = None
                    self.streaming = True
                    self.last = None
                    return head
                if stream.eof:
                    # The parser needs more but the source has ended.
                    return self._flush()
                self._receive()
        finally:
            stream.sink = None

    def _receive(self):
        stream = self.stream
        # One buffer (--bufsize) at a time, whatever the parser waits for:
        # a turn of the loop does no more work than that (fairness).
        data = self.sock.recv(self.bufsize)
        if data:
            stream.buf += data
        else:
            stream.eof = True

    def _pump(self, sink):
        """Streaming: parse the rest of the message on, its pieces going to
        *sink*, until the message ends (or, with :meth:`_take_head` as the
        sink, until one piece is taken).

        Returns the message's last bytes (not given to *sink*) when it has
        ended (``streaming`` is then false), else ``b''``.
        """
        stream = self.stream
        stream.sink = sink
        try:
            while True:
                if self.session.raw:
                    self.streaming = False
                    return self._raw()
                try:
                    next(self._gen)
                except StopIteration as stop:
                    self.streaming = False
                    return self._take(stream.pos, stop.value)
                except Exception as exc:    # Malformed, or a parser's slip
                    self.streaming = False
                    self._malformed(exc)
                    return self._raw()
                if self._head is not None:
                    return b''
                if stream.eof:
                    self.streaming = False
                    return self._flush()
                self._receive()
        finally:
            stream.sink = None

    def _parser(self, session):
        if self.to_backend:
            return self.protocol.request(self.stream, session)
        return self.protocol.response(self.stream, session)

    def _take(self, end, info):
        """Cut the first *end* bytes off as a message; pre-parse the next."""
        stream = self.stream
        buf = stream.buf
        self._gen = None
        self.last = info
        if end >= len(buf):
            message = bytes(buf)
            buf.clear()
        else:
            with memoryview(buf) as view:
                message = bytes(view[:end])
            del buf[:end]
        stream.pos = 0
        stream.want = 0
        self.pending = False
        if buf:
            self._preparse()
        elif stream.eof:
            self.pending = False
        return message

    def _preparse(self):
        """Parse what is buffered, without receiving: is a message complete?"""
        session = self.session
        if session.raw:
            self.pending = True
            return
        fast = self._fast
        if fast is not None:
            try:
                found = fast(self.stream.buf, session)
            except Exception as exc:
                self._malformed(exc)
                self.pending = True
                return
            if found is not None:
                self._ready = found
                self.pending = True
                return
        gen = self._gen = self._parser(session)
        try:
            next(gen)
        except StopIteration as stop:
            self._gen = None
            self._ready = (self.stream.pos, stop.value)
            self.pending = True
        except Exception as exc:        # Malformed, or a parser's own slip
            self._gen = None
            self._malformed(exc)
            self.pending = True
        else:
            # Incomplete: the generator keeps its place for the next read,
            # unless the source has ended (then the rest is flushed).
            self.pending = self.stream.eof

    def _raw(self):
        """Raw mode: what is buffered, else one ``recv``."""
        stream = self.stream
        self._gen = None
        self.pending = False
        if stream.buf:
            data = bytes(stream.buf)
            stream.buf.clear()
            stream.pos = 0
            return data
        if stream.eof:
            return b''
        data = self.sock.recv(self.bufsize)
        if not data:
            stream.eof = True
        return data

    def _flush(self):
        """End of stream inside a message: hand over what there is."""
        self.last = None
        return self._raw()

    def _malformed(self, exc):
        """Go raw for the rest of the connection; one warning says why."""
        session = self.session
        if not isinstance(exc, Malformed):
            exc = '%s: %s' % (type(exc).__name__, exc)
        if not session.raw:
            session.raw = True
            seq = getattr(self.conn, 'seq', '?')
            log.warning('protocol %s: connection %s: unexpected %s traffic '
                        '(%s); relaying it as raw bytes from now on',
                        self.protocol.name, seq,
                        'client->backend' if self.to_backend
                        else 'backend->client', exc)


def _drop(data):
    """A sink that drops what it is given."""


class BaseProtocol:
    """Base class of every protocol: subclass it and implement the parsers.

    Class attributes, as for handlers: ``name``, and ``options``
    (``{option name: (description, type, default)}``, every option optional).
    An instance is built with ``settings`` (its option values, converted) and
    ``proxy``; one instance serves every connection, so per-connection state
    lives in the :class:`Session` (see :meth:`session`).

    To implement: :meth:`request` and :meth:`response` (generators over a
    :class:`Stream`), and :meth:`error` for protocol-valid errors.
    """

    name = 'base'
    options = {}

    # Optional fast paths: ``fast_request(buf, session)`` (and
    # ``fast_response``) look at the buffered bytes, without waiting, and
    # return ``(end, info)`` when a whole message is there, None to let the
    # generator parse it (incomplete, or a case the fast path leaves out).
    # They must do exactly what the generators do, only quicker.
    fast_request = None
    fast_response = None

    def __init__(self, settings=None, proxy=None):
        self.settings = {key: spec[2] for key, spec in self.options.items()}
        self.settings.update(settings or {})
        self.proxy = proxy

    def option(self, name):
        """The value of option *name*, converted to its declared type."""
        try:
            return self.settings[name]
        except KeyError:
            raise KeyError('protocol %r has no option %r' % (self.name, name)) \
                from None

    @classmethod
    def check_options(cls, values, label=None):
        """Convert ``{option: raw value}``; ValueError naming what is wrong."""
        label = label or cls.name
        result = {}
        for key, raw in values.items():
            if key not in cls.options:
                valid = ', '.join(sorted(cls.options)) or 'none'
                raise ValueError('protocol %s: unknown option %r (valid '
                                 'options: %s)' % (label, key, valid))
            try:
                result[key] = convert(cls.options[key][1], raw)
            except ValueError as exc:
                raise ValueError('protocol %s: option %r expects %s, got %r'
                                 % (label, key, exc, raw)) from None
        return result

    def reader(self, conn, to_backend, sock):
        """The :class:`Reader` of one direction of *conn* (engine hook)."""
        return Reader(self, conn, to_backend, sock)

    def session(self, conn):
        """A fresh per-connection :class:`Session` (override to extend)."""
        return Session()

    def request(self, stream, session):
        """Generator: consume one client message from *stream*."""
        raise NotImplementedError

    def response(self, stream, session):
        """Generator: consume one backend message from *stream*."""
        raise NotImplementedError

    def expects_response(self, info):
        """Does the request that :meth:`request` returned *info* for get
        a response? (``--pick exchange`` pairs each request with the next
        response in order; a request without one, like memcache's
        ``noreply``, must not take the response of the next.) Yes by
        default."""
        return True

    def final_response(self, info):
        """Is the response that :meth:`response` returned *info* for the
        last one to its request? (An HTTP ``1xx`` is not: the request's
        pick also applies to the response that follows.) Yes by
        default."""
        return True

    def error(self, info, session, rng):
        """``(bytes, close)``: an error to send instead of the last response.

        *info* is what :meth:`response` returned for it. ``None`` means this
        message cannot be replaced (it is forwarded as it is).
        """
        return None

    def __repr__(self):
        return '<%s %r>' % (type(self).__name__, self.name)
