"""HTTP/1.x: one message = one request or one response, body included.

Bodies are framed as RFC 9112 says: ``Transfer-Encoding: chunked`` (with
trailers), ``Content-Length``, or, for a response with neither, everything
until the backend closes. Responses to ``HEAD``, ``1xx``, ``204`` and
``304`` have no body; the response parser learns the method of the request
it answers from the connection's session (requests are queued as they pass,
so pipelined requests pair up in order). A ``1xx`` interim response is a
message of its own. After ``101 Switching Protocols`` or a successful
``CONNECT`` the connection is relayed as raw bytes.
"""
import re
from collections import deque

from vaurien.config import format_hostport
from vaurien.protocols.base import BaseProtocol, Malformed, Session

__all__ = ['HTTP']

_MAX_HEAD = 1 << 20
_REQUEST_LINE = re.compile(rb'^([!#$%&\'*+.^_`|~0-9A-Za-z-]+) (\S+) '
                           rb'(HTTP/\d\.\d)$')
_STATUS_LINE = re.compile(rb'^(HTTP/\d\.\d) (\d{3})(?: .*)?$')
_CHUNK_SIZE = re.compile(rb'^\s*([0-9A-Fa-f]+)\s*(?:;.*)?$')

STATUS_TEXT = {
    500: 'Internal Server Error',
    502: 'Bad Gateway',
    503: 'Service Unavailable',
    504: 'Gateway Timeout',
}


class HTTPSession(Session):
    """Per connection: the methods of the requests waiting for a response."""

    def __init__(self):
        super().__init__()
        self.methods = deque()
        self.expect_body = None   # framing of a body sent after 100-continue


