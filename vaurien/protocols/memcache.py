"""Memcached text protocol: one message = one command or one whole reply.

Commands: one line, plus its data block for the storage commands (``set``,
``add``, ``replace``, ``append``, ``prepend``, ``cas``) and the meta set
``ms``. Replies: one line (``STORED``, ``NOT_FOUND``, a number, ...), or a
whole retrieval reply (``VALUE`` lines with their data blocks up to
``END``, for ``get``/``gets``/``gat``/``gats`` with any number of keys), a
whole ``stats`` listing up to ``END``, or a meta ``VA`` reply with its data.
Replies frame themselves, so no pairing with the command is needed, and
``noreply`` commands and quiet meta commands are fine. The binary protocol
is not this protocol: it is relayed raw (see the malformed-traffic policy).
"""
from vaurien.protocols.base import BaseProtocol, Malformed

__all__ = ['Memcache']

_MAX_LINE = 1 << 16
_STORAGE = frozenset((b'set', b'add', b'replace', b'append', b'prepend',
                      b'cas'))
_LISTING = (b'STAT ', b'ITEM ', b'PREFIX ')
_END_LISTING = frozenset((b'END', b'ERROR'))


def _size(word):
    if not word.isdigit():
        raise Malformed('bad memcache data length %r' % word[:20])
    return int(word)


def _data_block(stream, size):
    yield from stream.skip(size)
    end = yield from stream.exact(2)
    if end != b'\r\n':
        raise Malformed('memcache data block longer than its length')


def _line(stream):
    line = yield from stream.line(_MAX_LINE)
    if line[:1] == b'\x80' or line[:1] == b'\x81':
        raise Malformed('memcache binary protocol')
    return line


def _scan_line(buf, pos):
    """``(line, next pos)`` of a whole buffered line, else None."""
    eol = buf.find(b'\n', pos)
    if eol < 0:
        return None
    end = eol - 1 if eol > pos and buf[eol - 1] == 13 else eol
    return bytes(buf[pos:end]), eol + 1


def _scan_block(buf, pos, word):
    """The position after a whole buffered data block, else None."""
    if not word.isdigit():
        return None
    end = pos + int(word)
    if end + 2 > len(buf) or buf[end] != 13 or buf[end + 1] != 10:
        return None
    return end + 2


# The info of a request that gets no reply.
_NO_REPLY = b'noreply'
_META = frozenset((b'mg', b'ms', b'md', b'ma'))


def _quiet(command, words):
    """A command that gets no reply: ``noreply``, or a meta command with
    the quiet flag ``q``."""
    if command in _META:
        # mg/md/ma KEY FLAGS..., ms KEY LENGTH FLAGS...
        return b'q' in words[3 if command == b'ms' else 2:]
    return len(words) > 1 and words[-1] == b'noreply'


class Memcache(BaseProtocol):
    """Memcached's text protocol (classic and meta commands).

    Errors: the reply is replaced by ``SERVER_ERROR vaurien: injected
    error``, which pymemcache raises as ``MemcacheServerError`` (other
    clients: their server-error exception); the connection goes on.
    """
    name = 'memcache'

    def request(self, stream, session):
        """One command line, with its data block for storage commands."""
        first = yield from stream.startswith(b'\x80')
        if first:
            raise Malformed('memcache binary protocol')
        line = yield from _line(stream)
        words = line.split()
        command = words[0].lower() if words else b''
        if command in _STORAGE:
            if len(words) < 5:
                raise Malformed('storage command without a length: %r'
                                % line[:80])
            yield from _data_block(stream, _size(words[4]))
        elif command == b'ms':
            if len(words) < 3:
                raise Malformed('meta set without a length: %r' % line[:80])
            yield from _data_block(stream, _size(words[2]))
        return _NO_REPLY if _quiet(command, words) else command

    def fast_request(self, buf, session):
        """A whole buffered command, without a generator (or None)."""
        if buf[0] == 0x80:
            return None
        found = _scan_line(buf, 0)
        if found is None:
            return None
        line, pos = found
        words = line.split()
        command = words[0].lower() if words else b''
        if command in _STORAGE:
            pos = _scan_block(buf, pos, words[4]) if len(words) >= 5 else None
        elif command == b'ms':
            pos = _scan_block(buf, pos, words[2]) if len(words) >= 3 else None
        if pos is None:
            return None
        return pos, _NO_REPLY if _quiet(command, words) else command

    def expects_response(self, info):
        """``noreply`` commands and quiet meta commands (flag ``q``) get
        no reply (a quiet one that fails does: it then passes untouched,
        paired with no request)."""
        return info is not _NO_REPLY

    def fast_response(self, buf, session):
        """A whole buffered reply, without a generator (or None)."""
        found = _scan_line(buf, 0)
        if found is None:
            return None
        line, pos = found
        kind = line.split(b' ', 1)[0]
        if line.startswith((b'VALUE ', b'VA ', b'\x80', b'\x81')) \
                or line.startswith(_LISTING):
            return None          # data blocks and listings: the generator
        return pos, kind

    def response(self, stream, session):
        """One reply line, or a whole VALUE...END / STAT...END reply."""
        line = yield from _line(stream)
        kind = line.split(b' ', 1)[0]
        if line.startswith(b'VALUE '):
            while line.startswith(b'VALUE '):
                words = line.split()
                if len(words) < 4:
                    raise Malformed('bad VALUE line %r' % line[:80])
                yield from _data_block(stream, _size(words[3]))
                line = yield from _line(stream)
            if line != b'END':
                raise Malformed('retrieval reply ends with %r' % line[:80])
        elif line.startswith(_LISTING):
            while line not in _END_LISTING and not line.startswith(
                    (b'SERVER_ERROR', b'CLIENT_ERROR')):
                line = yield from _line(stream)
        elif line.startswith(b'VA '):
            words = line.split()
            if len(words) < 2:
                raise Malformed('bad VA line %r' % line[:80])
            yield from _data_block(stream, _size(words[1]))
        return kind

    def error(self, info, session, rng):
        """``SERVER_ERROR ...`` instead of the reply."""
        if info is None:
            return None
        return b'SERVER_ERROR vaurien: injected error\r\n', False
