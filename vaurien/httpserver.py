"""A small HTTP/1.1 server with hard bounds, for the control API.

It serves one WSGI application (PEP 3333: header values are ``str``
decoded as latin-1, so ``value.encode('latin-1')`` gives back the bytes the
client sent) and guarantees what a general-purpose server leaves to its
configuration:

* a request head (request line and headers) is at most
  :data:`MAX_LINE` bytes a line, :data:`MAX_HEADERS` headers and
  :data:`MAX_HEAD` bytes in all, and must arrive within *timeout* seconds;
  so must a body, and an answer must be taken within *timeout*;
* a body is read only when the application asks for it, and at most
  *max_body* bytes of it: a ``Content-Length`` above that is refused before
  anything is read; an application that answers without reading the body
  (a refusal) has its connection closed, the body unread (after the answer
  the server half-closes and drops what still arrives, 64 KiB or one second
  at most, so that the client's kernel does not turn the close into a
  reset that would lose the answer);
* a malformed request (request line, header, ``Content-Length``, chunk
  size, a body cut short) is answered with a 4xx made by *render_error*,
  then the connection is closed; nothing a client sends reaches the log as
  more than a WARNING, at most one a second;
* at most *max_connections* connections are held: when a new client comes
  and every slot is taken, the connection that has waited longest for a
  request head is closed to make room (slow clients cannot hold the
  server), and accepting never fails loudly for want of descriptors;
* the server keeps *spare* descriptors of its own (``/dev/null`` opened):
  when the process has run out of descriptors (a proxy at its limit), one
  is given up to accept a client, and taken back once that client is gone,
  so the API stays reachable.

*render_error(name, description)* returns ``(status, headers, body)`` for
one of the error names :data:`BAD_REQUEST`, :data:`TOO_LARGE`,
:data:`HEADERS_TOO_LARGE` and :data:`TIMEOUT`.
"""
import errno
import logging
import os
import socket as _stdsocket
import time
from urllib.parse import unquote

import gevent
from gevent import socket as _socket

__all__ = ['HTTPServer', 'ClientError', 'BAD_REQUEST', 'TOO_LARGE',
           'HEADERS_TOO_LARGE', 'TIMEOUT']

log = logging.getLogger('vaurien')

MAX_LINE = 8192
MAX_HEADERS = 100
MAX_HEAD = 64 * 1024

BAD_REQUEST = 'bad_request'
TOO_LARGE = 'body_too_large'
HEADERS_TOO_LARGE = 'headers_too_large'
TIMEOUT = 'request_timeout'

_EXHAUSTED = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}
_TOKEN = frozenset(b"!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyz"
                   b"ABCDEFGHIJKLMNOPQRSTUVWXYZ")
_REASONS = {200: 'OK', 400: 'Bad Request', 401: 'Unauthorized',
            403: 'Forbidden', 404: 'Not Found', 405: 'Method Not Allowed',
            408: 'Request Timeout', 409: 'Conflict',
            413: 'Payload Too Large', 431: 'Request Header Fields Too Large',
            500: 'Internal Server Error', 503: 'Service Unavailable'}


class ClientError(Exception):
    """The client sent something this server does not take: the error's
    *name* (one of the module's error names) and a sentence."""

    def __init__(self, name, description):
        super().__init__(description)
        self.name = name
        self.description = description


class _Gone(Exception):
    """The client closed (or was closed) before a whole request came."""