class HTTP(BaseProtocol):
    """HTTP/1.0 and 1.1: requests and responses, keep-alive and pipelining.

    Errors: a random ``500``, ``502``, ``503`` or ``504`` with a short text
    body and ``Content-Length``; it carries ``Connection: close`` (and the
    proxy closes the connection after it) when the exchange could not go on
    after it: the real response was close-delimited or said
    ``Connection: close``, or it was an interim ``1xx`` response.
    """
    name = 'http'
    options = {
        'overwrite_host_header': (
            "Rewrite the Host header of every request to the backend's "
            "address (--distant), for backends that serve by name",
            bool, False),
    }

    def __init__(self, settings=None, proxy=None):
        super().__init__(settings, proxy)
        self.overwrite_host = self.option('overwrite_host_header')

    def session(self, conn):
        """A session with the queue of methods awaiting a response."""
        return HTTPSession()

    # -- framing --------------------------------------------------------------

    def _head(self, stream):
        """The start line and the header lines (``[(name, value)]``)."""
        first = yield from stream.line(_MAX_HEAD)
        while not first:          # tolerated: empty lines between messages
            first = yield from stream.line(_MAX_HEAD)
        headers = []
        while True:
            line = yield from stream.line(_MAX_HEAD)
            if not line:
                break
            if stream.pos > _MAX_HEAD:
                raise Malformed('HTTP header block over %d bytes' % _MAX_HEAD)
            if line[:1] in (b' ', b'\t') and headers:   # obsolete folding
                name, value = headers[-1]
                headers[-1] = (name, value + b' ' + line.strip())
                continue
            name, sep, value = line.partition(b':')
            if not sep or not name or name != name.strip():
                raise Malformed('bad HTTP header line %r' % line[:80])
            headers.append((name.lower(), value.strip()))
        return first, headers

    @staticmethod
    def _framing(headers):
        """``('chunked', None)``, ``('length', n)``, ``('close', None)`` or
        ``(None, None)`` when the headers say nothing."""
        encodings = [v for k, v in headers if k == b'transfer-encoding']
        if encodings:
            last = b','.join(encodings).split(b',')[-1].strip().lower()
            return ('chunked', None) if last == b'chunked' else ('close', None)
        lengths = {v for k, v in headers if k == b'content-length'}
        if lengths:
            values = {item.strip() for v in lengths for item in v.split(b',')}
            if len(values) != 1 or not next(iter(values)).isdigit():
                raise Malformed('bad Content-Length %r' % sorted(lengths))
            return 'length', int(next(iter(values)))
        return None, None

    @staticmethod
    def _body(stream, kind, length):
        if kind == 'length':
            yield from stream.skip(length)
        elif kind == 'chunked':
            while True:
                line = yield from stream.line(4096)
                match = _CHUNK_SIZE.match(line)
                if not match:
                    raise Malformed('bad chunk size line %r' % line[:80])
                size = int(match.group(1), 16)
                if size == 0:
                    break
                yield from stream.skip(size)
                end = yield from stream.line(4096)
                if end:
                    raise Malformed('chunk data longer than its size')
            while True:                      # trailers, then an empty line
                line = yield from stream.line(_MAX_HEAD)
                if not line:
                    break
        elif kind == 'close':
            yield from stream.to_eof()

    @staticmethod
    def _keep_alive(version, headers):
        tokens = {t.strip().lower() for k, v in headers if k == b'connection'
                  for t in v.split(b',')}
        if b'close' in tokens:
            return False
        return version == b'HTTP/1.1' or b'keep-alive' in tokens

    def request(self, stream, session):
        """One request: request line, headers, body (never close-delimited)."""
        pending_body = session.expect_body
        if pending_body is not None:
            # The body of a request whose headers waited for 100-continue.
            session.expect_body = None
            yield from self._body(stream, *pending_body)
            return None
        first, headers = yield from self._head(stream)
        match = _REQUEST_LINE.match(first)
        if not match:
            raise Malformed('bad HTTP request line %r' % first[:80])
        method = match.group(1).upper()
        kind, length = self._framing(headers)
        if kind == 'close':
            raise Malformed('request with a Transfer-Encoding other than '
                            'chunked')
        if self.overwrite_host:
            self._rewrite_host(stream)
        session.methods.append(method)
        if kind is not None and any(
                k == b'expect' and v.lower() == b'100-continue'
                for k, v in headers):
            # The client waits for "100 Continue" before it sends the body:
            # the headers are a message, the body the next one.
            session.expect_body = (kind, length)
            return method
        yield from self._body(stream, kind, length)
        return method

    def _rewrite_host(self, stream):
        """Set ``Host:`` to the backend's address in the buffered head."""
        buf = stream.buf
        head_end = stream.pos
        host = format_hostport(self.proxy.distant).encode('ascii') \
            if self.proxy is not None else b''
        lines = bytes(buf[:head_end]).split(b'\n')
        out = [lines[0]]
        done = False
        for line in lines[1:]:
            if line.split(b':', 1)[0].strip().lower() == b'host':
                if not done:
                    out.append(b'Host: ' + host + b'\r')
                    done = True
                continue
            out.append(line)
        if not done:
            out.insert(1, b'Host: ' + host + b'\r')
        stream.replace(0, head_end, b'\n'.join(out))

    def response(self, stream, session):
        """One response; its framing depends on the request it answers."""
        first, headers = yield from self._head(stream)
        match = _STATUS_LINE.match(first)
        if not match:
            raise Malformed('bad HTTP status line %r' % first[:80])
        version, status = match.group(1), int(match.group(2))
        methods = session.methods
        method = methods[0] if methods else b'GET'
        if 100 <= status < 200:
            if status == 101:
                session.raw = True      # another protocol from now on
                if methods:
                    methods.popleft()
            return {'status': status, 'method': method, 'close': False,
                    'interim': True, 'version': version}
        if methods:
            methods.popleft()
        if method == b'CONNECT' and 200 <= status < 300:
            session.raw = True          # a tunnel from now on
            return {'status': status, 'method': method, 'close': True,
                    'interim': False, 'version': version}
        close = not self._keep_alive(version, headers)
        if method == b'HEAD' or status in (204, 304):
            kind, length = None, None
        else:
            kind, length = self._framing(headers)
            if kind is None:
                kind = 'close'
        if kind == 'close':
            close = True
        yield from self._body(stream, kind, length)
        return {'status': status, 'method': method, 'close': close,
                'interim': False, 'version': version}

    def expects_response(self, info):
        """The body sent after a ``100 Continue`` (a message of its own,
        *info* None) gets no response of its own: its head's does."""
        return info is not None

    def final_response(self, info):
        """An interim ``1xx`` is not the last response to its request."""
        return not (info and info.get('interim'))

    # -- errors -------------------------------------------------------------

    def error(self, info, session, rng):
        """A 5xx with correct framing, replacing the response in *info*."""
        if info is None:
            return None
        status = rng.choice(sorted(STATUS_TEXT))
        close = info['close'] or info['interim']
        body = b'' if info['method'] == b'HEAD' else (
            ('vaurien: %d %s (injected error)\n'
             % (status, STATUS_TEXT[status])).encode('ascii'))
        # A response to HEAD has no body; Content-Length: 0 says so plainly.
        length = len(body)
        head = ['HTTP/1.1 %d %s' % (status, STATUS_TEXT[status]),
                'Content-Type: text/plain; charset=utf-8',
                'Content-Length: %d' % length]
        if close:
            head.append('Connection: close')
        return ('\r\n'.join(head) + '\r\n\r\n').encode('ascii') + body, close
