"""``python -m benchmarks soak``: the reliability probes, with their limits.

Each probe starts the ``vaurien`` it finds on ``sys.path`` (the installed
one, or this checkout with ``PYTHONPATH``) as a subprocess, with loopback
backends of its own, drives a hostile or heavy load through it, measures
one figure and compares it with its limit. ``--scale`` shrinks every load
(the tests run each probe at a small scale, in seconds); the full run is
the benchmark that ``docs/reliability.rst`` shows, and ``--rst FILE``
writes its table there.

Every load stays on 127.0.0.1, bounded in count and in time; every process
a probe starts is stopped when it ends, whatever happens.
"""
import argparse
import collections
import ctypes
import hashlib
import json
import os
import random
import re
import resource
import selectors
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

from benchmarks.soak_backend import (COM_QUERY, COM_QUIT, MYSQL_CAPS,
                                     MYSQL_MAX, mysql_ok, mysql_packet)

__all__ = ['PROBES', 'Proxy', 'main', 'run_probe']

HOST = '127.0.0.1'
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MiB = 1 << 20


class ProbeError(Exception):
    """A probe could not run (a process did not start, a tool is missing)."""


def wait_until(predicate, timeout, what, interval=0.01):
    """Poll *predicate* until truthy; its value, or ProbeError."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise ProbeError('timed out after %gs waiting for %s'
                             % (timeout, what))
        time.sleep(interval)


# -- /proc ------------------------------------------------------------------------

def rss(pid):
    """Resident memory of process *pid*, in bytes (0 when gone)."""
    try:
        with open('/proc/%d/statm' % pid) as fh:
            return int(fh.read().split()[1]) * resource.getpagesize()
    except OSError:
        return 0


def fds(pid):
    """Descriptors process *pid* has open."""
    try:
        return len(os.listdir('/proc/%d/fd' % pid))
    except OSError:
        return 0


class PeakRSS:
    """Samples the resident memory of a process in a thread; ``.peak``."""

    def __init__(self, pid, every=0.005):
        self.pid = pid
        self.peak = rss(pid)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(every,),
                                        daemon=True)
        self._thread.start()

    def _run(self, every):
        while not self._stop.wait(every):
            self.peak = max(self.peak, rss(self.pid))

    def stop(self):
        self._stop.set()
        self._thread.join(5)
        self.peak = max(self.peak, rss(self.pid))
        return self.peak


# -- processes ---------------------------------------------------------------------

_LISTENING = re.compile(r'proxying \S+:(\d+) -> ')
_CONTROL = re.compile(r'control API on http://[^:]+:(\d+)')


def _env():
    env = dict(os.environ)
    if os.path.isdir(os.path.join(ROOT, 'vaurien')):
        env['PYTHONPATH'] = os.pathsep.join(
            [ROOT] + ([env['PYTHONPATH']] if env.get('PYTHONPATH') else []))
    return env


def _die_with_parent():
    """In a child, before exec: SIGKILL when the soak run dies (Linux)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)
    except Exception:
        pass


class Proxy:
    """``python -m vaurien ARGS`` listening on 127.0.0.1:0 (port read back
    from its log); ``nofile`` lowers its descriptor limit."""

    def __init__(self, backend, *args, nofile=None, control=False):
        self.logfile = tempfile.NamedTemporaryFile(
            prefix='vaurien-soak-', suffix='.log', delete=False)
        self.logfile.close()
        # --grace 0.2: stopping a probe's proxy must not wait out the 5 s
        # default on connections a probe left stuck on purpose (the drain
        # probe gives its own --grace, which comes later and wins).
        argv = [sys.executable, '-m', 'vaurien', '--local', '%s:0' % HOST,
                '--distant', '%s:%d' % (HOST, backend), '--grace', '0.2',
                '--log-output', self.logfile.name] + list(args)
        if control:
            argv += ['--http', '--http-host', HOST, '--http-port', '0']

        def limit():
            _die_with_parent()
            if nofile:
                resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))
        self.proc = subprocess.Popen(
            argv, env=_env(), stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            preexec_fn=limit, start_new_session=True)
        self.pid = self.proc.pid
        try:
            self.port = int(wait_until(lambda: self._find(_LISTENING), 20,
                                       'vaurien to listen'))
            self.control = (int(wait_until(lambda: self._find(_CONTROL), 20,
                                           'the control API'))
                            if control else None)
        except BaseException:
            self.stop()
            raise
        self.address = (HOST, self.port)

    def _find(self, pattern):
        if self.proc.poll() is not None:
            raise ProbeError('vaurien exited with %s: %s'
                             % (self.proc.returncode, self.stderr()[-800:]))
        match = pattern.search(self.log())
        return match.group(1) if match else None

    def log(self):
        with open(self.logfile.name, encoding='utf-8',
                  errors='replace') as fh:
            return fh.read()

    def stderr(self):
        if self.proc.poll() is None:
            return ''
        return self.proc.stderr.read().decode('utf-8', 'replace')

    def signal(self, sig=signal.SIGTERM):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)

    def stop(self, timeout=15):
        """SIGTERM, then SIGKILL; returns (stderr, log)."""
        self.signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)
        err = self.proc.stderr.read().decode('utf-8', 'replace')
        self.proc.stderr.close()
        text = self.log()
        try:
            os.unlink(self.logfile.name)
        except OSError:
            pass
        return err, text


class Backend:
    """``python -m benchmarks.soak_backend KIND`` (see that module)."""

    def __init__(self, kind, *args):
        self.proc = subprocess.Popen(
            [sys.executable, '-m', 'benchmarks.soak_backend', kind]
            + [str(a) for a in args], env=_env(), cwd=ROOT,
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            start_new_session=True, preexec_fn=_die_with_parent)
        line = self.proc.stdout.readline()
        if not line:
            self.stop()
            raise ProbeError('backend %s did not start' % kind)
        self.port = int(line)
        self.pid = self.proc.pid

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(5)
        self.proc.stdout.close()


