"""Redis (RESP2 and RESP3): one message = one command or one reply.

A command is an array of bulk strings (``*N``) or an inline command (one
line). A reply is one value of any RESP2 or RESP3 type: simple strings,
errors, integers, bulk strings, arrays nested to any depth, and RESP3's
null, double, boolean, big number, bulk error, verbatim string, map, set,
push, attributes (which belong to the value that follows them) and streamed
strings and aggregates. Nesting is followed with a counter stack, not
recursion, so deep nesting costs no Python stack.
"""
from vaurien.protocols.base import BaseProtocol, Malformed

__all__ = ['Redis']

_MAX_LINE = 1 << 16      # Redis itself refuses longer inline commands
_SIMPLE = frozenset(b'+-:_,#(')
_BULK = frozenset(b'$=!')
_AGGREGATE = frozenset(b'*~>')


def _count(line):
    try:
        return int(line[1:])
    except ValueError:
        raise Malformed('bad RESP length %r' % line[:40]) from None


def read_value(stream):
    """Generator: consume one whole RESP value; returns its type byte."""
    stack = [1]
    first = None
    while stack:
        if stack[-1] == 0:
            stack.pop()
            continue
        line = yield from stream.line(_MAX_LINE)
        if not line:
            raise Malformed('empty RESP line')
        kind = line[0]
        if first is None:
            first = kind
        if kind == 0x2e and stack[-1] < 0:       # '.': end of a streamed one
            stack.pop()
            continue
        if stack[-1] > 0:
            stack[-1] -= 1
        if kind in _SIMPLE:
            continue
        if kind in _BULK:
            if line[1:] == b'?':                 # streamed string
                while True:
                    part = yield from stream.line(_MAX_LINE)
                    if part[:1] != b';':
                        raise Malformed('bad streamed string part %r'
                                        % part[:40])
                    size = _count(part)
                    if size == 0:
                        break
                    yield from _bulk_data(stream, size)
                continue
            size = _count(line)
            if size >= 0:
                yield from _bulk_data(stream, size)
            continue
        if kind in _AGGREGATE or kind == 0x25 or kind == 0x7c:   # % |
            if line[1:] == b'?':
                stack.append(-1)
                continue
            size = _count(line)
            if kind in (0x25, 0x7c):
                size *= 2
            if kind == 0x7c and stack[-1] >= 0:
                # An attribute decorates the value after it: one more to read.
                stack[-1] += 1
            if size > 0:
                stack.append(size)
            continue
        raise Malformed('unknown RESP type %r' % line[:40])
    return first


def scan_value(buf, pos=0):
    """Fast path of :func:`read_value` over bytes already buffered.

    Returns ``(end, type byte)`` when a whole value starts at *pos*, or None
    when it is incomplete or takes a rare form (streamed types, odd line
    endings, anything malformed): the generator then decides.
    """
    find = buf.find
    size = len(buf)
    if pos >= size:
        return None
    first = buf[pos]
    remaining = 1
    stack = []
    while True:
        while remaining == 0:
            if not stack:
                return pos, first
            remaining = stack.pop()
        eol = find(b'\n', pos)
        if eol <= pos or buf[eol - 1] != 13:
            return None
        kind = buf[pos]
        remaining -= 1
        if kind in _SIMPLE:
            pos = eol + 1
            continue
        try:
            count = int(buf[pos + 1:eol - 1])
        except ValueError:
            return None
        pos = eol + 1
        if kind in _BULK:
            if count >= 0:
                end = pos + count
                if end + 2 > size:
                    return None
                if buf[end] != 13 or buf[end + 1] != 10:
                    return None
                pos = end + 2
        elif kind in _AGGREGATE or kind == 0x25 or kind == 0x7c:
            if kind == 0x25 or kind == 0x7c:
                count *= 2
            if kind == 0x7c:
                remaining += 1
            if count > 0:
                stack.append(remaining)
                remaining = count
        else:
            return None


def _bulk_data(stream, size):
    yield from stream.skip(size)
    end = yield from stream.exact(2)
    if end != b'\r\n':
        raise Malformed('bulk string longer than its length')


class Redis(BaseProtocol):
    """Redis commands and replies, RESP2 and RESP3, pipelines included.

    Errors: the reply is replaced by ``-ERR vaurien: injected error``, which
    redis-py and every other client report as a ``ResponseError``; the
    connection goes on (each reply is replaced by exactly one). Push
    messages (RESP3 ``>``), which answer no command, are never replaced.
    """
    name = 'redis'

    def request(self, stream, session):
        """One command: an array of bulk strings, or an inline command."""
        star = yield from stream.startswith(b'*')
        if star:
            yield from read_value(stream)
            return b'*'
        yield from stream.line(_MAX_LINE)
        return b'inline'

    def fast_request(self, buf, session):
        """A whole buffered command, without a generator (or None)."""
        if buf[0] == 0x2a:
            found = scan_value(buf)
            return None if found is None else (found[0], b'*')
        eol = buf.find(b'\n')
        return None if eol < 0 else (eol + 1, b'inline')

    def fast_response(self, buf, session):
        """A whole buffered reply, without a generator (or None)."""
        return scan_value(buf)

    def response(self, stream, session):
        """One reply of any type; returns its type byte."""
        return (yield from read_value(stream))

    def error(self, info, session, rng):
        """``-ERR ...`` instead of the reply; pushes pass untouched."""
        if info is None or info == 0x3e:
            return None
        return b'-ERR vaurien: injected error\r\n', False
