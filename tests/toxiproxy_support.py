"""A real ``vaurien-toxiproxy`` process for the tests, and helpers.

The server listens on 127.0.0.1 port 0 and the port is read back from its
log; proxies are created through its HTTP API (``requests``), listening on
port 0 too.
"""
import os
import re
import signal
import socket
import socketserver
import subprocess
import sys
import threading
import time

import requests

import support

HOST = support.HOST
_URL = re.compile(r'on (http://[0-9.]+:[0-9]+)')


class ToxiproxyServer:
    """``python -m vaurien.toxiproxy_server -port 0 ARGS`` and its API."""

    def __init__(self, *args, seed=1, timeout=15.0):
        argv = [sys.executable, '-m', 'vaurien.toxiproxy_server',
                '-host', HOST, '-port', '0']
        if seed is not None:
            argv += ['-seed', str(seed)]
        argv += [str(a) for a in args]
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE,
                                     env=support.env_with_root())
        self.lines = []
        self.ready = threading.Event()
        self.url = None
        threading.Thread(target=self._read, daemon=True).start()
        if not self.ready.wait(timeout) or self.url is None:
            self.stop()
            raise AssertionError('vaurien-toxiproxy did not start:\n%s'
                                 % self.output())
        self.session = requests.Session()

    def _read(self):
        for raw in iter(self.proc.stderr.readline, b''):
            line = raw.decode('utf-8', 'replace')
            self.lines.append(line)
            match = _URL.search(line)
            if match and self.url is None:
                self.url = match.group(1)
                self.ready.set()
        self.ready.set()

    def output(self):
        return ''.join(self.lines)

    # -- the API --------------------------------------------------------------

    def request(self, method, path, json=None, **kwargs):
        return self.session.request(method, self.url + path, json=json,
                                    timeout=10, **kwargs)

    def create(self, name, upstream, listen='127.0.0.1:0', **fields):
        """Create a proxy; its (host, port) for clients."""
        body = dict(name=name, listen=listen,
                    upstream='%s:%d' % tuple(upstream), **fields)
        answer = self.request('POST', '/proxies', body)
        assert answer.status_code == 201, answer.text
        return address(answer.json()['listen'])

    def add_toxic(self, proxy, type, stream='downstream', **attributes):
        body = {'type': type, 'stream': stream, 'attributes': attributes}
        answer = self.request('POST', '/proxies/%s/toxics' % proxy, body)
        assert answer.status_code == 200, answer.text
        return answer.json()

    def stop(self, timeout=10.0):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def address(listen):
    host, _, port = listen.rpartition(':')
    return host.strip('[]'), int(port)


def exchange(sock, data, size=None, timeout=10.0):
    """Send *data*, read *size* bytes (default len(data)); (bytes, seconds)."""
    size = len(data) if size is None else size
    sock.settimeout(timeout)
    start = time.monotonic()
    sock.sendall(data)
    got = support.recv_exact(sock, size)
    return got, time.monotonic() - start


def connect(addr, timeout=10.0):
    sock = socket.create_connection(addr, timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def read_until_end(sock, timeout=10.0):
    """Read to the end: (bytes, 'eof'|'reset'|'timeout', seconds)."""
    sock.settimeout(timeout)
    start = time.monotonic()
    chunks = []
    how = 'eof'
    try:
        while True:
            data = sock.recv(1 << 16)
            if not data:
                break
            chunks.append(data)
    except ConnectionResetError:
        how = 'reset'
    except socket.timeout:
        how = 'timeout'
    return b''.join(chunks), how, time.monotonic() - start


class Sender:
    """A backend that, on each connection, waits for one request line then
    sends ``pieces`` (a list of bytes), ``gap`` seconds apart, then closes
    (or keeps open with *hold*)."""

    def __init__(self, pieces, gap=0.0, hold=False):
        self.pieces = pieces
        self.gap = gap
        self.hold = hold
        self.server = support.TCPServer(self._handle)
        self.address = self.server.address

    def _handle(self, sock):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            if not sock.recv(1024):
                return
            for index, piece in enumerate(self.pieces):
                if index and self.gap:
                    time.sleep(self.gap)   # the traffic's own pace
                sock.sendall(piece)
            if self.hold:
                sock.recv(1024)
        except OSError:
            pass

    def close(self):
        self.server.close()


def env_root():
    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class _Backlogged(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False
    request_queue_size = 256


class Echo(support.TCPServer):
    """An echo server that takes many simultaneous connections (the
    standard library's backlog of 5 resets some of them)."""

    def __init__(self):
        handler = support.echo

        class Handler(socketserver.BaseRequestHandler):
            def handle(self):
                try:
                    handler(self.request)
                except OSError:
                    pass

        self.connections = 0
        self.server = _Backlogged((HOST, 0), Handler)
        self.port = self.server.server_address[1]
        self.address = (HOST, self.port)
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={'poll_interval': 0.05},
                                       daemon=True)
        self.thread.start()