class _Connection:
    """One client: its socket, the bytes read ahead, its deadline."""

    __slots__ = ('sock', 'buf', 'deadline', 'timeout', 'waiting_since',
                 'spare')

    def __init__(self, sock, timeout, spare=False):
        self.sock = sock
        self.spare = spare       # accepted on a spare descriptor
        self.buf = bytearray()
        self.timeout = timeout
        self.deadline = 0.0
        # Waiting for a request head since (None: busy with a request).
        self.waiting_since = time.monotonic()

    def start_clock(self):
        self.deadline = time.monotonic() + self.timeout

    def fill(self):
        """Receive more before the deadline; _Gone at end of stream."""
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise ClientError(TIMEOUT, 'the request did not arrive within '
                              '%gs' % self.timeout)
        self.sock.settimeout(left)
        try:
            data = self.sock.recv(16384)
        except _stdsocket.timeout:
            raise ClientError(TIMEOUT, 'the request did not arrive within '
                              '%gs' % self.timeout) from None
        except OSError:
            raise _Gone() from None
        if not data:
            raise _Gone()
        self.buf += data

    def line(self, limit, what):
        """One line without its end (CRLF or LF)."""
        start = 0
        while True:
            end = self.buf.find(b'\n', start)
            if end >= 0:
                if end > limit:
                    break
                line = bytes(self.buf[:end])
                del self.buf[:end + 1]
                return line[:-1] if line.endswith(b'\r') else line
            if len(self.buf) > limit:
                break
            start = len(self.buf)
            self.fill()
        raise ClientError(HEADERS_TOO_LARGE, '%s longer than %d bytes'
                          % (what, limit))

    def take(self, size):
        """Up to *size* bytes of what is buffered, else of one read."""
        if not self.buf:
            self.fill()
        data = bytes(self.buf[:size])
        del self.buf[:size]
        return data

    def send(self, data):
        self.sock.settimeout(self.timeout)
        self.sock.sendall(data)


# After an answer that leaves a body unread: most bytes and seconds spent
# dropping what still arrives before the close.
_LINGER_BYTES = 64 * 1024
_LINGER_SECONDS = 1.0


class Body:
    """``wsgi.input``: the request body, read on demand, bounded.

    ``done`` is true once the whole body has been read (or there is none).
    A body cut short, a bad chunk size or more than *limit* bytes raise
    :class:`ClientError`.
    """

    def __init__(self, conn, length, chunked, limit):
        self.conn = conn
        self.left = length or 0       # bytes left (chunked: in this chunk)
        self.chunked = chunked
        self.limit = limit
        self.total = 0
        self.done = not chunked and not length
        self.error = None     # the ClientError raised to the application

    def read(self, size=-1):
        """The body (at most *size* bytes when size >= 0)."""
        try:
            return self._read(size)
        except ClientError as exc:
            # Kept: the answer is this error, whatever the application
            # made of the exception.
            self.error = exc
            raise

    def _read(self, size):
        out = bytearray()
        while not self.done and (size < 0 or len(out) < size):
            if self.left == 0:
                if not self.chunked:
                    self.done = True
                    break
                self._next_chunk()
                continue
            want = self.left if size < 0 else min(self.left, size - len(out))
            try:
                data = self.conn.take(want)
            except _Gone:
                raise ClientError(BAD_REQUEST, 'the body ended after %d '
                                  'bytes' % self.total) from None
            self.left -= len(data)
            self.total += len(data)
            if self.total > self.limit:
                raise ClientError(TOO_LARGE, 'the body is larger than %d '
                                  'bytes' % self.limit)
            out += data
            if self.chunked and self.left == 0:
                self._chunk_end()
        return bytes(out)

    def _next_chunk(self):
        try:
            line = self.conn.line(MAX_LINE, 'a chunk size line')
        except _Gone:
            raise ClientError(BAD_REQUEST, 'the body ended inside its '
                              'chunks') from None
        size = line.split(b';', 1)[0].strip()
        if not size or len(size) > 16 or any(
                c not in b'0123456789abcdefABCDEF' for c in size):
            raise ClientError(BAD_REQUEST, 'bad chunk size %r'
                              % size[:32].decode('latin-1'))
        self.left = int(size, 16)
        if self.total + self.left > self.limit:
            raise ClientError(TOO_LARGE, 'the body is larger than %d bytes'
                              % self.limit)
        if self.left == 0:
            # The trailer: header lines up to an empty one.
            for _ in range(MAX_HEADERS + 1):
                try:
                    if not self.conn.line(MAX_LINE, 'a trailer line'):
                        self.done = True
                        return
                except _Gone:
                    raise ClientError(BAD_REQUEST, 'the body ended inside '
                                      'its trailer') from None
            raise ClientError(HEADERS_TOO_LARGE, 'more than %d trailer '
                              'lines' % MAX_HEADERS)

    def _chunk_end(self):
        try:
            if self.conn.line(2, 'a chunk end'):
                raise ClientError(BAD_REQUEST, 'a chunk is longer than its '
                                  'size')
        except ClientError as exc:
            if exc.name == HEADERS_TOO_LARGE:
                raise ClientError(BAD_REQUEST, 'a chunk is longer than its '
                                  'size') from None
            raise
        except _Gone:
            raise ClientError(BAD_REQUEST, 'the body ended inside its '
                              'chunks') from None


