"""The soak probes' backends: ``python -m benchmarks.soak_backend KIND``.

Each listens on 127.0.0.1 with a port chosen by the kernel, prints that
port on one line once it accepts connections, and serves until killed, in
one thread on epoll:

* ``echo``: sends back whatever a connection sends (with back-pressure:
  a connection whose answer is pending is not read), closes after the
  client's end of stream;
* ``http``: HTTP/1.1 keep-alive; every request (its body read and dropped)
  gets ``200`` with the body ``ok``;
* ``sink``: reads every connection to its end and counts; a connection
  that sends only ``?`` is answered the count of the last one that ended;
* ``stall``: accepts and never reads;
* ``mysql``: just enough of a MySQL server: a greeting, OK to the
  handshake response, then OK to every command (COM_QUIT closes); a
  command may be one logical packet of any size (several 0xFFFFFF-byte
  packets), its payload skipped as it comes, never held. The OK to a
  COM_QUERY carries, as its affected-rows count, how many bytes the
  connection has sent so far (headers included);
* ``smtp``: just enough of an ESMTP server: a ``220`` greeting, answers to
  EHLO, HELO, NOOP, MAIL, RCPT, RSET and QUIT, and ``BDAT n [LAST]`` (RFC
  3030): *n* bytes skipped as they come, then ``250`` with their count.
"""
import selectors
import socket
import sys

HOST = '127.0.0.1'
_OK = b'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok'

MYSQL_MAX = 0xFFFFFF             # a payload this long goes on in the next
COM_QUIT = 0x01
COM_QUERY = 0x03
# CLIENT_LONG_PASSWORD, _PROTOCOL_41, _TRANSACTIONS, _SECURE_CONNECTION,
# _PLUGIN_AUTH: a plain 4.1+ server without TLS, compression or
# DEPRECATE_EOF.
MYSQL_CAPS = 0x00000001 | 0x00000200 | 0x00002000 | 0x00008000 | 0x00080000


def mysql_packet(seq, payload):
    """One MySQL packet: 3-byte little-endian length, sequence id, payload."""
    return len(payload).to_bytes(3, 'little') + bytes((seq & 0xFF,)) + payload


def mysql_ok(seq, affected=0):
    """An OK packet (status SERVER_STATUS_AUTOCOMMIT, no warnings)."""
    if affected < 0xFB:
        rows = bytes((affected,))
    elif affected < 1 << 16:
        rows = b'\xfc' + affected.to_bytes(2, 'little')
    elif affected < 1 << 24:
        rows = b'\xfd' + affected.to_bytes(3, 'little')
    else:
        rows = b'\xfe' + affected.to_bytes(8, 'little')
    return mysql_packet(seq, b'\x00' + rows + b'\x00\x02\x00\x00\x00')


# Protocol::HandshakeV10, mysql_native_password, a fixed scramble.
MYSQL_GREETING = mysql_packet(0, b''.join((
    b'\x0a', b'5.7.99-soak\x00', (1).to_bytes(4, 'little'),
    b'abcdefgh\x00', (MYSQL_CAPS & 0xFFFF).to_bytes(2, 'little'),
    b'\x21', (2).to_bytes(2, 'little'),
    (MYSQL_CAPS >> 16).to_bytes(2, 'little'),
    b'\x15', bytes(10), b'ijklmnopqrst\x00', b'mysql_native_password\x00')))

SMTP_GREETING = b'220 soak ESMTP ready\r\n'
_SMTP_EHLO = b'250-soak\r\n250-PIPELINING\r\n250 CHUNKING\r\n'
_SMTP_OK = b'250 2.0.0 OK\r\n'
_SMTP_LINE = 1 << 16


class _Conn:
    __slots__ = ('sock', 'out', 'inbuf', 'body', 'count', 'more', 'command',
                 'seq', 'authed', 'closing')

    def __init__(self, sock):
        self.sock = sock
        self.out = b''
        self.inbuf = b''
        self.body = 0            # payload (or BDAT) bytes still to skip
        self.count = 0
        self.more = False        # mysql: the logical packet goes on
        self.command = None      # mysql: first byte of the logical packet
        self.seq = 0             # mysql: sequence id of the last packet
        self.authed = False      # mysql: handshake response answered
        self.closing = False     # close once the answer is sent


