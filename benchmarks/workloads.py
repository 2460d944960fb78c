"""The workloads, the clients that drive them, and the figures they give.

Every workload measures a subject the same way: start it in front of the
workload's backend, warm it up with one request, read the proxy's CPU time
(:func:`benchmarks.procstat.cpu_seconds`), run the load, read it again.
The CPU figure is that delta divided by the units of work done.
"""
import os
import re
import shutil
import socket
import ssl
import struct
import subprocess
import threading
import time

from benchmarks import procstat
from benchmarks.processes import HOST, BenchError
from benchmarks.servers import CHUNK, stream
from benchmarks.subjects import (BENCH_TOXICS, SMALL_FILE, TLS_SUBJECTS,
                                 ToxiproxyServer, Vaurien, certificates,
                                 toxiproxy_api)
from vaurien.poll import wait_for
from vaurien.stats import percentile

__all__ = ['WORKLOADS', 'WORKLOAD_NAMES', 'Figure', 'Workload']

_HEADER = struct.Struct('!Q')
GIGA = 1e9
MIB = 1 << 20


class Figure:
    """One reported figure: its key in the results, label and unit.

    ``better`` is ``'higher'`` or ``'lower'``; ``direct`` says whether a
    direct connection has this figure (CPU and memory of a proxy do not).
    """

    def __init__(self, key, label, better='lower', direct=True, digits=None):
        self.key = key
        self.label = label
        self.better = better
        self.direct = direct
        self.digits = digits

    def as_dict(self):
        """What the JSON report says about this figure."""
        return {'key': self.key, 'label': self.label, 'better': self.better}


class Workload:
    """A kind of load; subclasses define ``run(ctx, running)``."""
    name = None
    title = ''
    backend = None          # 'nginx', 'echo' or 'bulk'
    figures = []
    direct_applies = True   # False: nothing to measure without a proxy

    def describe(self, ctx):
        """One line saying what exactly was run, for the table."""
        return self.title

    def subjects(self, ctx):
        """The subjects to run, in order (a workload may bring its own)."""
        return ctx.subjects

    def run(self, ctx, running):
        """Load *running* (a started subject) once; a dict of the figures
        (by :class:`Figure` key) and any details worth keeping."""
        raise NotImplementedError


def _cpu(running, settle=True):
    """The subject's CPU seconds so far (None for the direct connection).

    For a forking subject, first wait (a bounded while) for its finished
    children to be reaped: a zombie's time is only reliably counted once
    it has moved into the parent's ``cutime``. *settle* false skips that
    (connections still open on purpose).
    """
    if not running.pid:
        return None
    if settle and running.subject.forks:
        try:
            wait_for(lambda: not procstat.children(running.pid), 5.0,
                     'its finished children to be reaped', 0.01)
        except TimeoutError:
            pass
    return procstat.cpu_seconds(running.pid)


def _per(cpu, units, scale=1.0):
    if cpu is None or not units:
        return None
    return cpu / units * scale


# -- bulk ---------------------------------------------------------------------

def bulk_transfer(port, count, timeout=120.0):
    """Stream *count* bytes each way over one connection to the bulk server
    on *port*; the elapsed seconds. BenchError if a byte went missing."""
    sock = socket.create_connection((HOST, port), timeout=timeout)
    try:
        sock.settimeout(timeout)
        received = {'count': 0, 'trailer': b'', 'error': None}

        def receive():
            buf = bytearray(CHUNK)
            total = 0
            trailer = b''
            try:
                while True:
                    n = sock.recv_into(buf)
                    if not n:
                        break
                    if total + n > count:
                        trailer += bytes(buf[max(0, count - total):n])
                    total += n
            except OSError as exc:
                received['error'] = exc
            received['count'] = min(total, count)
            received['trailer'] = trailer

        start = time.perf_counter()
        sock.sendall(_HEADER.pack(count))
        reader = threading.Thread(target=receive, daemon=True)
        reader.start()
        stream(sock, count)
        sock.shutdown(socket.SHUT_WR)
        reader.join(timeout)
        elapsed = time.perf_counter() - start
    finally:
        sock.close()
    if reader.is_alive():
        raise BenchError('bulk transfer did not end within %gs' % timeout)
    if received['error'] is not None:
        raise BenchError('bulk transfer: %s' % received['error'])
    if received['count'] != count or len(received['trailer']) != 8:
        raise BenchError('bulk transfer: got %d of %d bytes back'
                         % (received['count'], count))
    echoed = _HEADER.unpack(received['trailer'])[0]
    if echoed != count:
        raise BenchError('bulk transfer: the server got %d of %d bytes'
                         % (echoed, count))
    return elapsed


