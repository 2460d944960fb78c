"""Real servers and a real ``vaurien`` process, for the tests.

Everything listens on 127.0.0.1 with ports chosen by the kernel and read
back (or held by ``reserved_port`` where a number must be given in
advance); readiness is awaited by polling, never by a fixed sleep.
"""
import contextlib
import hashlib
import http.server
import json
import os
import re
import signal
import socket
import socketserver
import subprocess
import sys
import tempfile
import threading
import time

from vaurien import poll
from vaurien.poll import wait_for

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HOST = '127.0.0.1'


def env_with_root(extra_paths=()):
    """os.environ with this checkout (and *extra_paths*) on PYTHONPATH."""
    env = dict(os.environ)
    paths = [ROOT] + list(extra_paths)
    if env.get('PYTHONPATH'):
        paths.append(env['PYTHONPATH'])
    env['PYTHONPATH'] = os.pathsep.join(paths)
    env.pop('PYTHONWARNINGS', None)
    return env


@contextlib.contextmanager
def reserved_port(host=HOST, kind=socket.SOCK_STREAM):
    """``with reserved_port() as port:`` a port on *host* that is ours.

    For what must be given a port number in advance (``start_proxy``, a
    server's ``--port``): a socket bound to port 0 with SO_REUSEADDR and
    *not* listening holds the port for the whole block. Linux never hands a
    held port to another port-0 bind, and connections to it are refused
    until a server binds it (with SO_REUSEADDR, as vaurien, redis,
    memcached, MariaDB and asyncio all do) and listens: only one socket
    may listen on it. So there is no window in which the port is free, as
    there is when a probed port is released before use.

    With *kind* ``socket.SOCK_DGRAM``, a UDP port where datagrams are
    refused (ICMP port unreachable): the holder is connected to itself, so
    it accepts none from anyone else.
    """
    holder = socket.socket(socket.AF_INET, kind)
    try:
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        holder.bind((host, 0))
        if kind == socket.SOCK_DGRAM:
            holder.connect(holder.getsockname())
        yield holder.getsockname()[1]
    finally:
        holder.close()


def wait_until(predicate, timeout=10.0, interval=0.01, what='condition'):
    """Poll *predicate* until it is truthy; its value, or AssertionError
    (:func:`vaurien.poll.wait_for`)."""
    return wait_for(predicate, timeout, what, interval, AssertionError)


def port_open(port, host=HOST):
    return poll.port_open(host, port)


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def recv_all(sock, limit=None):
    """Read until end of stream (or *limit* bytes); returns bytes."""
    chunks = []
    total = 0
    while limit is None or total < limit:
        data = sock.recv(1 << 20)
        if not data:
            break
        chunks.append(data)
        total += len(data)
    return b''.join(chunks)


def recv_answer(sock, timeout):
    """What *sock* sends until its end of stream, or until it falls silent
    for *timeout* seconds or is reset (for servers that may answer and
    then keep the connection, or cut it)."""
    sock.settimeout(timeout)
    chunks = []
    try:
        while True:
            data = sock.recv(65536)
            if not data:
                break
            chunks.append(data)
    except (socket.timeout, ConnectionResetError):
        pass
    return b''.join(chunks)


# -- servers ---------------------------------------------------------------------

class _ThreadingServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False


class TCPServer:
    """A real threaded TCP server on 127.0.0.1:0 running *handler(sock)*."""

    def __init__(self, handler):
        outer = self
        self.connections = 0

        class Handler(socketserver.BaseRequestHandler):
            def handle(self):
                outer.connections += 1
                try:
                    handler(self.request)
                except OSError:
                    pass

        self.server = _ThreadingServer((HOST, 0), Handler)
        self.port = self.server.server_address[1]
        self.address = (HOST, self.port)
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={'poll_interval': 0.05},
                                       daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def echo(sock):
    """Echo everything until the client half-closes, then close."""
    while True:
        data = sock.recv(1 << 16)
        if not data:
            break
        sock.sendall(data)


def sink_then_hash(sock):
    """Read to end of stream, then answer the sha256 and byte count."""
    digest = hashlib.sha256()
    total = 0
    while True:
        data = sock.recv(1 << 16)
        if not data:
            break
        digest.update(data)
        total += len(data)
    sock.sendall(('%s %d\n' % (digest.hexdigest(), total)).encode())


BODY = b'Hello from the real HTTP backend\n' * 4