class HTTPServer:
    """Serve *app* (WSGI) on *listener*, a bound, listening socket.

    ``start()`` serves in greenlets; ``stop()`` closes the listener and
    every connection. See the module docstring for the bounds.
    """

    def __init__(self, listener, app, render_error, max_body=64 * 1024,
                 max_connections=32, timeout=5.0, spare=4):
        self.listener = _socket.socket(listener.family, listener.type,
                                       fileno=listener.detach())
        self.address = self.listener.getsockname()
        self.app = app
        self.render_error = render_error
        self.max_body = max_body
        self.max_connections = max_connections
        self.timeout = timeout
        self.connections = {}        # _Connection -> its greenlet
        self._acceptor = None
        self._warned_at = -1.0
        self._unwarned = 0
        self._spares = []
        for _ in range(spare):
            self._take_spare()

    def _take_spare(self):
        try:
            self._spares.append(os.open(os.devnull, os.O_RDONLY))
        except OSError:
            pass

    def start(self):
        self._acceptor = gevent.spawn(self._accept_loop)

    def stop(self):
        """Stop accepting and close every connection."""
        try:
            self.listener.close()
        except OSError:
            pass
        if self._acceptor is not None:
            self._acceptor.kill(block=False)
        for conn in list(self.connections):
            self._close(conn)
        self.connections.clear()
        while self._spares:
            os.close(self._spares.pop())

    # -- accepting ------------------------------------------------------------

    def _accept_loop(self):
        listener = self.listener
        while True:
            spare = False
            try:
                sock, address = listener.accept()
            except OSError as exc:
                if listener.fileno() < 0:
                    return
                if exc.errno not in _EXHAUSTED:
                    gevent.sleep(0.01)
                    continue
                try:
                    sock, address = self._accept_on_spare()
                    spare = True
                except OSError:
                    self.warn('out of file descriptors while accepting')
                    gevent.sleep(0.1)
                    continue
            if len(self.connections) >= self.max_connections \
                    and not self._evict():
                sock.close()
                self.warn('%d connections, all busy: a new client was '
                          'closed' % len(self.connections))
                continue
            conn = _Connection(sock, self.timeout, spare)
            self.connections[conn] = gevent.spawn(self._serve, conn,
                                                  address)

    def _accept_on_spare(self):
        """Give up a spare descriptor and accept in its place (no other
        greenlet runs in between); OSError when none is left."""
        if not self._spares:
            raise OSError(errno.EMFILE, 'no spare descriptor')
        os.close(self._spares.pop())
        try:
            return self.listener.accept()
        except OSError:
            self._take_spare()
            raise

    def _evict(self):
        """Close the connection waiting longest for a request head; False
        when every connection is busy with a request."""
        waiting = [c for c in self.connections if c.waiting_since is not None]
        if not waiting:
            return False
        oldest = min(waiting, key=lambda c: c.waiting_since)
        self._close(oldest)
        self.connections.pop(oldest, None)
        return True

    @staticmethod
    def _close(conn):
        try:
            conn.sock.close()
        except OSError:
            pass

    def warn(self, message):
        """A WARNING about clients, at most one a second."""
        now = time.monotonic()
        if now - self._warned_at >= 1.0:
            more = (' (and %d more since the last warning)' % self._unwarned
                    if self._unwarned else '')
            log.warning('control API: %s%s', message, more)
            self._warned_at = now
            self._unwarned = 0
        else:
            self._unwarned += 1

    # -- one connection ---------------------------------------------------------

    def _serve(self, conn, address):
        try:
            while self._one_request(conn, address):
                pass
            self._linger(conn)
        except _Gone:
            pass
        except OSError:
            pass
        finally:
            self.connections.pop(conn, None)
            self._close(conn)
            if conn.spare:
                self._take_spare()

    @staticmethod
    def _linger(conn):
        """Half-close, then drop what still arrives (bounded), so that the
        close does not become a reset that loses the answer."""
        sock = conn.sock
        sock.shutdown(_stdsocket.SHUT_WR)
        deadline = time.monotonic() + _LINGER_SECONDS
        dropped = 0
        while dropped < _LINGER_BYTES:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            sock.settimeout(left)
            try:
                data = sock.recv(16384)
            except _stdsocket.timeout:
                return
            if not data:
                return
            dropped += len(data)

    def _one_request(self, conn, address):
        """Read, answer; True to keep the connection for another one."""
        conn.waiting_since = time.monotonic()
        conn.start_clock()
        try:
            environ, keep = self._read_head(conn, address)
        except ClientError as exc:
            conn.waiting_since = None
            self._refuse(conn, exc)
            return False
        conn.waiting_since = None
        body = environ['wsgi.input']
        conn.start_clock()
        status, headers, chunks = self._call(environ)
        if not body.done:
            keep = False              # a refusal: the body stays unread
        out = [('%s\r\n' % status).encode('latin-1')]
        for name, value in headers:
            out.append(('%s: %s\r\n' % (name, value)).encode('latin-1'))
        if not keep:
            out.append(b'Connection: close\r\n')
        out.append(b'\r\n')
        if environ['REQUEST_METHOD'] != 'HEAD':
            out.extend(chunks)
        conn.start_clock()
        conn.send(b''.join(out))
        return keep

    def _call(self, environ):
        """Run the application: ``(status line, headers, body chunks)``."""
        answer = []

        def start_response(status, headers, exc_info=None):
            answer[:] = [status, list(headers)]
        body = environ['wsgi.input']
        try:
            chunks = list(self.app(environ, start_response))
        except ClientError:
            chunks = None
        exc = body.error
        if exc is not None:
            self.warn('%s %s: %s' % (environ['REQUEST_METHOD'],
                                     environ['PATH_INFO'], exc.description))
            status, headers, out = self.render_error(exc.name,
                                                     exc.description)
            body.done = False          # close after the answer
            return self._status(status), self._sized(headers, out), [out]
        return 'HTTP/1.1 ' + answer[0], answer[1], chunks

    @staticmethod
    def _status(status):
        return 'HTTP/1.1 %d %s' % (status, _REASONS.get(status, ''))

    @staticmethod
    def _sized(headers, body):
        return [h for h in headers if h[0].lower() != 'content-length'] + [
            ('Content-Length', str(len(body)))]

    def _refuse(self, conn, exc):
        """Answer a malformed request with its 4xx, then close."""
        self.warn(exc.description)
        status, headers, body = self.render_error(exc.name, exc.description)
        out = [('%s\r\n' % self._status(status)).encode('latin-1')]
        for name, value in self._sized(headers, body):
            out.append(('%s: %s\r\n' % (name, value)).encode('latin-1'))
        out.append(b'Connection: close\r\n\r\n')
        out.append(body)
        try:
            conn.start_clock()
            conn.send(b''.join(out))
        except OSError:
            pass

    def _read_head(self, conn, address):
        """The WSGI environ of the next request, and whether the
        connection may be kept after it. _Gone when the client leaves
        before sending anything."""
        line = b''
        while not line:               # empty lines before a request: ok
            try:
                line = conn.line(MAX_LINE, 'the request line')
            except ClientError as exc:
                if exc.name == TIMEOUT and not conn.buf:
                    raise _Gone() from None    # an idle client: just close
                raise
        parts = line.split(b' ')
        if len(parts) != 3 or not parts[0] or not set(parts[0]) <= _TOKEN \
                or not parts[1] or parts[2] not in (b'HTTP/1.1', b'HTTP/1.0'):
            raise ClientError(BAD_REQUEST, 'bad request line %r'
                              % line[:100].decode('latin-1'))
        method, target, version = (p.decode('latin-1') for p in parts)
        headers = []
        size = len(line)
        while True:
            try:
                line = conn.line(MAX_LINE, 'a header line')
            except _Gone:
                raise ClientError(BAD_REQUEST, 'the request head ended '
                                  'early') from None
            if not line:
                break
            size += len(line)
            if len(headers) >= MAX_HEADERS or size > MAX_HEAD:
                raise ClientError(HEADERS_TOO_LARGE, 'more than %d headers '
                                  'or %d bytes of them'
                                  % (MAX_HEADERS, MAX_HEAD))
            name, colon, value = line.partition(b':')
            if not colon or not name or not set(name) <= _TOKEN:
                raise ClientError(BAD_REQUEST, 'bad header line %r'
                                  % line[:100].decode('latin-1'))
            headers.append((name.decode('latin-1').upper().replace('-', '_'),
                            value.strip(b' \t').decode('latin-1')))
        path, _, query = target.partition('?')
        environ = {
            'REQUEST_METHOD': method.upper(),
            'PATH_INFO': unquote(path, 'latin-1'),
            'QUERY_STRING': query,
            'SERVER_PROTOCOL': version,
            'SERVER_NAME': str(self.address[0]),
            'SERVER_PORT': str(self.address[1]),
            'REMOTE_ADDR': str(address[0]) if address else '',
            'wsgi.version': (1, 0),
            'wsgi.url_scheme': 'http',
            'wsgi.errors': None,
            'wsgi.multithread': False,
            'wsgi.multiprocess': False,
            'wsgi.run_once': False,
        }
        length = None
        chunked = False
        connection = ''
        for name, value in headers:
            if name == 'CONTENT_LENGTH':
                if not value.isdigit() or len(value) > 18 or (
                        length is not None and int(value) != length):
                    raise ClientError(BAD_REQUEST, 'bad Content-Length %r'
                                      % value[:40])
                length = int(value)
                environ['CONTENT_LENGTH'] = value
                continue
            if name == 'TRANSFER_ENCODING':
                if value.strip().lower() != 'chunked' or chunked:
                    raise ClientError(BAD_REQUEST, 'unsupported '
                                      'Transfer-Encoding %r' % value[:40])
                chunked = True
            if name == 'CONTENT_TYPE':
                environ['CONTENT_TYPE'] = value
                continue
            if name == 'CONNECTION':
                connection = value.lower()
            key = 'HTTP_' + name
            if key in environ:
                environ[key] += ',' + value
            else:
                environ[key] = value
        if chunked and length is not None:
            raise ClientError(BAD_REQUEST, 'both Content-Length and '
                              'Transfer-Encoding')
        if length is not None and length > self.max_body:
            raise ClientError(TOO_LARGE, 'the body is larger than %d bytes'
                              % self.max_body)
        environ['wsgi.input'] = Body(conn, length, chunked, self.max_body)
        keep = ('close' not in connection if version == 'HTTP/1.1'
                else 'keep-alive' in connection)
        return environ, keep
