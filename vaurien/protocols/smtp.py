"""SMTP: one message = one command line, one whole reply, or one DATA body.

Replies are framed by their ``NNN-`` continuation lines up to the last
``NNN `` line. After a ``354`` reply, the client's next message is the mail
body up to and including the ``<CRLF>.<CRLF>`` end marker; ``BDAT`` chunks
(RFC 3030) carry their size. Replies pair with commands in order (pipelining
included) through the connection's session; after ``STARTTLS`` is accepted
the connection is relayed as raw bytes (it is TLS from then on).
"""
from collections import deque

from vaurien.protocols.base import BaseProtocol, Malformed, Session

__all__ = ['SMTP']

_MAX_LINE = 1 << 16


class SMTPSession(Session):
    """Per connection: commands awaiting a reply, and the DATA state."""

    def __init__(self):
        super().__init__()
        self.commands = deque()
        self.in_data = False


class SMTP(BaseProtocol):
    """SMTP and ESMTP, with pipelining, DATA bodies and BDAT chunks.

    Errors: the reply is replaced by ``451 4.3.0 vaurien: injected error``
    (a transient failure; ``smtplib`` raises its ``SMTPResponseException``
    family: ``SMTPSenderRefused``, ``SMTPRecipientsRefused``,
    ``SMTPDataError``, ``SMTPConnectError`` for the greeting...). When the
    dialogue could not go on in step (the greeting, the ``354`` go-ahead
    for DATA, the reply to QUIT or STARTTLS), the connection is closed
    after the error, as a server closing on a ``4xx`` would.
    """
    name = 'smtp'

    def session(self, conn):
        """A session pairing replies with commands."""
        return SMTPSession()

    def request(self, stream, session):
        """One command line, a DATA body, or a BDAT chunk."""
        if session.in_data:
            session.in_data = False
            empty = yield from stream.startswith(b'.\r\n')
            if empty:
                yield from stream.skip(3)
            else:
                yield from stream.until(b'\r\n.\r\n')
            session.commands.append(b'.')
            return b'.'
        line = yield from stream.line(_MAX_LINE)
        words = line.split()
        verb = words[0].upper() if words else b''
        if verb == b'BDAT':
            if len(words) < 2 or not words[1].isdigit():
                raise Malformed('bad BDAT line %r' % line[:80])
            yield from stream.skip(int(words[1]))
        session.commands.append(verb)
        return verb

    def response(self, stream, session):
        """One reply, all its lines; notes DATA and STARTTLS go-aheads."""
        code = None
        while True:
            line = yield from stream.line(_MAX_LINE)
            if len(line) < 3 or not line[:3].isdigit() or \
                    (len(line) > 3 and line[3:4] not in b' -'):
                raise Malformed('bad SMTP reply line %r' % line[:80])
            if code is None:
                code = line[:3]
            elif line[:3] != code:
                raise Malformed('SMTP reply lines with different codes')
            if line[3:4] != b'-':
                break
        commands = session.commands
        command = commands.popleft() if commands else None
        if code == b'354':
            session.in_data = True
        elif command == b'STARTTLS' and code == b'220':
            session.raw = True
        return {'code': code, 'command': command}

    def error(self, info, session, rng):
        """``451`` instead of the reply; closing when out of step."""
        if info is None:
            return None
        command = info['command']
        close = (command is None or info['code'] == b'354'
                 or command in (b'QUIT', b'STARTTLS'))
        if info['code'] == b'354':
            session.in_data = False
        text = b'451 4.3.0 vaurien: injected error'
        if close:
            text += b', closing connection'
        return text + b'\r\n', close