class _HTTPHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    disable_nagle_algorithm = True     # no delayed-ACK wait per response

    def do_GET(self):
        if self.path.startswith('/size/'):
            body = b'x' * int(self.path.rsplit('/', 1)[1])
        else:
            body = BODY
        self.send_response(200)
        self.send_header('Content-Type', 'text/plain')
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        length = int(self.headers.get('Content-Length', 0))
        body = self.rfile.read(length)
        self.send_response(200)
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class HTTPServer:
    """A real ``http.server`` (HTTP/1.1, keep-alive) on 127.0.0.1:0."""

    def __init__(self):
        self.server = http.server.ThreadingHTTPServer((HOST, 0), _HTTPHandler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.address = (HOST, self.port)
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={'poll_interval': 0.05},
                                       daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


# -- the vaurien process ---------------------------------------------------------

_LISTENING = re.compile(r'proxying (\S+) -> ')


class VaurienProcess:
    """``python -m vaurien ARGS`` in a subprocess, as a user runs it.

    Listens on 127.0.0.1:0 unless ``--local`` is given; the port is read
    back from the log. ``stop()`` ends it and returns its log.
    """

    def __init__(self, *args, backend=None, cwd=None, extra_paths=(),
                 timeout=15.0, env=None):
        self.logfile = tempfile.NamedTemporaryFile(
            prefix='vaurien-', suffix='.log', delete=False)
        self.logfile.close()
        argv = [sys.executable, '-m', 'vaurien']
        if '--local' not in args:
            argv += ['--local', '%s:0' % HOST]
        if backend is not None:
            argv += ['--distant', '%s:%d' % tuple(backend)]
        if '--log-output' not in args:
            argv += ['--log-output', self.logfile.name]
        argv += list(args)
        self.argv = argv
        run_env = env_with_root(extra_paths)
        if env:
            run_env.update(env)
        self.proc = subprocess.Popen(
            argv, cwd=cwd or ROOT, env=run_env, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.port = None
        try:
            listening = wait_until(self._listening, timeout=timeout,
                                   what='vaurien to listen')
        except AssertionError:
            out = self.stop()
            raise AssertionError('vaurien did not start: %s' % out)
        if listening.startswith('unix:'):
            # A Unix socket: ``address`` is its path.
            self.address = listening[len('unix:'):]
        else:
            host, _, port = listening.rpartition(':')
            self.port = int(port)
            self.address = ('::1' if host == '[::1]' else HOST, self.port)

    def running(self):
        """True while the process has not exited."""
        return self.proc.poll() is None

    def _listening(self):
        if self.proc.poll() is not None:
            raise AssertionError('vaurien exited with %s: %s'
                                 % (self.proc.returncode, self.output()))
        match = _LISTENING.search(self.log())
        return match.group(1) if match else None

    def log(self):
        if getattr(self, '_stopped_text', None) is not None:
            return self._stopped_text
        with open(self.logfile.name, encoding='utf-8', errors='replace') as fh:
            return fh.read()

    def output(self):
        out, err = b'', b''
        if self.proc.poll() is not None:
            out, err = self.proc.communicate(timeout=5)
        return (out + err).decode('utf-8', 'replace') + self.log()

    def connect(self, timeout=10.0):
        if isinstance(self.address, str):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(timeout)
            sock.connect(self.address)
            return sock
        sock = socket.create_connection(self.address, timeout=timeout)
        return sock

    def stop(self, timeout=10.0):
        """Stop with SIGTERM (then SIGKILL); returns everything it printed.

        Calling it again returns the same text.
        """
        if getattr(self, '_stopped_text', None) is not None:
            return self._stopped_text
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                # Open connections get --grace seconds to finish: a second
                # signal cuts them at once, as a user's second Ctrl-C does.
                self.proc.wait(0.3)
            except subprocess.TimeoutExpired:
                self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        out, err = self.proc.communicate(timeout=5)
        text = (out + err).decode('utf-8', 'replace') + self.log()
        try:
            os.unlink(self.logfile.name)
        except OSError:
            pass
        self._stopped_text = text
        return text


def unprivileged_prefix():
    """A command prefix under which file permissions apply, even as root.

    As root, ``setpriv`` drops the capabilities that bypass file
    permissions (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH) for the command;
    as another user nothing is needed. None when neither works here.
    """
    if os.geteuid() != 0:
        return []
    import shutil
    setpriv = shutil.which('setpriv')
    if setpriv is None:
        return None
    prefix = [setpriv, '--bounding-set', '-dac_override,-dac_read_search']
    probe = subprocess.run(prefix + ['true'], capture_output=True)
    return prefix if probe.returncode == 0 else None


def run_cli(*args, timeout=30.0, cwd=None, extra_paths=(), env=None,
            module='vaurien', prefix=()):
    """Run ``python -m MODULE ARGS`` to completion; CompletedProcess (text).

    For ``vaurien`` and ``vaurien.ctl``, the command runs in a process
    forked from this test process's :class:`CLIServer`
    (``tests/cli_server.py``), with the given working directory and
    environment, as ``python -m MODULE`` would run it; with a *prefix*
    (another user) or another *module*, ``python -m MODULE`` is started
    for real.
    """
    run_env = env_with_root(extra_paths)
    if env:
        run_env.update(env)
    argv = [sys.executable, '-m', module] + list(args)
    if prefix or module not in ('vaurien', 'vaurien.ctl'):
        return subprocess.run(list(prefix) + argv,
                              cwd=cwd or ROOT, env=run_env, timeout=timeout,
                              stdin=subprocess.DEVNULL, capture_output=True,
                              text=True)
    answer = CLIServer.get().run(module, list(args), run_env, cwd or ROOT,
                                 timeout)
    if answer.get('timeout'):
        raise subprocess.TimeoutExpired(argv, timeout, answer['stdout'],
                                        answer['stderr'])
    return subprocess.CompletedProcess(argv, answer['returncode'],
                                       answer['stdout'], answer['stderr'])


class CLIServer:
    """``tests/cli_server.py`` started once per test process: it forks a
    child per command run (see there). Thread-safe; ends with the
    process (its input closes)."""

    _lock = threading.Lock()
    _server = None

    @classmethod
    def get(cls):
        with cls._lock:
            server = cls._server
            if server is None or server.proc.poll() is not None:
                server = cls._server = cls()
            return server

    def __init__(self):
        self.lock = threading.Lock()
        self.proc = subprocess.Popen(
            [sys.executable, os.path.join(ROOT, 'tests', 'cli_server.py')],
            cwd=ROOT, env=env_with_root(), stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)

    def run(self, module, argv, env, cwd, timeout):
        request = json.dumps({'module': module, 'argv': argv, 'env': env,
                              'cwd': cwd, 'timeout': timeout}) + '\n'
        with self.lock:
            self.proc.stdin.write(request.encode())
            self.proc.stdin.flush()
            line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError('tests/cli_server.py ended: %s'
                               % self.proc.wait(5))
        return json.loads(line)


# -- helpers for the core tests (engine, handlers, CLI) ----------------------------

def fd_count(pid):
    """How many descriptors process *pid* has open right now (Linux /proc)."""
    return len(os.listdir('/proc/%d/fd' % pid))


def tcp_connections(pid):
    """How many TCP connections (sockets not listening) process *pid* has
    open right now, from /proc/PID/fd and /proc/net/tcp{,6} (Linux)."""
    inodes = set()
    for fd in os.listdir('/proc/%d/fd' % pid):
        try:
            link = os.readlink('/proc/%d/fd/%s' % (pid, fd))
        except OSError:      # closed meanwhile
            continue
        if link.startswith('socket:['):
            inodes.add(link[len('socket:['):-1])
    count = 0
    for table in ('/proc/net/tcp', '/proc/net/tcp6'):
        try:
            with open(table) as fh:
                lines = fh.readlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            # fields[3]: the state, 0A is LISTEN; fields[9]: the inode.
            if fields[9] in inodes and fields[3] != '0A':
                count += 1
    return count


def wait_fds(pid, baseline, timeout=10.0):
    """Poll until process *pid* is back to at most *baseline* descriptors."""
    last = []

    def back():
        last[:] = [fd_count(pid)]
        return last[0] <= baseline
    try:
        wait_until(back, timeout=timeout, what='descriptors back to baseline')
    except AssertionError:
        raise AssertionError('process %d has %d descriptors, baseline %d'
                             % (pid, last[0], baseline)) from None


def recv_exact(sock, size):
    """Read exactly *size* bytes (fewer only if the stream ends first)."""
    chunks = []
    total = 0
    while total < size:
        data = sock.recv(min(size - total, 1 << 20))
        if not data:
            break
        chunks.append(data)
        total += len(data)
    return b''.join(chunks)


def ends_soon(sock, timeout=5.0):
    """True when *sock* reaches end of stream (or reset) within *timeout*.

    Data still arriving is read and ignored.
    """
    sock.settimeout(timeout)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if not sock.recv(1 << 16):
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False
    return False


def write_module(directory, name, source):
    """Write *source* as module *name* (``pkg.mod`` makes packages) under
    *directory*; returns the file path."""
    parts = name.split('.')
    path = str(directory)
    for part in parts[:-1]:
        path = os.path.join(path, part)
        os.makedirs(path, exist_ok=True)
        init = os.path.join(path, '__init__.py')
        if not os.path.exists(init):
            open(init, 'w').close()
    path = os.path.join(path, parts[-1] + '.py')
    with open(path, 'w', encoding='utf-8') as fh:
        fh.write(source)
    return path


class RecordingServer(TCPServer):
    """A TCP server that records, per connection, what it received and
    whether it saw end of stream; it answers with *reply(data)* per read
    (None: no answer) and can push *greeting* on connect.
    """

    def __init__(self, reply=None, greeting=None):
        self.received = []      # one bytearray per connection
        self.eof = []           # one threading.Event per connection
        self.closed_by_peer = threading.Event()
        lock = threading.Lock()

        def handle(sock):
            with lock:
                got, eof = bytearray(), threading.Event()
                self.received.append(got)
                self.eof.append(eof)
            try:
                if greeting:
                    sock.sendall(greeting)
                while True:
                    try:
                        data = sock.recv(1 << 16)
                    except ConnectionResetError:
                        data = b''
                    if not data:
                        break
                    got.extend(data)
                    if reply is not None:
                        answer = reply(data)
                        if answer:
                            sock.sendall(answer)
            finally:
                eof.set()
                self.closed_by_peer.set()
        super().__init__(handle)


def exchange(sock, message):
    """Send *message* and read back as many bytes (an echo backend)."""
    sock.sendall(message)
    return recv_exact(sock, len(message))