class Bulk(Workload):
    """One connection streaming N bytes each way at once."""
    name = 'bulk'
    backend = 'bulk'
    figures = [
        Figure('gbit_s', 'throughput, Gbit/s (both ways)', 'higher'),
        Figure('cpu_s_per_gb', 'proxy CPU s per GB relayed', direct=False),
    ]

    def describe(self, ctx):
        return ('bulk: one connection, %s each way at once'
                % _size(ctx.bulk_bytes))

    def run(self, ctx, running):
        return _bulk_figures(ctx, running,
                             lambda size: bulk_transfer(running.port, size))


def _bulk_figures(ctx, running, transfer):
    """A bulk run's figures: *transfer(size)* streams *size* bytes each
    way and returns the seconds it took; 1 MiB first, to warm up."""
    transfer(1 << 20)
    cpu0 = _cpu(running)
    elapsed = transfer(ctx.bulk_bytes)
    cpu1 = _cpu(running)
    moved = 2 * ctx.bulk_bytes
    cpu = None if cpu0 is None else cpu1 - cpu0
    return {'gbit_s': moved * 8 / elapsed / GIGA,
            'cpu_s_per_gb': _per(cpu, moved / GIGA),
            'seconds': elapsed, 'cpu_s': cpu, 'bytes': moved}


def _size(count):
    if count >= 1 << 30 and count % (1 << 30) == 0:
        return '%d GiB' % (count >> 30)
    return '%d MiB' % (count >> 20)


# -- single-connection latency ------------------------------------------------

def ping_pong(port, duration, warmup=200, limit=2_000_000):
    """Round trips of 1 byte over one connection for *duration* seconds;
    the list of round-trip times in nanoseconds."""
    sock = socket.create_connection((HOST, port), timeout=10)
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        send, recv = sock.send, sock.recv
        clock = time.perf_counter_ns
        for _ in range(warmup):
            send(b'x')
            if not recv(1):
                raise BenchError('echo: end of stream')
        samples = []
        append = samples.append
        end = clock() + int(duration * 1e9)
        while True:
            t0 = clock()
            send(b'x')
            if not recv(1):
                raise BenchError('echo: end of stream')
            t1 = clock()
            append(t1 - t0)
            if t1 > end or len(samples) >= limit:
                break
        return samples
    finally:
        sock.close()


class Latency(Workload):
    """One connection, one 1-byte request at a time, against the echo
    server."""
    name = 'latency'
    backend = 'echo'
    figures = [
        Figure('p50_us', 'round trip p50, µs'),
        Figure('p99_us', 'round trip p99, µs'),
        Figure('p50_added_us', 'p50 added over direct, µs', direct=False),
        Figure('p99_added_us', 'p99 added over direct, µs', direct=False),
        Figure('cpu_us_per_rtt', 'proxy CPU µs per round trip',
               direct=False),
    ]

    def describe(self, ctx):
        return ('latency: one connection, 1-byte echo ping-pong, %gs'
                % ctx.duration)

    def run(self, ctx, running):
        cpu0 = _cpu(running)
        samples = ping_pong(running.port, ctx.duration)
        cpu1 = _cpu(running)
        samples.sort()
        cpu = None if cpu0 is None else cpu1 - cpu0
        return {'p50_us': percentile(samples, 0.50) / 1e3,
                'p99_us': percentile(samples, 0.99) / 1e3,
                'cpu_us_per_rtt': _per(cpu, len(samples), 1e6),
                'round_trips': len(samples), 'cpu_s': cpu}

    @staticmethod
    def finish(results):
        """Fill in the ``*_added_us`` figures from the direct row."""
        direct = results.get('direct', {}).get('figures') or {}
        for row in results.values():
            figures = row.get('figures')
            if not figures:
                continue
            for key in ('p50', 'p99'):
                base, value = direct.get(key + '_us'), figures.get(key + '_us')
                added = None
                if base is not None and value is not None and \
                        row is not results.get('direct'):
                    added = value - base
                figures[key + '_added_us'] = added