class Servers:
    """Debian servers as backends (redis-server, memcached)."""

    def __init__(self, kind):
        listener = socket.socket()
        listener.bind((HOST, 0))
        port = listener.getsockname()[1]
        listener.close()    # the server binds it at once, below
        argv = {'redis': ['redis-server', '--port', str(port), '--bind', HOST,
                          '--save', '', '--appendonly', 'no',
                          '--proto-max-bulk-len', '2gb'],
                'memcache': ['memcached', '-l', HOST, '-p', str(port),
                             '-U', '0', '-u', 'nobody']}[kind]
        try:
            self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL,
                                         start_new_session=True,
                                         preexec_fn=_die_with_parent)
        except FileNotFoundError:
            raise ProbeError('%s is not installed' % argv[0]) from None
        self.port = port

        def up():
            if self.proc.poll() is not None:
                raise ProbeError('%s exited' % argv[0])
            try:
                socket.create_connection((HOST, port), 0.2).close()
                return True
            except OSError:
                return False
        wait_until(up, 10, argv[0])

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(5)


# -- the probes -----------------------------------------------------------------

class Result:
    """One row of the table: a figure measured against its limit."""

    def __init__(self, probe, figure, limit, ok, detail=''):
        self.probe = probe
        self.figure = figure
        self.limit = limit
        self.ok = ok
        self.detail = detail

    def to_json(self):
        return {'probe': self.probe, 'figure': self.figure,
                'limit': self.limit, 'ok': self.ok, 'detail': self.detail}


def _percentile(values, share):
    values = sorted(values)
    if not values:
        return float('inf')
    return values[min(len(values) - 1, int(share * len(values)))]


# -- protocol dialogues ----------------------------------------------------

def _recv_exact(sock, size):
    data = b''
    while len(data) < size:
        more = sock.recv(size - len(data))
        if not more:
            raise ProbeError('the connection ended after %d of %d bytes'
                             % (len(data), size))
        data += more
    return data


def _mysql_read(sock):
    """One MySQL packet: ``(sequence id, payload)``."""
    header = _recv_exact(sock, 4)
    return header[3], _recv_exact(sock, int.from_bytes(header[:3], 'little'))


def _lenenc(data, pos):
    """The length-encoded integer at *pos* of a MySQL payload."""
    first = data[pos]
    if first < 0xFB:
        return first
    width = {0xFC: 2, 0xFD: 3, 0xFE: 8}[first]
    return int.from_bytes(data[pos + 1:pos + 1 + width], 'little')


# Protocol::HandshakeResponse41 of user "soak" with an empty password.
_MYSQL_LOGIN = mysql_packet(1, b''.join((
    MYSQL_CAPS.to_bytes(4, 'little'), (1 << 30).to_bytes(4, 'little'),
    b'\x21', bytes(23), b'soak\x00', b'\x00', b'mysql_native_password\x00')))
_MYSQL_PING = mysql_packet(0, b'\x0e')            # COM_PING
_MYSQL_QUIT = mysql_packet(0, bytes((COM_QUIT,)))


def _mysql_login(sock):
    """Read the greeting, log in, read the OK (blocking)."""
    _, greeting = _mysql_read(sock)
    if greeting[:1] != b'\x0a':
        raise ProbeError('no MySQL greeting: %r' % greeting[:32])
    sock.sendall(_MYSQL_LOGIN)
    _, answer = _mysql_read(sock)
    if answer[:1] != b'\x00':
        raise ProbeError('MySQL login refused: %r' % answer[:64])


def _mysql_command(command, size=None):
    """The pieces of one logical MySQL packet: the byte *command*, then
    zeros up to *size* payload bytes (None: endless), cut into packets of
    0xFFFFFF bytes and a last shorter one (empty when *size* is a multiple
    of 0xFFFFFF), sequence ids counting from 0."""
    zeros = memoryview(bytes(MiB))
    left = size
    seq = 0
    while True:
        length = MYSQL_MAX if left is None else min(left, MYSQL_MAX)
        yield length.to_bytes(3, 'little') + bytes((seq & 0xFF,))
        body = length
        if seq == 0 and length:
            yield bytes((command,))
            body -= 1
        while body:
            yield zeros[:min(body, MiB)]
            body -= min(body, MiB)
        if left is not None:
            left -= length
            if length < MYSQL_MAX:
                return
        seq += 1


def _smtp_reply(sock, code):
    """Read one whole SMTP reply (blocking); ProbeError unless *code*."""
    data = b''
    while True:
        more = sock.recv(4096)
        if not more:
            raise ProbeError('the SMTP server closed: %r' % data[-200:])
        data += more
        last = data.split(b'\r\n')[-2] if data.endswith(b'\r\n') else b''
        if last[3:4] == b' ':
            break
    if not last.startswith(code):
        raise ProbeError('SMTP answered %r' % data[-200:])


def _smtp_hello(sock):
    """Read the greeting and say EHLO (blocking)."""
    _smtp_reply(sock, b'220')
    sock.sendall(b'EHLO soak\r\n')
    _smtp_reply(sock, b'250')


def _messages(header, end=b''):
    """An upload of messages of 1 GiB one after the other, each *header*
    (with its size) then zeros then *end*: endless, and always framed."""
    def pieces():
        zeros = memoryview(bytes(MiB))
        while True:
            yield header % (1 << 30)
            for _ in range(1024):
                yield zeros
            if end:
                yield end
    return pieces


# How each mode's clients talk, for the fairness probe: its --protocol,
# its backend, the full-speed upload (a function giving its pieces), what a
# client says first (a blocking function, or None), the small clients'
# request and how its answer ends.
_Mode = collections.namedtuple(
    '_Mode', 'protocol backend upload greet request ending')
_HTTP_UPLOAD = b'POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n'
_FAIR = {
    'tcp': _Mode(None, 'http', _messages(_HTTP_UPLOAD), None,
                 b'GET /s HTTP/1.1\r\nHost: x\r\n\r\n', b'ok'),
    'http': _Mode('http', 'http', _messages(_HTTP_UPLOAD), None,
                  b'GET /s HTTP/1.1\r\nHost: x\r\n\r\n', b'ok'),
    'redis': _Mode('redis', 'redis', _messages(
        b'*3\r\n$3\r\nSET\r\n$2\r\nup\r\n$%d\r\n', b'\r\n'), None,
        b'*1\r\n$4\r\nPING\r\n', b'+PONG\r\n'),
    'memcache': _Mode('memcache', 'memcache', _messages(
        b'set up 0 0 %d noreply\r\n', b'\r\n'), None,
        b'version\r\n', b'\r\n'),
    # One endless COM_QUERY: packets of 0xFFFFFF bytes, one after another.
    'mysql': _Mode('mysql', 'mysql', lambda: _mysql_command(COM_QUERY),
                   _mysql_login, _MYSQL_PING, mysql_ok(1)),
    'smtp': _Mode('smtp', 'smtp', _messages(b'BDAT %d\r\n'), _smtp_hello,
                  b'NOOP\r\n', b'250 2.0.0 OK\r\n'),
}
_RAW = 'relaying it as raw bytes'    # the log line of a malformed stream


