"""MySQL / MariaDB client-server protocol, framed by packet headers.

Every packet starts with a 3-byte little-endian payload length and a
sequence id; a payload of exactly 0xFFFFFF bytes goes on in the next packet
(one logical packet). What one *message* is:

* from the client: one logical packet (a command, a handshake response, a
  chunk of a ``LOAD DATA LOCAL`` file);
* from the server, during the handshake (greeting, authentication switch
  and more-data packets, the final OK or ERR): one packet;
* from the server, in the command phase: one whole logical response, for
  the command that asked for it. A result set (column count, column
  definitions, rows, end marker) is one message, and so are several result
  sets chained by ``SERVER_MORE_RESULTS_EXISTS`` (a ``CALL``). That way
  ``delay`` holds back or ``error`` replaces a whole answer, which is what
  a client sees when a server is slow or fails, and the stream stays in
  step. Commands are paired with responses in order through the session;
  a response to an unknown command is taken packet by packet.

``CLIENT_DEPRECATE_EOF`` is followed (rows then end with an OK packet).
When the client asks for TLS (an SSL request packet), the connection is
relayed as raw bytes from then on. Compression is not supported (a
compressed session is relayed raw, see the malformed-traffic policy).
"""
import struct
from collections import deque

from vaurien.protocols.base import BaseProtocol, Malformed, Session

__all__ = ['MySQL']

MAX_PAYLOAD = 0xFFFFFF
_HEAD = 32                       # payload bytes looked at (status flags...)

CLIENT_SSL = 0x00000800
CLIENT_PROTOCOL_41 = 0x00000200
CLIENT_COMPRESS = 0x00000020
CLIENT_DEPRECATE_EOF = 0x01000000
SERVER_MORE_RESULTS_EXISTS = 0x0008
SERVER_STATUS_CURSOR_EXISTS = 0x0040

COM_QUIT = 0x01
COM_QUERY = 0x03
COM_FIELD_LIST = 0x04
COM_PROCESS_INFO = 0x0A
COM_STATISTICS = 0x09
COM_CHANGE_USER = 0x11
COM_BINLOG_DUMP = 0x12
COM_STMT_PREPARE = 0x16
COM_STMT_EXECUTE = 0x17
COM_STMT_SEND_LONG_DATA = 0x18
COM_STMT_CLOSE = 0x19
COM_STMT_FETCH = 0x1C
COM_BINLOG_DUMP_GTID = 0x1E

_NO_RESPONSE = frozenset((COM_QUIT, COM_STMT_SEND_LONG_DATA, COM_STMT_CLOSE))
_STREAMING = frozenset((COM_BINLOG_DUMP, COM_BINLOG_DUMP_GTID))
_INFILE_DONE = 0x100             # pseudo command: the end of a LOCAL file

# (code, SQL state, message) of the errors injected in the command phase;
# all are errors real servers send under load, reported as server errors.
COMMAND_ERRORS = (
    (1205, b'HY000', b'Lock wait timeout exceeded; try restarting '
                     b'transaction (vaurien: injected error)'),
    (1213, b'40001', b'Deadlock found when trying to get lock; try '
                     b'restarting transaction (vaurien: injected error)'),
    (1317, b'70100', b'Query execution was interrupted (vaurien: injected '
                     b'error)'),
)
HANDSHAKE_ERROR = (1040, b'08004', b'Too many connections (vaurien: '
                                   b'injected error)')


class MySQLSession(Session):
    """Per connection: phase, capabilities and commands awaiting a reply."""

    def __init__(self):
        super().__init__()
        self.handshake = True
        self.greeted = False
        self.client_caps = 0
        self.commands = deque()
        self.infile = False


def _lenenc(data, pos):
    """A length-encoded integer at *pos*: ``(value, next pos)``."""
    first = data[pos]
    if first < 0xFB:
        return first, pos + 1
    if first == 0xFC:
        return struct.unpack_from('<H', data, pos + 1)[0], pos + 3
    if first == 0xFD:
        return int.from_bytes(data[pos + 1:pos + 4], 'little'), pos + 4
    if first == 0xFE:
        return struct.unpack_from('<Q', data, pos + 1)[0], pos + 9
    raise Malformed('bad length-encoded integer')


def packet(stream):
    """Generator: one logical packet; returns ``(seq, length, head)``.

    *head* is at most the first 32 payload bytes (the rest is skipped, not
    copied); *length* is the payload length of the first physical packet.
    """
    header = yield from stream.exact(4)
    length = header[0] | header[1] << 8 | header[2] << 16
    seq = header[3]
    size = min(length, _HEAD)
    head = yield from stream.exact(size)
    yield from stream.skip(length - size)
    more = length
    while more == MAX_PAYLOAD:
        follow = yield from stream.exact(4)
        more = follow[0] | follow[1] << 8 | follow[2] << 16
        yield from stream.skip(more)
    return seq, length, head


def _ok_status(head):
    """Status flags of an OK packet (header 0x00 or 0xFE)."""
    try:
        _, pos = _lenenc(head, 1)
        _, pos = _lenenc(head, pos)
        return struct.unpack_from('<H', head, pos)[0]
    except (IndexError, struct.error):
        return 0


def _eof_status(head, length):
    """Status flags of an EOF packet (or of an OK one ending rows)."""
    if length < 9 and len(head) >= 5:
        return struct.unpack_from('<H', head, 3)[0]
    return _ok_status(head)