# -- idle connections ---------------------------------------------------------

def open_idle(port, count, batch=100, timeout=30.0):
    """Open *count* connections, each carrying one 1-byte round trip (so
    that the whole path to the backend exists); the list of sockets."""
    socks = []
    try:
        while len(socks) < count:
            group = []
            for _ in range(min(batch, count - len(socks))):
                sock = socket.create_connection((HOST, port), timeout=timeout)
                group.append(sock)
                socks.append(sock)
            for sock in group:
                sock.sendall(b'i')
            for sock in group:
                if sock.recv(1) != b'i':
                    raise BenchError('idle: connection %d got no echo'
                                     % len(socks))
        return socks
    except OSError as exc:
        for sock in socks:
            sock.close()
        raise BenchError('idle: after %d connections: %s'
                         % (len(socks), exc)) from None
    except BaseException:
        for sock in socks:
            sock.close()
        raise


class Idle(Workload):
    """N connections opened through the proxy and held open."""
    name = 'idle'
    backend = 'echo'
    direct_applies = False
    figures = [
        Figure('kib_per_conn', 'proxy memory per idle connection, KiB',
               direct=False),
        Figure('cpu_us_per_conn', 'proxy CPU µs per connection opened',
               direct=False),
    ]
    # A process per connection: this many at most (the rest is the same).
    FORK_LIMIT = 500

    def describe(self, ctx):
        return ('idle: %d connections held open through the proxy (each '
                'after one 1-byte round trip)' % ctx.idle_count)

    def run(self, ctx, running):
        subject = running.subject
        count = ctx.idle_count
        if subject.forks:
            count = min(count, self.FORK_LIMIT)
        open_idle(running.port, 1)[0].close()
        _cpu(running)   # lets a forking proxy's warm-up child go
        # Several processes from the start (pre-forked workers) or one per
        # connection: measure them all, with PSS.
        pss = subject.forks or bool(procstat.descendants(running.pid))
        before = procstat.tree_memory(running.pid, pss)
        cpu0 = _cpu(running)
        socks = open_idle(running.port, count)
        try:
            cpu1 = _cpu(running, settle=False)
            after = procstat.tree_memory(running.pid, pss)
            running.check_alive()
        finally:
            for sock in socks:
                sock.close()
        note = None
        if count < ctx.idle_count:
            note = ('measured over %d connections (a process per '
                    'connection)' % count)
        return {'kib_per_conn': (after - before) / count / 1024,
                'note': note,
                'cpu_us_per_conn': _per(cpu1 - cpu0, count, 1e6),
                'connections': count,
                'memory_method': 'sum of Pss' if pss else 'VmRSS',
                'memory_before': before, 'memory_after': after}


# -- connections opened one by one --------------------------------------------

def one_by_one(port, duration, warmup=50):
    """Open a connection, one 1-byte round trip, close; again, for
    *duration* seconds. The count of connections."""
    def once():
        sock = socket.create_connection((HOST, port), timeout=10)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.sendall(b's')
            if sock.recv(1) != b's':
                raise BenchError('setup: no echo')
        finally:
            sock.close()
    try:
        for _ in range(warmup):
            once()
        count = 0
        end = time.perf_counter() + duration
        while time.perf_counter() < end:
            once()
            count += 1
        return count
    except OSError as exc:
        raise BenchError('setup: %s' % exc) from None


class Setup(Workload):
    """Connections opened one after the other, each with one round trip:
    what connection setup costs (the client waits for each)."""
    name = 'setup'
    backend = 'echo'
    figures = [
        Figure('conn_s', 'connections per second (one at a time)',
               'higher'),
        Figure('cpu_us_per_conn', 'proxy CPU µs per connection',
               direct=False),
    ]

    def describe(self, ctx):
        return ('setup: connect, 1-byte echo, close, one connection at a '
                'time, %gs' % ctx.duration)

    def run(self, ctx, running):
        cpu0 = _cpu(running)
        start = time.perf_counter()
        count = one_by_one(running.port, ctx.duration)
        elapsed = time.perf_counter() - start
        cpu1 = _cpu(running)
        cpu = None if cpu0 is None else cpu1 - cpu0
        return {'conn_s': count / elapsed, 'connections': count,
                'cpu_us_per_conn': _per(cpu, count, 1e6), 'cpu_s': cpu}