def _backend_for(kind):
    if kind in ('http', 'mysql', 'smtp'):
        return Backend(kind)
    return Servers(kind)


def fairness(scale=1.0, modes=tuple(_FAIR)):
    """Item 1: one full-speed upload and 50 small request/response clients
    through the proxy; the small ones' latency percentiles.

    The upload is one client sending big messages of its protocol back to
    back; each small client, after its protocol's greeting or login, sends
    one small request, waits for its answer, and again. A stream the proxy
    found malformed (relayed raw) fails the row: it would not measure the
    protocol relay."""
    duration = max(1.0, 10 * scale)
    clients = 50
    results = []
    for name in modes:
        mode = _FAIR[name]
        backend = _backend_for(mode.backend)
        args = ['--protocol', mode.protocol] if mode.protocol else []
        proxy = Proxy(backend.port, *args)
        try:
            latencies, uploaded = _fair_run(proxy.address, mode, clients,
                                            duration)
        finally:
            _, log = proxy.stop()
            backend.stop()
        raw = _RAW in log
        p50 = _percentile(latencies, 0.5) * 1000
        p99 = _percentile(latencies, 0.99) * 1000
        results.append(Result(
            'fairness, %s' % name,
            'p50 %.2f ms, p99 %.2f ms (%d requests, upload %.0f MiB/s)%s'
            % (p50, p99, len(latencies), uploaded / duration / MiB,
               '; traffic relayed RAW (malformed)' if raw else ''),
            'p50 <= 2 ms, p99 <= 20 ms', p50 <= 2 and p99 <= 20 and not raw,
            {'p50_ms': p50, 'p99_ms': p99, 'requests': len(latencies),
             'raw': raw}))
    return results


def _fair_run(address, mode, clients, duration):
    """Run *mode*'s upload and small clients for *duration*; returns
    ``(latencies in seconds, bytes uploaded)``."""
    stop = threading.Event()
    uploaded = [0]
    failed = []

    def push():
        try:
            with socket.create_connection(address, 10) as sock:
                if mode.greet:
                    mode.greet(sock)
                sock.settimeout(0.5)
                for piece in mode.upload():
                    view = memoryview(piece)
                    while view:
                        if stop.is_set():
                            return
                        try:
                            sent = sock.send(view)
                        except socket.timeout:
                            continue
                        uploaded[0] += sent
                        view = view[sent:]
        except (OSError, ProbeError) as exc:
            if not stop.is_set():
                failed.append(exc)
    pusher = threading.Thread(target=push, daemon=True)
    pusher.start()
    latencies = []
    sel = selectors.DefaultSelector()
    socks = []
    try:
        # The upload at full speed first.
        wait_until(lambda: uploaded[0] >= 8 * MiB or failed, 20,
                   'the upload to start')
        if failed:
            raise ProbeError('the upload failed: %s' % failed[0])
        for _ in range(clients):
            sock = socket.create_connection(address, 10)
            socks.append(sock)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if mode.greet:
                mode.greet(sock)
            sock.setblocking(False)
            sel.register(sock, selectors.EVENT_READ, [b'', 0.0])
        for sock in socks:
            sel.get_key(sock).data[1] = time.perf_counter()
            sock.send(mode.request)
        deadline = time.monotonic() + duration
        while time.monotonic() < deadline:
            for key, _ in sel.select(0.5):
                state = key.data
                try:
                    data = key.fileobj.recv(65536)
                except BlockingIOError:
                    continue
                if not data:
                    raise ProbeError('a small client was cut')
                state[0] += data
                if state[0].endswith(mode.ending):
                    now = time.perf_counter()
                    latencies.append(now - state[1])
                    state[0] = b''
                    state[1] = now
                    key.fileobj.send(mode.request)
    finally:
        stop.set()
        for sock in socks:
            sock.close()
        sel.close()
        pusher.join(5)
    return latencies, uploaded[0]


# The framing of one big message per protocol, for the memory probes:
# (protocol, header of a message with a SIZE-byte body, its end).
_BIG = {
    'http': (_HTTP_UPLOAD, b''),
    'redis': (b'*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n$%d\r\n', b'\r\n'),
    'memcache': (b'set big 0 0 %d\r\n', b'\r\n'),
    'smtp': (b'BDAT %d LAST\r\n', b''),
}


