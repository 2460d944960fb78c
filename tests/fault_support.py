"""What the fault handler tests share: recording backends, a client that
tells a reset from a clean close, and the start-up error checks."""
import os
import socket
import tempfile
import threading
import time

from vaurien.config import ConfigError

import support
from inproc import InProcessVaurien

HOST = support.HOST


class Recorder:
    """A real TCP backend that records what each connection sent, and when.

    *reply(sock, data)* answers each piece received (echo by default); at
    end of stream it calls *on_eof(sock)* if given. ``received[i]`` is the
    bytes connection *i* sent; ``times[i]`` lists ``(monotonic, what)``.
    """

    def __init__(self, reply=None, on_connect=None):
        self.received = []
        self.times = []
        self.errors = []
        self.lock = threading.Lock()
        self.reply = reply if reply is not None else \
            (lambda sock, data: sock.sendall(data))
        self.on_connect = on_connect
        self.server = support.TCPServer(self._handle)
        self.address = self.server.address

    def _handle(self, sock):
        with self.lock:
            got = bytearray()
            times = []
            self.received.append(got)
            self.times.append(times)
        if self.on_connect is not None:
            self.on_connect(sock)
        try:
            while True:
                data = sock.recv(1 << 16)
                if not data:
                    times.append((time.monotonic(), 'eof'))
                    break
                times.append((time.monotonic(), len(data)))
                got.extend(data)
                self.reply(sock, data)
        except OSError as exc:
            times.append((time.monotonic(), 'error'))
            self.errors.append(exc)

    def total(self):
        return sum(len(r) for r in self.received)

    def close(self):
        self.server.close()


def read_to_end(sock, timeout=15.0, limit=None):
    """Read until the connection ends.

    Returns ``(data, how, stamps)``: *how* is ``'eof'`` (clean end of
    stream), ``'reset'`` (ECONNRESET) or ``'timeout'`` (nothing more within
    *timeout* seconds); *stamps* is ``[(monotonic, count), ...]`` per read.
    """
    sock.settimeout(timeout)
    chunks, stamps = [], []
    total = 0
    while limit is None or total < limit:
        try:
            data = sock.recv(1 << 16)
        except ConnectionResetError:
            return b''.join(chunks), 'reset', stamps
        except socket.timeout:
            return b''.join(chunks), 'timeout', stamps
        if not data:
            return b''.join(chunks), 'eof', stamps
        stamps.append((time.monotonic(), len(data)))
        chunks.append(data)
        total += len(data)
    return b''.join(chunks), 'limit', stamps


def read_exactly(sock, count, timeout=15.0):
    """Read *count* bytes (AssertionError if the connection ends first)."""
    sock.settimeout(timeout)
    buf = bytearray()
    while len(buf) < count:
        data = sock.recv(count - len(buf))
        assert data, 'connection ended after %d of %d bytes' % (len(buf),
                                                               count)
        buf.extend(data)
    return bytes(buf)


def start_error(*args, ini=None):
    """Start ``vaurien ARGS`` (with an INI file holding *ini* if given) in
    this process (:class:`inproc.InProcessVaurien`, the command's path)
    and return the line the command prints for its failure, asserting it
    failed at start-up with a ConfigError of one line: the command turns
    exactly that, and nothing else, into ``vaurien: error: ...`` and exit
    status 2 (``tests/test_cli.py``); any other exception, a traceback
    for the command, fails here too."""
    path = None
    argv = ['--local', '%s:0' % HOST, '--distant', '%s:1' % HOST]
    if ini is not None:
        fd, path = tempfile.mkstemp(suffix='.ini')
        with os.fdopen(fd, 'w') as fh:
            fh.write(ini)
        argv += ['--config', path]
    try:
        proxy = InProcessVaurien(*(argv + list(args)))
    except ConfigError as exc:
        error = exc
    else:
        raise AssertionError('vaurien started: %s' % proxy.stop())
    finally:
        if path:
            os.unlink(path)
    line = 'vaurien: error: %s' % error
    assert len(line.splitlines()) == 1, line
    return line


def ini_for(behavior, handler, **options):
    """The text of an INI file using *handler* with *options*."""
    lines = ['[vaurien]', 'behavior = %s' % behavior, '',
             '[handler:%s]' % handler]
    lines += ['%s = %s' % item for item in options.items()]
    return '\n'.join(lines) + '\n'


def wait_for(predicate, timeout=10.0, what='condition'):
    return support.wait_until(predicate, timeout=timeout, what=what)


def sender_of(size, byte=b'd'):
    """A backend handler answering any request with *size* bytes."""
    def send(sock):
        if sock.recv(1024):
            sock.sendall(byte * size)
            sock.recv(1024)
    return send


def answer_and_close(sock):
    """A backend handler: read one request, answer "bye", close at once."""
    if sock.recv(1024):
        sock.sendall(b'bye')