# -- HTTP with wrk ------------------------------------------------------------

_UNITS = {'us': 1e-6, 'ms': 1e-3, 's': 1.0, 'm': 60.0, 'h': 3600.0}


def _seconds(text):
    match = re.fullmatch(r'([0-9.]+)(us|ms|s|m|h)', text.strip())
    if not match:
        return None
    return float(match.group(1)) * _UNITS[match.group(2)]


def parse_wrk(output):
    """The figures of one ``wrk --latency`` run, from its text output."""
    result = {}
    match = re.search(r'^\s*(\d+) requests in ([0-9.]+\w+),', output, re.M)
    if not match:
        raise BenchError('wrk: no request count in its output: %s'
                         % output.strip()[-500:])
    result['requests'] = int(match.group(1))
    result['seconds'] = _seconds(match.group(2))
    for pct in ('50', '99'):
        found = re.search(r'^\s*%s(?:\.0+)?%%\s+(\S+)' % pct, output, re.M)
        result['p%s_s' % pct] = _seconds(found.group(1)) if found else None
    errors = re.search(r'Socket errors: connect (\d+), read (\d+), write '
                       r'(\d+), timeout (\d+)', output)
    result['errors'] = dict(zip(('connect', 'read', 'write', 'timeout'),
                                map(int, errors.groups()))) if errors else \
        {'connect': 0, 'read': 0, 'write': 0, 'timeout': 0}
    non2xx = re.search(r'Non-2xx or 3xx responses: (\d+)', output)
    result['non_2xx'] = int(non2xx.group(1)) if non2xx else 0
    rps = re.search(r'Requests/sec:\s+([0-9.]+)', output)
    result['rps'] = float(rps.group(1)) if rps else None
    return result


def run_wrk(ctx, port, close=False, scheme='http'):
    """``wrk --latency`` against the small file on *port*; parsed output."""
    argv = ['wrk', '-t%d' % ctx.wrk_threads, '-c%d' % ctx.connections,
            '-d%ds' % max(1, round(ctx.duration)), '--latency',
            '--timeout', '5s']
    if close:
        argv += ['-H', 'Connection: close']
    argv.append('%s://%s:%d/%s' % (scheme, HOST, port, SMALL_FILE))
    try:
        out = subprocess.run(argv, capture_output=True, text=True,
                             stdin=subprocess.DEVNULL,
                             timeout=ctx.duration + 60)
    except subprocess.TimeoutExpired:
        raise BenchError('wrk did not finish in time') from None
    if out.returncode != 0:
        raise BenchError('wrk failed (%s): %s' % (out.returncode,
                                                  out.stderr.strip()[-300:]))
    return parse_wrk(out.stdout)


def http_get(port, timeout=10.0, context=None):
    """One GET of the small file on a fresh connection (in TLS with
    *context*); BenchError unless the answer is a 200."""
    with socket.create_connection((HOST, port), timeout=timeout) as sock:
        if context is not None:
            sock = context.wrap_socket(sock, server_hostname=HOST)
        sock.sendall(('GET /%s HTTP/1.1\r\nHost: bench\r\nConnection: '
                      'close\r\n\r\n' % SMALL_FILE).encode())
        data = b''
        while True:
            more = sock.recv(65536)
            if not more:
                break
            data += more
    if not data.startswith(b'HTTP/1.1 200'):
        raise BenchError('HTTP warm-up request got %r' % data[:60])


class KeepAlive(Workload):
    """wrk, N keep-alive connections, against nginx's small file."""
    name = 'keepalive'
    backend = 'nginx'
    binary = 'wrk'
    close = False
    figures = [
        Figure('rps', 'requests/s', 'higher'),
        Figure('p50_ms', 'latency p50, ms'),
        Figure('p99_ms', 'latency p99, ms'),
        Figure('cpu_us_per_req', 'proxy CPU µs per request', direct=False),
    ]

    def describe(self, ctx):
        return ('keepalive: wrk -t%d -c%d, HTTP keep-alive, nginx small '
                'file, %gs' % (ctx.wrk_threads, ctx.connections,
                               ctx.duration))

    def run(self, ctx, running):
        http_get(running.port)
        cpu0 = _cpu(running)
        result = run_wrk(ctx, running.port, close=self.close)
        cpu1 = _cpu(running)
        cpu = None if cpu0 is None else cpu1 - cpu0
        # An answer that wrk could not parse (the error handler's random
        # bytes) was relayed all the same: count it as a unit of work.
        units = result['requests'] + result['errors']['read']
        return {'rps': result['rps'],
                'p50_ms': _ms(result['p50_s']),
                'p99_ms': _ms(result['p99_s']),
                'cpu_us_per_req': _per(cpu, units, 1e6),
                'requests': result['requests'], 'errors': result['errors'],
                'non_2xx': result['non_2xx'], 'cpu_s': cpu}