def big_messages(scale=1.0,
                 protocols=('http', 'redis', 'memcache', 'smtp', 'mysql')):
    """Item 2: one message of ``1 GiB * scale`` per protocol through
    ``100:delay``, to a backend that reads everything; the proxy's peak
    resident memory above its idle one.

    For mysql the message is a COM_QUERY after a login, cut into packets of
    0xFFFFFF bytes and a last shorter one, to a backend that answers OK with
    the count of the bytes it got (the others go to the sink backend, which
    counts them). A stream the proxy found malformed (relayed raw) fails
    the row."""
    size = max(8 * MiB, int((1 << 30) * scale))
    results = []
    for protocol in protocols:
        backend = Backend('mysql' if protocol == 'mysql' else 'sink')
        proxy = Proxy(backend.port, '--protocol', protocol, '--behavior',
                      '100:delay', '--handlers.delay.sleep', '0.05')
        try:
            idle = rss(proxy.pid)
            peak = PeakRSS(proxy.pid)
            start = time.monotonic()
            with socket.create_connection(proxy.address, 30) as sock:
                if protocol == 'mysql':
                    got, expected = _big_mysql(sock, size)
                else:
                    header, end = _BIG[protocol]
                    sock.sendall(header % size)
                    _send_zeros(sock, size)
                    sock.sendall(end)
                    expected = len(header % size) + size + len(end)
                sock.shutdown(socket.SHUT_WR)
                sock.settimeout(max(30.0, size / (20 * MiB)))
                while sock.recv(65536):
                    pass
            elapsed = time.monotonic() - start
            if protocol != 'mysql':
                got = _sink_count(backend)
            above = (peak.stop() - idle) / MiB
        finally:
            _, log = proxy.stop()
            backend.stop()
        raw = _RAW in log
        results.append(Result(
            'message of %d MiB, %s, 100:delay' % (size // MiB, protocol),
            'peak RSS +%.1f MiB, %.0f MiB/s, %s%s' % (
                above, size / elapsed / MiB,
                'byte count exact' if got == expected else
                'backend got %d of %d bytes' % (got, expected),
                '; traffic relayed RAW (malformed)' if raw else ''),
            'peak RSS <= +64 MiB, every byte through',
            above <= 64 and got == expected and not raw,
            {'rss_mib': above, 'raw': raw}))
    return results


def _big_mysql(sock, size):
    """Log in, send one COM_QUERY of *size* payload bytes, read its OK, say
    COM_QUIT; ``(bytes the backend counted, bytes sent)``."""
    _mysql_login(sock)
    sent = len(_MYSQL_LOGIN)
    for piece in _mysql_command(COM_QUERY, size):
        sock.sendall(piece)
        sent += len(piece)
    sock.settimeout(max(30.0, size / (20 * MiB)))
    _, answer = _mysql_read(sock)
    if answer[:1] != b'\x00':
        raise ProbeError('MySQL answered the query with %r' % answer[:64])
    sock.sendall(_MYSQL_QUIT)
    return _lenenc(answer, 1), sent


def _send_zeros(sock, size):
    view = memoryview(bytes(MiB))
    while size >= MiB:
        sock.sendall(view)
        size -= MiB
    if size:
        sock.sendall(view[:size])


def _read_to_end(sock, size=65536):
    """Everything *sock* sends until its end of stream (its timeout
    applies to each read)."""
    chunks = []
    while True:
        more = sock.recv(size)
        if not more:
            return b''.join(chunks)
        chunks.append(more)


def _sink_count(backend):
    """How many bytes the sink backend received on its last connection."""
    with socket.create_connection((HOST, backend.port), 10) as sock:
        sock.sendall(b'?')
        sock.shutdown(socket.SHUT_WR)
        sock.settimeout(30)
        data = _read_to_end(sock, 64)
    return int(data or 0)


def back_pressure(scale=1.0, protocols=('tcp', 'http', 'redis')):
    """Item 2: a backend that never reads; how much a client can push into
    the proxy (``100:delay``) and the proxy's memory meanwhile."""
    seconds = max(1.0, 5 * scale)
    results = []
    for protocol in protocols:
        backend = Backend('stall')
        args = ['--behavior', '100:delay', '--handlers.delay.sleep', '0.01']
        if protocol != 'tcp':
            args += ['--protocol', protocol]
        proxy = Proxy(backend.port, *args)
        pushed = 0
        try:
            idle = rss(proxy.pid)
            peak = PeakRSS(proxy.pid)
            header = (_BIG[protocol][0] % (1 << 36)
                      if protocol != 'tcp' else b'')
            with socket.create_connection(proxy.address, 10) as sock:
                sock.sendall(header)
                sock.setblocking(False)
                chunk = bytes(MiB)
                deadline = time.monotonic() + seconds
                while time.monotonic() < deadline:
                    try:
                        pushed += sock.send(chunk)
                    except BlockingIOError:
                        time.sleep(0.01)
            above = (peak.stop() - idle) / MiB
        finally:
            proxy.stop()
            backend.stop()
        results.append(Result(
            'back-pressure, %s, backend not reading' % protocol,
            'client pushed %.1f MiB in %gs, peak RSS +%.1f MiB'
            % (pushed / MiB, seconds, above),
            'pushed <= 64 MiB, peak RSS <= +64 MiB',
            pushed <= 64 * MiB and above <= 64,
            {'pushed_mib': pushed / MiB, 'rss_mib': above}))
    return results


def churn(scale=1.0):
    """Many short connections, under ``100:dummy`` and under a chaos mix;
    descriptors and resident memory back to the baseline after."""
    count = max(200, int(100000 * scale))
    results = []
    for behavior in ('100:dummy', '20:delay,10:error,10:reset_peer,'
                     '10:abort,10:slicer'):
        backend = Backend('echo')
        proxy = Proxy(backend.port, '--behavior', behavior,
                      '--handlers.delay.sleep', '0.001', '--seed', '1')
        try:
            for _ in range(100):              # warm up: pools and caches
                _short(proxy.address)
            base_fds, base_rss = fds(proxy.pid), rss(proxy.pid)
            start = time.monotonic()
            counters = [[0] for _ in range(8)]
            workers = [threading.Thread(target=_shorts, args=(
                proxy.address, count // 8, counter)) for counter in counters]
            for worker in workers:
                worker.start()
            for worker in workers:
                worker.join(600)
            errors = sum(c[0] for c in counters)
            elapsed = time.monotonic() - start
            try:
                wait_until(lambda: fds(proxy.pid) <= base_fds, 10,
                           'descriptors back')
            except ProbeError:
                pass
            end_fds, end_rss = fds(proxy.pid), rss(proxy.pid)
        finally:
            proxy.stop()
            backend.stop()
        grown = (end_rss - base_rss) / MiB
        results.append(Result(
            '%d short connections, %s' % (count, behavior.split(',')[0]
                                          + (' + chaos mix' if ',' in behavior
                                             else '')),
            '%.0f conn/s; descriptors %d -> %d; RSS %+.1f MiB'
            % (count / elapsed, base_fds, end_fds, grown),
            'descriptors back to baseline, RSS <= +16 MiB',
            end_fds <= base_fds and grown <= 16,
            {'errors': errors}))
    return results


def _short(address):
    with socket.create_connection(address, 10) as sock:
        sock.sendall(b'ping')
        sock.settimeout(10)
        try:
            sock.recv(16)
        except OSError:
            pass


def _shorts(address, count, errors):
    for _ in range(count):
        try:
            _short(address)
        except OSError:
            errors[0] += 1


def transfers(scale=1.0):
    """200 concurrent 4 MiB transfers, each echoed back byte-exact."""
    count = max(10, int(200 * scale))
    size = 4 * MiB if scale >= 0.5 else MiB
    backend = Backend('echo')
    proxy = Proxy(backend.port)
    bad = []
    try:
        start = time.monotonic()
        threads = [threading.Thread(target=_transfer,
                                    args=(proxy.address, size, i, bad))
                   for i in range(count)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(300)
        elapsed = time.monotonic() - start
    finally:
        proxy.stop()
        backend.stop()
    return [Result('%d x %d MiB concurrent transfers' % (count, size // MiB),
                   '%d byte-exact of %d, %.0f MiB/s'
                   % (count - len(bad), count, 2 * count * size / elapsed
                      / MiB),
                   'all byte-exact', not bad)]


def _transfer(address, size, seed, bad):
    data = random.Random(seed).randbytes(size)
    try:
        with socket.create_connection(address, 30) as sock:
            sock.settimeout(60)
            sender = threading.Thread(target=lambda: (
                sock.sendall(data), sock.shutdown(socket.SHUT_WR)))
            sender.start()
            digest = hashlib.sha256()
            total = 0
            while True:
                more = sock.recv(MiB)
                if not more:
                    break
                digest.update(more)
                total += len(more)
            sender.join(60)
        if total != size or digest.digest() != hashlib.sha256(data).digest():
            bad.append(seed)
    except OSError:
        bad.append(seed)


def exhaustion(scale=1.0):
    """Item 5: ``ulimit -n 1024`` and more idle clients than it allows.

    With ``--max-connections auto`` the extra clients wait in the backlog
    and the control API keeps its reserve; with a cap above what the limit
    allows, descriptors run out: about one warning a second, no traceback,
    the control API still answers (its spare descriptors), and clients are
    served again once others leave."""
    nofile = 1024
    idle = max(600, int(1500 * scale))
    seconds = max(2.0, 5 * scale)
    results = []
    for cap in ('auto', '5000'):
        started = time.monotonic()
        backend = Backend('echo')
        proxy = Proxy(backend.port, '--max-connections', cap, nofile=nofile,
                      control=True)
        socks = []
        try:
            for _ in range(idle):
                sock = socket.socket()
                sock.setblocking(False)
                sock.connect_ex(proxy.address)
                socks.append(sock)
            time.sleep(seconds)
            start = time.monotonic()
            api = _http_get(proxy.control, '/proxy')
            api_ms = (time.monotonic() - start) * 1000
            served = _echo_once(socks[0])
            for sock in socks:
                sock.close()
            socks = []
            after = wait_until(lambda: _echo_ok(proxy.address), 10,
                               'a new client served after')
        finally:
            for sock in socks:
                sock.close()
            err, log = proxy.stop()
            backend.stop()
        lasted = time.monotonic() - started
        warnings = log.count('out of file descriptors')
        tracebacks = (err + log).count('Traceback')
        if cap == 'auto':
            ok = api == 200 and not tracebacks and served and after
            limit = 'API answers at once, no traceback'
            figure = 'control API %d in %.0f ms' % (api, api_ms)
        else:
            ok = (api == 200 and not tracebacks and served and after
                  and 1 <= warnings <= lasted + 1)
            limit = 'API answers, ~1 warning/s, no traceback'
            figure = ('control API %d in %.0f ms; %d warnings in %.0f s'
                      % (api, api_ms, warnings, lasted))
        results.append(Result(
            '%d idle clients, ulimit -n %d, --max-connections %s'
            % (idle, nofile, cap),
            '%s; %d tracebacks; first client served: %s' % (
                figure, tracebacks, served), limit, ok))
    return results


def _echo_once(sock):
    try:
        sock.setblocking(True)
        sock.settimeout(5)
        sock.sendall(b'hello')
        return sock.recv(16) == b'hello'
    except OSError:
        return False


def _echo_ok(address):
    # 5 s: a loaded machine (the test suite's own workers) can stall a
    # round trip for a second or two; a reset or refusal fails at once.
    try:
        with socket.create_connection(address, 5) as sock:
            return _echo_once(sock)
    except OSError:
        return False


def _echo(address):
    """One echo exchange on a new connection: ``'ok'``, ``'reset'`` (the
    connection was reset, on connect, send or read) or ``'failed'``
    (refused, timed out, ended without the echo, a wrong echo)."""
    try:
        with socket.create_connection(address, 5) as sock:
            sock.settimeout(5)
            sock.sendall(b'hello')
            return 'ok' if sock.recv(16) == b'hello' else 'failed'
    except (ConnectionResetError, BrokenPipeError):
        return 'reset'
    except OSError:
        return 'failed'


def _http_get(port, path):
    try:
        with socket.create_connection((HOST, port), 5) as sock:
            sock.settimeout(5)
            sock.sendall(b'GET %s HTTP/1.1\r\nHost: %s:%d\r\n'
                         b'Connection: close\r\n\r\n'
                         % (path.encode(), HOST.encode(), port))
            data = _read_to_end(sock)
        return int(data.split(b' ', 2)[1])
    except (OSError, ValueError, IndexError):
        return 0


def drain(scale=1.0):
    """Item 6: requests held in a ``delay`` when SIGTERM comes all finish;
    a connection still open after ``--grace`` is reset (RST)."""
    count = max(5, int(20 * scale))
    backend = Backend('echo')
    proxy = Proxy(backend.port, '--behavior', '100:delay',
                  '--handlers.delay.sleep', '0.5', '--grace', '3')
    answered = []
    try:
        held = []
        for i in range(count):
            sock = socket.create_connection(proxy.address, 5)
            sock.sendall(b'req%03d' % i)
            held.append(sock)
        idle = socket.create_connection(proxy.address, 5)   # never ends
        time.sleep(0.1)         # the requests reach their delay
        proxy.signal(signal.SIGTERM)
        for i, sock in enumerate(held):
            sock.settimeout(5)
            try:
                answered.append(sock.recv(16) == b'req%03d' % i)
            except OSError:
                answered.append(False)
            sock.close()
        idle.settimeout(10)
        try:
            cut = idle.recv(16) == b'' and 'fin'
        except ConnectionResetError:
            cut = 'rst'
        except OSError:
            cut = 'timeout'
        idle.close()
        refused = not _echo_ok(proxy.address)
    finally:
        err, log = proxy.stop()
        backend.stop()
    match = re.search(r'(\d+) connections drained, (\d+) cut', log)
    ok = (all(answered) and cut == 'rst' and refused and match is not None
          and match.group(1) == str(count) and match.group(2) == '1')
    return [Result('SIGTERM with %d requests held in delay' % count,
                   '%d of %d answered; the idle one: %s; new clients '
                   'refused: %s; log: %s' % (
                       sum(answered), count, cut, refused,
                       match.group(0) if match else 'no drain line'),
                   'all answered, the rest reset (RST)', ok)]


_FUZZ_METHODS = ['GET', 'POST', 'PUT', 'DELETE', 'HEAD', 'OPTIONS', 'PATCH',
                 'get', 'G\x00T', 'X' * 300, '']
_FUZZ_PATHS = ['/handler', '/behavior', '/behaviors', '/backend', '/proxy',
               '/metrics', '/handlers', '/', '/nope', '/%ff%00', '//', '/..',
               '/handler?x=1', '/' + 'a' * 9000, '*', 'http://x/handler']
_FUZZ_BODIES = [b'', b'delay', b'{"name": "dummy"}', b'{"name": "delay", '
                b'"sleep": "abc"}', b'{', b'\xff\xfe', b'[]', b'null',
                b'{"behavior": "100:dummy"}', b'{"enabled": true}',
                b'{"backend": "nope"}', b'{"name": "dummy", "name": 1}']


def fuzz_request(rng):
    """One random control-API request as raw bytes: random methods, paths,
    headers (too many, too long, broken), bodies and encodings (declared
    length wrong, chunks broken, cut short). Seeded by *rng*."""
    method = rng.choice(_FUZZ_METHODS)
    path = rng.choice(_FUZZ_PATHS)
    version = rng.choice(['HTTP/1.1'] * 8 + ['HTTP/1.0', 'HTTP/2', ''])
    body = rng.choice(_FUZZ_BODIES)
    if rng.random() < 0.2:
        body = rng.randbytes(rng.randint(0, 3000))
    headers = [b'Host: 127.0.0.1']
    kind = rng.random()
    if kind < 0.5:
        length = len(body) + rng.choice([0] * 6 + [-1, 1, 100, 1 << 40])
        headers.append(b'Content-Length: %d' % max(0, length))
    elif kind < 0.75:
        headers.append(b'Transfer-Encoding: chunked')
        size = rng.choice(['%x' % len(body), 'zz', '-1', '%x' % (len(body) + 5),
                           'ffffffffffffffffff', '%X;ext=1' % len(body)])
        body = (size.encode() + b'\r\n' + body + b'\r\n'
                + rng.choice([b'0\r\n\r\n', b'', b'0\r\nX: y\r\n\r\n']))
    elif kind < 0.85:
        headers.append(rng.choice([b'Content-Length: x', b'Content-Length: -5',
                                   b'Content-Length: 1, 2',
                                   b'Transfer-Encoding: gzip']))
    for _ in range(rng.choice([0, 0, 1, 3, 101, 150])):
        headers.append(b'X-F%d: %s' % (rng.randint(0, 9999),
                                       rng.randbytes(rng.randint(0, 20))
                                       .replace(b'\n', b'')))
    if rng.random() < 0.1:
        headers.append(b'Authorization: Bearer \xc3\xa9t\xc3\xa9')
    if rng.random() < 0.05:
        headers.append(b'Broken header line')
    raw = ('%s %s %s' % (method, path, version)).encode('latin-1', 'replace')
    raw += b'\r\n' + b'\r\n'.join(headers) + b'\r\n\r\n' + body
    if rng.random() < 0.1:
        raw = raw[:rng.randint(0, len(raw))]
    return raw


def _relay_rate(address, seconds):
    """MiB/s pushed through the proxy to the sink backend in *seconds*."""
    chunk = memoryview(bytes(MiB))
    sent = 0
    with socket.create_connection(address, 10) as sock:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            sent += sock.send(chunk)
    return sent / seconds / MiB


# Fuzzed requests a second, all clients together: a steady hostile load
# beside the relay (on a small machine, an unpaced client would measure
# the CPU it takes from the proxy's own process rather than the proxy).
FUZZ_RATE = 300


def _fuzz_worker(port, rng, count, answers, pace=0.0):
    due = time.monotonic()
    for _ in range(count):
        due += pace
        wait = due - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        raw = fuzz_request(rng)
        try:
            with socket.create_connection((HOST, port), 5) as sock:
                sock.settimeout(10)
                sock.sendall(raw)
                if rng.random() < 0.9:
                    # Most clients end their stream; the others leave a
                    # cut request open, for the API's request timeout.
                    sock.shutdown(socket.SHUT_WR)
                data = _read_to_end(sock)
            answers.append(data[9:12] if data.startswith(b'HTTP/') else b'')
        except socket.timeout:
            answers.append(b'hang')
        except OSError:
            answers.append(b'')


def _fuzz_process(port, count, out):
    """In a child process (so that its threads do not slow the relay's
    client down): *count* fuzzed requests from 16 threads; the first
    three bytes of each answer ('hang' when none came) go to pipe *out*."""
    answers = []
    threads = [threading.Thread(target=_fuzz_worker, args=(
        port, random.Random(i), count // 16, answers, 16.0 / FUZZ_RATE))
        for i in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(600)
    os.write(out, json.dumps([a.decode('latin-1') for a in answers])
             .encode())
    os.close(out)
    os._exit(0)


def api_fuzz(scale=1.0):
    """Item 3: 10,000 fuzzed control-API requests (random methods, paths,
    headers, bodies, encodings) while a bulk transfer runs through the
    proxy: no 5xx, no hang, the relay's throughput kept."""
    count = max(100, int(10000 * scale))
    seconds = max(1.0, 5 * scale)
    backend = Backend('sink')
    proxy = Proxy(backend.port, control=True)
    answers = []
    try:
        alone = _relay_rate(proxy.address, seconds)
        read_end, write_end = os.pipe()
        child = os.fork()
        if child == 0:
            os.close(read_end)
            _fuzz_process(proxy.control, count, write_end)
        os.close(write_end)
        during = _relay_rate(proxy.address, seconds)
        with os.fdopen(read_end, 'rb') as pipe:
            answers = [a.encode('latin-1') for a in json.loads(
                pipe.read() or b'[]')]
        os.waitpid(child, 0)
    finally:
        err, log = proxy.stop()
        backend.stop()
    fives = sum(1 for a in answers if a.startswith(b'5'))
    hangs = answers.count(b'hang')
    errors = log.count('[ERROR]')
    tracebacks = (err + log).count('Traceback')
    ratio = during / alone if alone else 0
    return [Result('%d fuzzed API requests (%d/s)' % (len(answers),
                                                      FUZZ_RATE),
                   '%d answers 5xx, %d hangs, %d ERROR lines, %d tracebacks; '
                   'relay %.0f MiB/s during, %.2fx without'
                   % (fives, hangs, errors, tracebacks, during, ratio),
                   'no 5xx, no hang, relay >= 0.8x',
                   not fives and not hangs and not tracebacks and not errors
                   and ratio >= 0.8,
                   {'5xx': fives, 'hangs': hangs, 'ratio': ratio})]


def slowloris(scale=1.0):
    """Item 3: 500 clients trickling request heads into the control API;
    the API still answers others, and the relay still relays."""
    count = max(50, int(500 * scale))
    seconds = max(2.0, 10 * scale)
    backend = Backend('echo')
    proxy = Proxy(backend.port, control=True)
    slow = []
    latencies = []
    failures = 0
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.setblocking(False)
            sock.connect_ex((HOST, proxy.control))
            slow.append(sock)
        time.sleep(0.2)
        for sock in slow:
            try:
                sock.send(b'GET /proxy HTTP/1.1\r\nX-Slow: ')
            except OSError:
                pass
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for sock in slow:
                try:
                    sock.send(b'x')       # a header line that never ends
                except OSError:
                    pass
            start = time.monotonic()
            if _http_get(proxy.control, '/proxy') == 200:
                latencies.append(time.monotonic() - start)
            else:
                failures += 1
            time.sleep(0.1)
        relayed = _echo_ok(proxy.address)
    finally:
        for sock in slow:
            sock.close()
        err, log = proxy.stop()
        backend.stop()
    p99 = _percentile(latencies, 0.99) * 1000
    return [Result('%d slowloris clients on the control API' % count,
                   '%d API requests answered, %d failed, p99 %.0f ms; '
                   'relay works: %s; %d tracebacks'
                   % (len(latencies), failures, p99, relayed,
                      (err + log).count('Traceback')),
                   'every API request answered within 1 s',
                   not failures and p99 < 1000 and relayed)]


def _children(pid):
    try:
        with open('/proc/%d/task/%d/children' % (pid, pid)) as fh:
            return [int(child) for child in fh.read().split()]
    except OSError:
        return []


def _exited(pid):
    """True once every thread of process *pid* has exited (or it is gone).

    A zombie leader is not enough: a SIGKILLed process's other threads
    may still be running their exit, and the last one to go is what closes
    the process's descriptors (its listening socket among them)."""
    try:
        tasks = os.listdir('/proc/%d/task' % pid)
    except OSError:
        return True
    for task in tasks:
        try:
            with open('/proc/%d/task/%s/stat' % (pid, task)) as fh:
                if fh.read().rsplit(')', 1)[1].split()[0] not in ('Z', 'X'):
                    return False
        except OSError:
            pass
    return True


def _api_call(port, method, path, body=None):
    """``(status, parsed JSON or text)`` of one control-API call."""
    try:
        with socket.create_connection((HOST, port), 30) as sock:
            sock.settimeout(30)
            data = b'' if body is None else json.dumps(body).encode()
            sock.sendall(b'%s %s HTTP/1.1\r\nHost: %s:%d\r\nContent-Length:'
                         b' %d\r\nConnection: close\r\n\r\n%s'
                         % (method.encode(), path.encode(), HOST.encode(),
                            port, len(data), data))
            answer = _read_to_end(sock)
        head, _, payload = answer.partition(b'\r\n\r\n')
        return int(head.split(b' ', 2)[1]), payload
    except (OSError, ValueError, IndexError):
        return 0, b''


def _watch_replacement(parent, victim, start, seen, limit=10.0):
    """Note in *seen* the seconds from *start* until *parent* has three
    workers again, *victim* not among them (polled every 5 ms)."""
    while time.monotonic() - start < limit:
        now = _children(parent)
        if len(now) == 3 and victim not in now:
            seen.append(time.monotonic() - start)
            return
        time.sleep(0.005)


def workers(scale=1.0):
    """Item 4: ``--workers 3``: kill workers (first, last) while clients
    keep connecting; pause one past the control channel's timeout while
    changing the behavior."""
    rounds = max(2, int(10 * scale))
    backend = Backend('echo')
    proxy = Proxy(backend.port, '--workers', '3', control=True)
    results = []
    try:
        wait_until(lambda: len(_children(proxy.pid)) == 3 and
                   proxy.log().count('proxying ') >= 3, 20, '3 workers')
        replaced, failures, exchanges = [], 0, 0
        exiting, resets, cut = 0, 0, 0
        for i in range(rounds):
            kids = _children(proxy.pid)
            victim = kids[0] if i % 2 == 0 else kids[-1]
            os.kill(victim, signal.SIGKILL)
            start = time.monotonic()
            # How fast the parent replaces it, watched apart: the
            # exchanges below can each take a while (a handshake the
            # dying worker's queue dropped is retried after a second).
            seen = []
            watcher = threading.Thread(target=_watch_replacement,
                                       args=(proxy.pid, victim, start, seen),
                                       daemon=True)
            watcher.start()
            # Until the victim's last thread has exited, its listening
            # socket is open: a connection the kernel queues there is
            # reset when it closes, the documented limit of SO_REUSEPORT
            # (counted apart). Anything else (refused, timed out, a wrong
            # echo) is a failure, then as afterwards.
            while not _exited(victim):
                outcome = _echo(proxy.address)
                exiting += 1
                resets += outcome == 'reset'
                cut += outcome == 'failed'
                if time.monotonic() - start > 5:
                    raise ProbeError('worker %d still exiting after 5 s'
                                     % victim)
            # From then on, until the new worker is there: every exchange
            # must succeed (the port served while any worker lives).
            while True:
                now = _children(proxy.pid)
                if len(now) == 3 and victim not in now:
                    break
                if _echo(proxy.address) != 'ok':
                    failures += 1
                exchanges += 1
                if time.monotonic() - start > 10:
                    break
            watcher.join(10)
            replaced.append(seen[0] if seen else time.monotonic() - start)
            wait_until(lambda: proxy.log().count('proxying ') >= 4 + i, 20,
                       'the new worker to listen')
        worst = max(replaced)
        results.append(Result(
            '%d workers killed (-9) under --workers 3' % rounds,
            'replaced in %.0f ms at worst; %d of %d exchanges failed '
            'meanwhile (%d more while a victim was exiting: %d reset in '
            'its queue, %d failed otherwise)'
            % (worst * 1000, failures, exchanges, exiting, resets, cut),
            'replaced within 1 s, the port served',
            worst < 1.0 and not failures and not cut,
            {'failures': failures + cut, 'exchanges': exchanges + exiting,
             'resets': resets}))
        _api_call(proxy.control, 'PUT', '/behavior', {'name': 'delay'})
        paused = _children(proxy.pid)[0]
        os.kill(paused, signal.SIGSTOP)
        try:
            status, body = _api_call(proxy.control, 'PUT', '/behavior',
                                     {'name': 'error'})
        finally:
            os.kill(paused, signal.SIGCONT)
        time.sleep(0.5)
        reads = [_api_call(proxy.control, 'GET', '/behavior')
                 for _ in range(10)]
        metrics = [_api_call(proxy.control, 'GET', '/metrics')[0]
                   for _ in range(10)]
        named = ('pid %d' % paused).encode() in body
        consistent = all(s == 200 and b'"delay"' in b for s, b in reads)
        results.append(Result(
            'a worker paused past the control timeout',
            'change answered %d%s; after: behavior %s, /metrics %s' % (
                status, ' naming it' if named else '',
                'rolled back everywhere' if consistent else 'INCONSISTENT',
                'all 200' if set(metrics) == {200} else sorted(set(metrics))),
            '503 naming it, rolled back, later answers right',
            status == 503 and named and consistent and
            set(metrics) == {200}))
    finally:
        err, log = proxy.stop()
        backend.stop()
    gone = not _children(proxy.pid)
    results.append(Result(
        'SIGTERM to the --workers parent', 'every worker stopped: %s' % gone,
        'every worker stopped', gone))
    return results


PROBES = {
    'fairness': fairness,
    'big_messages': big_messages,
    'back_pressure': back_pressure,
    'churn': churn,
    'transfers': transfers,
    'exhaustion': exhaustion,
    'drain': drain,
    'api_fuzz': api_fuzz,
    'slowloris': slowloris,
    'workers': workers,
}


def run_probe(name, scale=1.0, **kwargs):
    """Run probe *name*; a list of :class:`Result`."""
    return PROBES[name](scale, **kwargs)


def rst_table(results, meta):
    """The reStructuredText table of *results* (docs/reliability.rst)."""
    rows = [('Probe', 'Figure', 'Limit', 'Held')]
    rows += [(r.probe, r.figure, r.limit, 'yes' if r.ok else '**no**')
             for r in results]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    rule = '  '.join('=' * w for w in widths)
    lines = [rule, '  '.join(c.ljust(w) for c, w in zip(rows[0], widths)),
             rule]
    lines += ['  '.join(c.ljust(w) for c, w in zip(row, widths)).rstrip()
              for row in rows[1:]]
    lines.append(rule)
    return '%s\n\n%s\n' % (meta, '\n'.join(lines))


_TITLES = {'fairness': 'fairness', 'message of': 'big_messages',
           'back-pressure': 'back_pressure', 'short connections': 'churn',
           'concurrent transfers': 'transfers', 'idle clients': 'exhaustion',
           'SIGTERM with': 'drain', 'fuzzed API': 'api_fuzz',
           'slowloris': 'slowloris', 'workers killed': 'workers',
           'worker paused': 'workers', '--workers parent': 'workers'}


def _probe_of(title):
    """The probe that made a row, from its title."""
    for words, name in _TITLES.items():
        if words in title:
            return name
    return title


def main(argv=None):
    """Run the probes; 0 when every limit held."""
    parser = argparse.ArgumentParser(
        prog='python -m benchmarks soak',
        description='Reliability probes: hostile and heavy loads through '
                    'vaurien on loopback, each figure against its limit.')
    parser.add_argument('probes', nargs='*', choices=[[]] + sorted(PROBES),
                        help='probes to run (default: all)')
    parser.add_argument('--scale', type=float, default=1.0,
                        help='shrink every load (0.01: a quick check)')
    parser.add_argument('--json', help='write the results there')
    parser.add_argument('--rst', help='write the table there')
    parser.add_argument('--previous', help='a --json file of an earlier '
                        'run: its rows of the probes not run now are kept '
                        '(and said so)')
    args = parser.parse_args(argv)
    results = []
    for name in args.probes or list(PROBES):
        sys.stderr.write('soak: %s...\n' % name)
        sys.stderr.flush()
        try:
            found = run_probe(name, args.scale)
        except ProbeError as exc:
            found = [Result(name, 'could not run: %s' % exc, '-', False)]
        for result in found:
            sys.stdout.write('%-50s %-4s %s\n' % (
                result.probe, 'ok' if result.ok else 'FAIL', result.figure))
            sys.stdout.flush()
        results.extend(found)
    meta = ('Measured %s UTC on %s (%d CPUs, load average %.1f at the end), '
            'scale %g.' % (time.strftime('%Y-%m-%d %H:%M', time.gmtime()),
                           os.uname().sysname, os.cpu_count() or 0,
                           os.getloadavg()[0], args.scale))
    if args.previous:
        with open(args.previous) as fh:
            earlier = json.load(fh)
        ran = set(args.probes)
        kept = [Result(r['probe'], r['figure'], r['limit'], r['ok'],
                       r.get('detail', '')) for r in earlier['results']
                if _probe_of(r['probe']) not in ran]
        meta = '%s Rows of %s: %s' % (
            earlier['meta'], ', '.join(sorted(ran)), meta)
        results = kept + results
        order = list(PROBES)
        results.sort(key=lambda r: order.index(_probe_of(r.probe)))
    if args.json:
        with open(args.json, 'w') as fh:
            json.dump({'meta': meta,
                       'results': [r.to_json() for r in results]}, fh,
                      indent=1)
    if args.rst:
        with open(args.rst, 'w') as fh:
            fh.write(rst_table(results, meta))
    return 0 if all(r.ok for r in results) else 1