def _is_end(head, length, deprecate_eof):
    """Does this packet end a list (an EOF, or an OK in DEPRECATE_EOF)?"""
    if not head or head[0] != 0xFE:
        return False
    return length < MAX_PAYLOAD if deprecate_eof else length < 9


class MySQL(BaseProtocol):
    """MySQL and MariaDB: handshake, commands, result sets, prepared
    statements, multi-result ``CALL``, ``LOAD DATA LOCAL``.

    Errors: an ERR packet with the sequence id of the packet it replaces.
    In the command phase it is a lock wait timeout, a deadlock or an
    interrupted query (PyMySQL raises ``OperationalError``, as every driver
    raises its server-error exception) and the session goes on. During the
    handshake it is "Too many connections" and the connection is closed
    after it, as a server does.
    """
    name = 'mysql'

    def session(self, conn):
        """A session with the phase and the commands awaiting replies."""
        return MySQLSession()

    # -- client -> server ---------------------------------------------------

    def request(self, stream, session):
        """One logical packet from the client."""
        seq, length, head = yield from packet(stream)
        if session.infile:
            if length == 0:             # the empty packet ending the file
                session.infile = False
                session.commands.append(_INFILE_DONE)
            return {'command': None}
        if session.handshake:
            if session.greeted and len(head) >= 4 and seq == 1 \
                    and not session.client_caps:
                caps = struct.unpack_from('<I', head, 0)[0]
                session.client_caps = caps | 1
                if caps & CLIENT_COMPRESS:
                    raise Malformed('compressed protocol is not supported')
                if caps & CLIENT_SSL and length == 32:
                    session.raw = True   # TLS from the next byte on
            return {'command': None}
        command = head[0] if head else None
        if seq != 0 or command is None:
            return {'command': None}
        if command == COM_CHANGE_USER:
            session.handshake = True     # authentication all over again
        elif command not in _NO_RESPONSE:
            session.commands.append(command)
        return {'command': command}

    # -- server -> client ---------------------------------------------------

    def response(self, stream, session):
        """One handshake packet, or one whole response to a command."""
        if session.handshake:
            seq, length, head = yield from packet(stream)
            session.greeted = True
            kind = head[0] if head else None
            if kind == 0x00:
                session.handshake = False
            return {'seq': seq, 'handshake': True, 'kind': kind}
        commands = session.commands
        command = commands.popleft() if commands else None
        deprecate_eof = bool(session.client_caps & CLIENT_DEPRECATE_EOF)
        seq, length, head = yield from packet(stream)
        info = {'seq': seq, 'handshake': False, 'command': command,
                'kind': head[0] if head else None}
        if command in _STREAMING:
            commands.appendleft(command)     # a stream: packet by packet
        elif command in (COM_QUERY, COM_STMT_EXECUTE, COM_PROCESS_INFO):
            yield from self._results(stream, session, head, length,
                                     deprecate_eof)
        elif command == COM_STMT_PREPARE:
            if head[:1] == b'\x00' and len(head) >= 9:
                columns, params = struct.unpack_from('<HH', head, 5)
                for count in (params, columns):
                    if count:
                        for _ in range(count):
                            yield from packet(stream)
                        if not deprecate_eof:
                            yield from packet(stream)
        elif command in (COM_FIELD_LIST, COM_STMT_FETCH):
            while head[:1] != b'\xff' and not _is_end(head, length,
                                                      deprecate_eof):
                _, length, head = yield from packet(stream)
        return info

    def _results(self, stream, session, head, length, deprecate_eof):
        """The rest of one (or several chained) result sets."""
        while True:
            kind = head[0] if head else None
            if kind == 0xFF:
                return
            if kind == 0xFB:                 # LOAD DATA LOCAL: file wanted
                session.infile = True
                return
            if kind == 0x00:
                status = _ok_status(head)
            else:
                columns, _ = _lenenc(head, 0)
                for _ in range(columns):
                    yield from packet(stream)
                if not deprecate_eof:
                    _, length, head = yield from packet(stream)
                    if _eof_status(head, length) & SERVER_STATUS_CURSOR_EXISTS:
                        return     # rows come later, with COM_STMT_FETCH
                while True:
                    _, length, head = yield from packet(stream)
                    if head[:1] == b'\xff':
                        return
                    if _is_end(head, length, deprecate_eof):
                        break
                status = (_ok_status(head) if deprecate_eof
                          else _eof_status(head, length))
            if not status & SERVER_MORE_RESULTS_EXISTS:
                return
            _, length, head = yield from packet(stream)

    # -- errors -------------------------------------------------------------

    def error(self, info, session, rng):
        """An ERR packet with the sequence id of the response it replaces."""
        if info is None or info.get('command') in _STREAMING:
            return None
        if info['handshake']:
            code, state, message = HANDSHAKE_ERROR
            close = True
        else:
            code, state, message = rng.choice(COMMAND_ERRORS)
            # Without the file it asked for, the server would wait forever.
            close = info['kind'] == 0xFB
            if close:
                session.infile = False
        payload = b'\xff' + struct.pack('<H', code) + b'#' + state + message
        header = struct.pack('<I', len(payload))[:3] + bytes((info['seq'],))
        return header + payload, close