def _ms(seconds):
    return None if seconds is None else seconds * 1e3


class Churn(KeepAlive):
    """The same with ``Connection: close``: a new connection per request."""
    name = 'churn'
    close = True
    figures = [
        Figure('rps', 'requests/s (one connection each)', 'higher'),
        Figure('p50_ms', 'latency p50, ms'),
        Figure('p99_ms', 'latency p99, ms'),
        Figure('cpu_us_per_req', 'proxy CPU µs per request', direct=False),
    ]

    def describe(self, ctx):
        return ("churn: wrk -t%d -c%d -H 'Connection: close', nginx small "
                "file, %gs" % (ctx.wrk_threads, ctx.connections,
                               ctx.duration))


# The targets compare the machinery, so every answer stays intact there:
# delay sleeps 0 s, and error is aimed at the requests (its own code runs on
# each of them, and it forwards them untouched, as it does all upstream
# data). The last variant corrupts answers, so wrk drops the connection
# and reconnects after each: it shows that cost, for information.
FAULT_VARIANTS = [
    Vaurien('100:dummy', name='vaurien 100:dummy'),
    Vaurien('50:delay', ['--handlers.delay.sleep', '0'],
            name='vaurien 50:delay'),
    Vaurien('50:delay,20:error', ['--handlers.delay.sleep', '0',
                                  '--handlers.error.direction', 'upstream'],
            name='vaurien 50:delay,20:error'),
    Vaurien('20:error', name='vaurien 20:error (corrupting)'),
]


class Faults(KeepAlive):
    """The keep-alive load through Vaurien with faults active, next to the
    same run's ``100:dummy``: the cost of picking and calling handlers."""
    name = 'faults'
    direct_applies = False
    figures = [
        Figure('rps', 'requests/s', 'higher', direct=False),
        Figure('cpu_us_per_req', 'proxy CPU µs per request (answers wrk '
               'could not parse count too)', direct=False),
    ]

    def describe(self, ctx):
        return ('faults: the keep-alive load through vaurien, delay with '
                'sleep 0, error aimed at requests; last row: error '
                'corrupting answers (wrk reconnects after each)')

    def subjects(self, ctx):
        if not any(s.name == 'vaurien' for s in ctx.subjects):
            return []
        base = next((s for s in ctx.subjects if s.name == 'vaurien-base'),
                    None)
        if base is None:
            return FAULT_VARIANTS
        # --baseline: each variant before and after, side by side.
        variants = []
        for variant in FAULT_VARIANTS:
            variants.append(variant)
            variants.append(Vaurien(variant.behavior, variant.extra,
                                    name='base ' + variant.name[8:],
                                    root=base.root))
        return variants


# -- protocol mode: tcp mode and --protocol side by side ---------------------

def _mode_variants(ctx, protocol):
    """Vaurien in tcp mode and with ``--protocol PROTOCOL`` (100:dummy), and
    the same from the ``--baseline`` checkout when there is one."""
    if not any(s.name == 'vaurien' for s in ctx.subjects):
        return []
    variants = [Vaurien(name='vaurien tcp'),
                Vaurien(extra=['--protocol', protocol],
                        name='vaurien --protocol %s' % protocol)]
    base = next((s for s in ctx.subjects if s.name == 'vaurien-base'), None)
    if base is not None:
        variants += [Vaurien(v.behavior, v.extra, root=base.root,
                             name='base ' + v.name[8:]) for v in variants]
    return variants


