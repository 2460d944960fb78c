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
* ``stall``: accepts and never reads.
"""
import selectors
import socket
import sys

HOST = '127.0.0.1'
_OK = b'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok'


class _Conn:
    __slots__ = ('sock', 'out', 'inbuf', 'body', 'count')

    def __init__(self, sock):
        self.sock = sock
        self.out = b''
        self.inbuf = b''
        self.body = 0
        self.count = 0


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
        sel.unregister(conn.sock)
        conn.sock.close()

    def answer(conn, data):
        conn.out += data
        flush(conn)

    def flush(conn):
        try:
            sent = conn.sock.send(conn.out)
        except BlockingIOError:
            sent = 0
        except OSError:
            close(conn)
            return
        conn.out = conn.out[sent:]
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
            elif events & selectors.EVENT_WRITE:
                flush(key.data)
            else:
                readable(key.data)


if __name__ == '__main__':
    try:
        serve(sys.argv[1])
    except KeyboardInterrupt:
        pass