def serve(kind):
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((HOST, 0))
    listener.listen(4096)
    listener.setblocking(False)
    sel = selectors.DefaultSelector()
    sel.register(listener, selectors.EVENT_READ, None)
    sys.stdout.write('%d\n' % listener.getsockname()[1])
    sys.stdout.flush()
    last = [0]
    held = []

    def close(conn):
        conn.closing = True
        sel.unregister(conn.sock)
        conn.sock.close()

    def answer(conn, data):
        conn.out += data
        flush(conn)

    def flush(conn):
        if conn.sock.fileno() < 0:       # closed on an earlier error
            return
        try:
            sent = conn.sock.send(conn.out)
        except BlockingIOError:
            sent = 0
        except OSError:
            close(conn)
            return
        conn.out = conn.out[sent:]
        if conn.closing and not conn.out:
            close(conn)
            return
        sel.modify(conn.sock, selectors.EVENT_WRITE if conn.out
                   else selectors.EVENT_READ, conn)

    def readable(conn):
        try:
            data = conn.sock.recv(1 << 18)
        except BlockingIOError:
            return
        except OSError:
            data = b''
        if not data:
            if kind == 'sink' and conn.count != 1:
                last[0] = conn.count
            close(conn)
            return
        if kind == 'echo':
            answer(conn, data)
        elif kind == 'sink':
            conn.count += len(data)
            if data == b'?' and conn.count == 1:
                conn.sock.setblocking(True)
                conn.sock.sendall(b'%d' % last[0])
                conn.sock.setblocking(False)
        elif kind == 'http':
            http(conn, data)
        elif kind == 'mysql':
            mysql(conn, data)
        elif kind == 'smtp':
            smtp(conn, data)

    def http(conn, data):
        while data:
            if conn.body:
                used = min(conn.body, len(data))
                conn.body -= used
                data = data[used:]
                if not conn.body:
                    answer(conn, _OK)
                continue
            conn.inbuf += data
            data = b''
            end = conn.inbuf.find(b'\r\n\r\n')
            if end < 0:
                return
            head, data = conn.inbuf[:end], conn.inbuf[end + 4:]
            conn.inbuf = b''
            length = 0
            for line in head.split(b'\r\n')[1:]:
                name, _, value = line.partition(b':')
                if name.strip().lower() == b'content-length':
                    length = int(value)
            conn.body = length
            if not length:
                answer(conn, _OK)

    def mysql(conn, data):
        while data and not conn.closing:
            if conn.body:
                used = min(conn.body, len(data))
                if conn.command is None:
                    conn.command = data[0]
                conn.body -= used
                conn.count += used
                data = data[used:]
                if not conn.body and not conn.more:
                    mysql_command(conn)
                continue
            need = 4 - len(conn.inbuf)
            conn.inbuf += data[:need]
            data = data[need:]
            if len(conn.inbuf) < 4:
                return
            header, conn.inbuf = conn.inbuf, b''
            conn.count += 4
            conn.body = int.from_bytes(header[:3], 'little')
            conn.seq = header[3]
            conn.more = conn.body == MYSQL_MAX
            if not conn.body:
                mysql_command(conn)

    def mysql_command(conn):
        """A whole logical packet has come: answer it."""
        seq = conn.seq + 1
        if not conn.authed:
            conn.authed = True
            answer(conn, mysql_ok(seq))
        elif conn.command == COM_QUIT:
            conn.closing = True
            answer(conn, b'')
        elif conn.command == COM_QUERY:
            answer(conn, mysql_ok(seq, conn.count))
        else:
            answer(conn, mysql_ok(seq))
        conn.command = None

    def smtp(conn, data):
        while data and not conn.closing:
            if conn.body:
                used = min(conn.body, len(data))
                conn.body -= used
                conn.count += used
                data = data[used:]
                if not conn.body:
                    answer(conn, b'250 2.0.0 %d octets received\r\n'
                           % conn.count)
                continue
            conn.inbuf += data
            data = b''
            end = conn.inbuf.find(b'\r\n')
            if end < 0:
                if len(conn.inbuf) > _SMTP_LINE:
                    close(conn)
                return
            line, data = conn.inbuf[:end], conn.inbuf[end + 2:]
            conn.inbuf = b''
            smtp_command(conn, line.split())

    def smtp_command(conn, words):
        verb = words[0].upper() if words else b''
        if verb == b'EHLO':
            answer(conn, _SMTP_EHLO)
        elif verb in (b'HELO', b'NOOP', b'MAIL', b'RCPT', b'RSET'):
            answer(conn, _SMTP_OK)
        elif verb == b'QUIT':
            conn.closing = True
            answer(conn, b'221 2.0.0 bye\r\n')
        elif verb == b'BDAT' and len(words) > 1 and words[1].isdigit():
            conn.body = int(words[1])
            conn.count = 0
            if not conn.body:
                answer(conn, b'250 2.0.0 0 octets received\r\n')
        else:
            answer(conn, b'502 5.5.1 not here\r\n')

    greetings = {'mysql': MYSQL_GREETING, 'smtp': SMTP_GREETING}

    while True:
        for key, events in sel.select():
            if key.data is None:
                try:
                    sock, _ = listener.accept()
                except OSError:
                    continue
                if kind == 'stall':
                    held.append(sock)
                    continue
                sock.setblocking(False)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                conn = _Conn(sock)
                sel.register(sock, selectors.EVENT_READ, conn)
                if kind in greetings:
                    answer(conn, greetings[kind])
            elif events & selectors.EVENT_WRITE:
                flush(key.data)
            else:
                readable(key.data)


if __name__ == '__main__':
    try:
        serve(sys.argv[1])
    except KeyboardInterrupt:
        pass