def pipelined(port, duration, request, answer, depth=100):
    """Send *depth* requests at once, read their *depth* answers (each
    exactly *answer*), again, for *duration* seconds, over one connection;
    the count of requests answered."""
    burst = request * depth
    expected = answer * depth
    sock = socket.create_connection((HOST, port), timeout=10)
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        count = 0
        end = time.perf_counter() + duration
        buf = bytearray(len(expected))
        while True:
            sock.sendall(burst)
            got = 0
            with memoryview(buf) as view:
                while got < len(expected):
                    n = sock.recv_into(view[got:])
                    if not n:
                        raise BenchError('pipelined: end of stream')
                    got += n
            if buf != expected:
                raise BenchError('pipelined: unexpected answers %r'
                                 % bytes(buf[:64]))
            count += depth
            if time.perf_counter() > end:
                return count
    except OSError as exc:
        raise BenchError('pipelined: %s' % exc) from None
    finally:
        sock.close()


class Pipelined(Workload):
    """Pipelined requests (100 at once) over one connection, through
    Vaurien in tcp mode and in protocol mode (``100:dummy``)."""
    direct_applies = False
    protocol = None
    request = answer = b''
    messages = 1        # requests in one *request*
    figures = [
        Figure('req_s', 'requests/s', 'higher', direct=False),
        Figure('cpu_us_per_req', 'proxy CPU µs per request', direct=False),
    ]

    def describe(self, ctx):
        return ('%s: 100 pipelined requests at a time, one connection, '
                'tcp mode and --protocol %s, %gs'
                % (self.name, self.protocol, ctx.duration))

    def subjects(self, ctx):
        return _mode_variants(ctx, self.protocol)

    def run(self, ctx, running):
        pipelined(running.port, 0.2, self.request, self.answer)
        cpu0 = _cpu(running)
        start = time.perf_counter()
        count = self.messages * pipelined(running.port, ctx.duration,
                                          self.request, self.answer)
        elapsed = time.perf_counter() - start
        cpu1 = _cpu(running)
        cpu = None if cpu0 is None else cpu1 - cpu0
        return {'req_s': count / elapsed, 'requests': count,
                'cpu_us_per_req': _per(cpu, count, 1e6), 'cpu_s': cpu}


class Redis(Pipelined):
    """redis-server: SET then GET of a small value, pipelined."""
    name = 'redis'
    backend = 'redis'
    binary = 'redis-server'
    protocol = 'redis'
    messages = 2
    request = (b'*3\r\n$3\r\nSET\r\n$5\r\nbench\r\n$5\r\nvalue\r\n'
               b'*2\r\n$3\r\nGET\r\n$5\r\nbench\r\n')
    answer = b'+OK\r\n$5\r\nvalue\r\n'


class Memcache(Pipelined):
    """memcached: set then get of a small value, pipelined."""
    name = 'memcache'
    backend = 'memcache'
    binary = 'memcached'
    protocol = 'memcache'
    messages = 2
    request = b'set bench 0 0 5\r\nvalue\r\nget bench\r\n'
    answer = b'STORED\r\nVALUE bench 0 5\r\nvalue\r\nEND\r\n'


#: The figures of the keep-alive loads measured through proxies only
#: (no direct subject): requests/s and proxy CPU per request.
_PROXY_ONLY_FIGURES = [
    Figure('rps', 'requests/s', 'higher', direct=False),
    Figure('cpu_us_per_req', 'proxy CPU µs per request', direct=False),
]


class HTTPProtocol(KeepAlive):
    """The keep-alive load (wrk) in tcp mode and with --protocol http."""
    name = 'http'
    direct_applies = False
    figures = _PROXY_ONLY_FIGURES

    def describe(self, ctx):
        return ('http: wrk -t%d -c%d keep-alive, nginx small file, tcp mode '
                'and --protocol http, %gs' % (ctx.wrk_threads,
                                              ctx.connections, ctx.duration))

    def subjects(self, ctx):
        return _mode_variants(ctx, 'http')


# -- TLS on both sides -------------------------------------------------------

def tls_bulk_transfer(port, count, ca, timeout=120.0):
    """Send *count* bytes over one TLS connection to the TLS bulk server
    on *port*, then read *count* bytes back (one way after the other); the
    elapsed seconds. BenchError if a byte went missing."""
    context = ssl.create_default_context(cafile=ca)
    raw = socket.create_connection((HOST, port), timeout=timeout)
    try:
        raw.settimeout(timeout)
        sock = context.wrap_socket(raw, server_hostname=HOST)
        start = time.perf_counter()
        sock.sendall(_HEADER.pack(count))
        stream(sock, count)
        buf = bytearray(CHUNK)
        total, trailer = 0, b''
        while total < count + _HEADER.size:
            n = sock.recv_into(buf)
            if not n:
                break
            if total + n > count:
                trailer += bytes(buf[max(0, count - total):n])
            total += n
        elapsed = time.perf_counter() - start
    except (OSError, ssl.SSLError) as exc:
        raise BenchError('TLS bulk transfer: %s' % exc) from None
    finally:
        raw.close()
    if total != count + _HEADER.size or len(trailer) != _HEADER.size:
        raise BenchError('TLS bulk transfer: got %d of %d bytes back'
                         % (min(total, count), count))
    echoed = _HEADER.unpack(trailer)[0]
    if echoed != count:
        raise BenchError('TLS bulk transfer: the server got %d of %d bytes'
                         % (echoed, count))
    return elapsed


def _tls_subjects(ctx):
    names = {s.name for s in ctx.subjects}
    return [s for s in TLS_SUBJECTS if s.name in names]


class TLSBulk(Workload):
    """One TLS connection (TLS on both sides of the proxy), N bytes up then
    N bytes down."""
    name = 'tls-bulk'
    backend = 'bulk-tls'
    binaries = ('openssl',)
    figures = [
        Figure('gbit_s', 'throughput, Gbit/s', 'higher'),
        Figure('cpu_s_per_gb', 'proxy CPU s per GB relayed', direct=False),
    ]

    def describe(self, ctx):
        return ('tls-bulk: one TLS connection, TLS on both sides, %s up '
                'then %s down' % (_size(ctx.bulk_bytes),
                                  _size(ctx.bulk_bytes)))

    def subjects(self, ctx):
        return _tls_subjects(ctx)

    def run(self, ctx, running):
        ca = certificates(ctx.procs).ca
        return _bulk_figures(
            ctx, running,
            lambda size: tls_bulk_transfer(running.port, size, ca))


class TLSKeepAlive(KeepAlive):
    """wrk over HTTPS, N keep-alive connections, against nginx's small file
    in HTTPS: TLS on both sides of the proxy."""
    name = 'tls-keepalive'
    backend = 'nginx-tls'
    binaries = ('openssl',)

    def describe(self, ctx):
        return ('tls-keepalive: wrk -t%d -c%d over HTTPS, keep-alive, nginx '
                'small file in HTTPS, %gs' % (ctx.wrk_threads,
                                              ctx.connections, ctx.duration))

    def subjects(self, ctx):
        return _tls_subjects(ctx)

    def run(self, ctx, running):
        context = ssl.create_default_context(
            cafile=certificates(ctx.procs).ca)
        http_get(running.port, context=context)
        cpu0 = _cpu(running)
        result = run_wrk(ctx, running.port, scheme='https')
        cpu1 = _cpu(running)
        cpu = None if cpu0 is None else cpu1 - cpu0
        units = result['requests'] + result['errors']['read']
        return {'rps': result['rps'],
                'p50_ms': _ms(result['p50_s']),
                'p99_ms': _ms(result['p99_s']),
                'cpu_us_per_req': _per(cpu, units, 1e6),
                'requests': result['requests'], 'errors': result['errors'],
                'non_2xx': result['non_2xx'], 'cpu_s': cpu}


# -- Toxiproxy mode: stacked toxics, many proxies ----------------------------

_TOXICS_TEXT = 'latency 0 then bandwidth %d KB/s, downstream' % (
    BENCH_TOXICS[1]['attributes']['rate'])


def _toxiproxy_subjects(ctx, vaurien, toxiproxy):
    """*vaurien* (a list of subjects) when the run has the ``vaurien``
    subject, then *toxiproxy* when it has ``toxiproxy`` (present only when
    toxiproxy-server is installed)."""
    names = {s.name for s in ctx.subjects}
    return ((vaurien if 'vaurien' in names else []) +
            ([toxiproxy] if 'toxiproxy' in names else []))


class Toxics(KeepAlive):
    """The keep-alive load through one proxy with Toxiproxy's toxics
    stacked on it (:data:`~benchmarks.subjects.BENCH_TOXICS`), created
    through Toxiproxy's API: vaurien-toxiproxy and toxiproxy-server side
    by side, next to the same run's Vaurien ``100:dummy`` (no toxics)."""
    name = 'toxics'
    direct_applies = False
    figures = _PROXY_ONLY_FIGURES

    def describe(self, ctx):
        return ('toxics: wrk -t%d -c%d keep-alive, nginx small file, %gs, '
                'through toxics stacked with the Toxiproxy API (%s); '
                'vaurien 100:dummy without toxics for reference'
                % (ctx.wrk_threads, ctx.connections, ctx.duration,
                   _TOXICS_TEXT))

    def subjects(self, ctx):
        return _toxiproxy_subjects(ctx, [
            Vaurien('100:dummy', name='vaurien 100:dummy'),
            ToxiproxyServer('vaurien toxics', 'vaurien', BENCH_TOXICS,
                            description='vaurien-toxiproxy, ' + _TOXICS_TEXT),
        ], ToxiproxyServer('toxiproxy toxics', 'toxiproxy', BENCH_TOXICS,
                           description='toxiproxy-server, ' + _TOXICS_TEXT))

    def run(self, ctx, running):
        values = KeepAlive.run(self, ctx, running)
        if running.api is not None:
            # The toxics in place after the load, as the API lists them.
            values['toxics'] = [
                toxic['name'] for toxic in toxiproxy_api(
                    running.api, 'GET', '/proxies/bench/toxics')]
        return values


def settled_rss(pid, timeout=2.0, interval=0.1):
    """*pid*'s resident memory once two readings *interval* apart agree
    (or the last reading after *timeout* seconds), in bytes."""
    last = procstat.rss_bytes(pid)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(interval)
        now = procstat.rss_bytes(pid)
        if now == last:
            break
        last = now
    return last


class Proxies(Workload):
    """What idle proxies cost: the resident memory of a Toxiproxy API
    server started with :attr:`COUNT` proxies (``-config``) minus that of
    the same server started with one, each measured once its proxies are
    listed by the API. No traffic."""
    name = 'proxies'
    backend = 'echo'
    direct_applies = False
    COUNT = 100
    figures = [
        Figure('mib_added', 'memory of 100 idle proxies minus 1, MiB',
               direct=False),
        Figure('kib_per_proxy', 'memory per idle proxy, KiB', direct=False),
    ]

    def describe(self, ctx):
        return ('proxies: RSS of a server holding %d idle proxies (from '
                '-config) minus one holding 1' % self.COUNT)

    def subjects(self, ctx):
        return _toxiproxy_subjects(ctx, [
            ToxiproxyServer('vaurien-toxiproxy', 'vaurien',
                            description='vaurien-toxiproxy -config FILE'),
        ], ToxiproxyServer('toxiproxy-server', 'toxiproxy',
                           description='toxiproxy-server -config FILE'))

    def run(self, ctx, running):
        one = settled_rss(running.pid)
        many = running.subject.holding(self.COUNT).start(
            ctx.procs, ctx.backend_port(self.backend))
        try:
            rss = settled_rss(many.pid)
            many.check_alive()
        finally:
            ctx.procs.stop(many.started)
        added = rss - one
        return {'mib_added': added / MIB,
                'kib_per_proxy': added / (self.COUNT - 1) / 1024,
                'rss_1': one, 'rss_%d' % self.COUNT: rss,
                'proxies': self.COUNT}


# churn last: it leaves tens of thousands of sockets in TIME_WAIT.
WORKLOADS = [Bulk(), Latency(), Idle(), Setup(), KeepAlive(), Faults(),
             Redis(), Memcache(), HTTPProtocol(), TLSBulk(), TLSKeepAlive(),
             Toxics(), Proxies(), Churn()]
WORKLOAD_NAMES = [w.name for w in WORKLOADS]


def missing_tool(workload):
    """The program a workload needs and lacks, or None."""
    binary = getattr(workload, 'binary', None)
    if binary and not shutil.which(binary):
        return binary
    for binary in getattr(workload, 'binaries', ()):
        if not shutil.which(binary):
            return binary
    if workload.backend in ('nginx', 'nginx-tls') and not (
            shutil.which('nginx') or os.path.exists('/usr/sbin/nginx')):
        return 'nginx'
    return None
