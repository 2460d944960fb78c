"""The engine (vaurien/proxy.py), through a real ``vaurien`` process.

Forwarding, half-close, independent directions, backends that are down,
idle connections, one backend connection per client, the handler
return-value contract, handler exceptions and descriptor hygiene.
"""
import hashlib
import os
import signal
import socket
import textwrap
import threading
import time

import pytest

import support

MiB = 1 << 20


def _stream_random(size):
    """*size* random bytes in 1 MiB blocks, each one different (cheap).

    Block i is a window at offset 4099 * i into two random megabytes, so
    that a lost, repeated or swapped block changes the hash.
    """
    rnd = os.urandom(2 * MiB)
    for i in range(size // MiB):
        offset = (4099 * i) % MiB
        yield rnd[offset:offset + MiB]


@pytest.mark.timeout(90)
def test_64mib_each_way_byte_exact(vaurien, echo_server):
    """64 MiB up and the same 64 MiB back at once, hashed on both ends."""
    proxy = vaurien(backend=echo_server.address)
    size = 64 * MiB
    sent, got = hashlib.sha256(), hashlib.sha256()
    counts = [0]

    with proxy.connect(timeout=60) as sock:
        def reader():
            while True:
                data = sock.recv(MiB)
                if not data:
                    break
                got.update(data)
                counts[0] += len(data)

        thread = threading.Thread(target=reader)
        thread.start()
        for block in _stream_random(size):
            sent.update(block)
            sock.sendall(block)
        sock.shutdown(socket.SHUT_WR)
        thread.join(80)
    assert not thread.is_alive()
    assert counts[0] == size
    assert got.hexdigest() == sent.hexdigest()


@pytest.mark.timeout(60)
def test_64mib_upstream_then_answer_after_half_close(vaurien, hash_server):
    """The client half-closes after 64 MiB; the answer comes after that."""
    proxy = vaurien(backend=hash_server.address)
    digest = hashlib.sha256()
    size = 64 * MiB
    with proxy.connect(timeout=50) as sock:
        for block in _stream_random(size):
            digest.update(block)
            sock.sendall(block)
        sock.shutdown(socket.SHUT_WR)
        answer = support.recv_all(sock)
    assert answer == ('%s %d\n' % (digest.hexdigest(), size)).encode()


@pytest.mark.timeout(60)
def test_64mib_downstream_byte_exact(vaurien):
    """A backend that answers one request with 64 MiB, then closes."""
    size = 64 * MiB
    blocks = list(_stream_random(16 * MiB))
    expected = hashlib.sha256()
    for _ in range(size // (16 * MiB)):
        for block in blocks:
            expected.update(block)

    def serve(sock):
        sock.recv(100)
        for _ in range(size // (16 * MiB)):
            for block in blocks:
                sock.sendall(block)

    server = support.TCPServer(serve)
    try:
        proxy = vaurien(backend=server.address)
        with proxy.connect(timeout=50) as sock:
            sock.sendall(b'GET\n')
            sock.shutdown(socket.SHUT_WR)
            got = hashlib.sha256()
            total = 0
            while True:
                data = sock.recv(MiB)
                if not data:
                    break
                got.update(data)
                total += len(data)
    finally:
        server.close()
    assert total == size
    assert got.hexdigest() == expected.hexdigest()


def test_half_close_small_answer(vaurien_inproc, hash_server):
    proxy = vaurien_inproc(backend=hash_server.address)
    with proxy.connect() as sock:
        sock.sendall(b'hello')
        sock.shutdown(socket.SHUT_WR)
        answer = support.recv_all(sock)
    assert answer == ('%s 5\n' % support.sha256(b'hello')).encode()


def test_backend_closing_first_still_gets_client_data(vaurien_inproc):
    """The backend half-closes first; the client's later data still arrives."""
    got = []

    def serve(sock):
        sock.sendall(b'banner\n')
        sock.shutdown(socket.SHUT_WR)
        got.append(support.recv_all(sock))

    server = support.TCPServer(serve)
    try:
        proxy = vaurien_inproc(backend=server.address)
        with proxy.connect() as sock:
            assert support.recv_all(sock) == b'banner\n'
            sock.sendall(b'late data')
            sock.shutdown(socket.SHUT_WR)
            support.wait_until(lambda: got, what='the backend to read')
    finally:
        server.close()
    assert got == [b'late data']


@pytest.mark.timeout(60)
def test_directions_are_independent(vaurien_inproc):
    """A long delay on requests does not hold back what the backend pushes."""
    pushed = threading.Event()

    def serve(sock):
        sock.sendall(b'push 1\n')
        pushed.wait(20)
        sock.sendall(b'push 2\n')
        support.recv_all(sock)

    server = support.TCPServer(serve)
    try:
        proxy = vaurien_inproc('--behavior', '100:delay',
                               '--handlers.delay.sleep', '30',
                               backend=server.address)
        with proxy.connect() as sock:
            sock.sendall(b'request held 30s upstream')
            sock.settimeout(10)
            start = time.monotonic()
            assert support.recv_exact(sock, 7) == b'push 1\n'
            pushed.set()
            assert support.recv_exact(sock, 7) == b'push 2\n'
            # the request is still being held: far less than 30 s went by
            assert time.monotonic() - start < 20
    finally:
        server.close()


# -- backend down --------------------------------------------------------------------

@pytest.mark.timeout(60)
def test_backend_refused_then_back(vaurien_inproc):
    """Refused: the client is closed promptly, a warning names the backend
    and the reason, and the proxy serves the next connections (which work
    once the backend listens)."""
    holder = socket.socket()
    holder.bind((support.HOST, 0))   # bound, not listening: refused
    port = holder.getsockname()[1]
    try:
        proxy = vaurien_inproc(backend=(support.HOST, port))
        for _ in range(3):
            with proxy.connect() as sock:
                sock.sendall(b'anyone there?')
                assert support.ends_soon(sock, 5)
        log = support.wait_until(
            lambda: 'unreachable' in proxy.log() and proxy.log(),
            what='the warning')
        line = [l for l in log.splitlines() if 'unreachable' in l][0]
        assert 'WARNING' in line
        assert '127.0.0.1:%d' % port in line
        assert 'refused' in line
        # now the backend comes up: the very same proxy relays
        holder.listen(5)
        with proxy.connect() as sock:
            sock.sendall(b'ping')
            backend, _ = holder.accept()
            with backend:
                assert support.recv_exact(backend, 4) == b'ping'
                backend.sendall(b'pong')
                assert support.recv_exact(sock, 4) == b'pong'
    finally:
        holder.close()


def test_backend_unknown_host(vaurien_inproc, echo_server):
    proxy = vaurien_inproc('--distant', 'nonexistent.invalid:80')
    with proxy.connect() as sock:
        assert support.ends_soon(sock, 10)
    log = support.wait_until(
        lambda: 'unreachable' in proxy.log() and proxy.log(),
        what='the warning')
    line = [l for l in log.splitlines() if 'unreachable' in l][0]
    assert 'nonexistent.invalid:80' in line
    assert 'resolve' in line
    # still serving
    with proxy.connect() as sock:
        assert support.ends_soon(sock, 10)
    assert proxy.running()


@pytest.mark.timeout(60)
def test_backend_connect_timeout(vaurien_inproc):
    """A local backend whose accept queue is full never answers a SYN:
    --timeout bounds the wait, the warning says so."""
    full = socket.socket()
    full.bind((support.HOST, 0))
    full.listen(0)
    fillers = []
    try:
        # fill the accept queue (never accepted); further SYNs get dropped
        for _ in range(8):
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex(full.getsockname())
            fillers.append(filler)
        probe = socket.socket()
        probe.settimeout(0.5)
        try:
            probe.connect(full.getsockname())
            pytest.skip('this kernel accepts beyond the backlog')
        except socket.timeout:
            pass
        finally:
            probe.close()
        proxy = vaurien_inproc('--timeout', '0.5', backend=full.getsockname())
        with proxy.connect() as sock:
            assert support.ends_soon(sock, 10)
        log = support.wait_until(
            lambda: 'unreachable' in proxy.log() and proxy.log(),
            what='the warning')
        line = [l for l in log.splitlines() if 'unreachable' in l][0]
        assert '0.5s' in line and '--timeout' in line
    finally:
        for filler in fillers:
            filler.close()
        full.close()


@pytest.mark.timeout(30)
def test_idle_connection_stays_open(vaurien_inproc, echo_server):
    """An idle client is not cut, even well past --timeout."""
    proxy = vaurien_inproc('--timeout', '0.3', backend=echo_server.address)
    with proxy.connect() as sock:
        sock.sendall(b'one')
        assert support.recv_exact(sock, 3) == b'one'
        time.sleep(1.5)   # idle on purpose: five times --timeout
        sock.sendall(b'two')
        assert support.recv_exact(sock, 3) == b'two'


def test_one_backend_connection_per_client(vaurien_inproc, echo_server):
    echo_server.server.socket.listen(128)   # socketserver's backlog is 5
    proxy = vaurien_inproc(backend=echo_server.address)
    socks = [proxy.connect() for _ in range(6)]
    try:
        for i, sock in enumerate(socks):
            sock.sendall(b'client %d' % i)
        for i, sock in enumerate(reversed(socks)):
            i = len(socks) - 1 - i
            assert support.recv_exact(sock, len(b'client %d' % i)) \
                == b'client %d' % i
        assert echo_server.connections == 6
    finally:
        for sock in socks:
            sock.close()
    with proxy.connect() as sock:
        sock.sendall(b'x')
        assert support.recv_exact(sock, 1) == b'x'
    assert echo_server.connections == 7


# -- handlers and the engine ---------------------------------------------------------

ENGINE_HANDLERS = textwrap.dedent('''
    """Handlers written against the contract, for the engine tests."""
    from vaurien.handlers import BaseHandler


    class Boom(BaseHandler):
        """Forwards, except that data containing 'boom' makes it raise."""
        name = 'boom'

        def __call__(self, client_sock, backend_sock, to_backend):
            data = self._get_data(client_sock, backend_sock, to_backend)
            if b'boom' in data:
                raise RuntimeError('kaboom on purpose')
            if data:
                self._forward(client_sock, backend_sock, to_backend, data)
            return True


    def exiter(client_sock, backend_sock, to_backend):
        """A plain callable calling sys.exit() on 'exit'."""
        import sys
        src = client_sock if to_backend else backend_sock
        dst = backend_sock if to_backend else client_sock
        data = src.recv(100)
        if data == b'exit':
            sys.exit(3)
        if data:
            dst.sendall(data)
        return data


    class Closer(BaseHandler):
        """Closes the backend socket when the client says 'close'."""
        name = 'closer'

        def __call__(self, client_sock, backend_sock, to_backend):
            data = self._get_data(client_sock, backend_sock, to_backend)
            if data == b'close':
                backend_sock.close()
                return True
            if data:
                self._forward(client_sock, backend_sock, to_backend, data)
            return True


    class NoReturn(BaseHandler):
        """Forwards and returns None, like the seed's Delay example."""
        name = 'noreturn'

        def __call__(self, client_sock, backend_sock, to_backend):
            data = self._get_data(client_sock, backend_sock, to_backend)
            if data:
                dest = to_backend and backend_sock or client_sock
                dest.sendall(data)


    class Once(BaseHandler):
        """Forwards one read from the client, then ends that direction."""
        name = 'once'

        def __call__(self, client_sock, backend_sock, to_backend):
            data = self._get_data(client_sock, backend_sock, to_backend)
            if data:
                self._forward(client_sock, backend_sock, to_backend, data)
            if to_backend:
                return False
            return bool(data)


    class Py2(BaseHandler):
        """Python 2 era: 'return data != ""' is always true for bytes."""
        name = 'py2'

        def __call__(self, client_sock, backend_sock, to_backend):
            data = self._get_data(client_sock, backend_sock, to_backend)
            if data:
                dest = to_backend and backend_sock or client_sock
                dest.sendall(data)
            return data != ''


    class Direct(BaseHandler):
        """Reads the source socket itself with recv, never _get_data."""
        name = 'direct'

        def __call__(self, client_sock, backend_sock, to_backend):
            src = client_sock if to_backend else backend_sock
            dst = backend_sock if to_backend else client_sock
            data = src.recv(1024)
            if data:
                dst.sendall(data)
            return True


    class Small(BaseHandler):
        """Forwards, insisting that no read is larger than 7 bytes."""
        name = 'small'

        def __call__(self, client_sock, backend_sock, to_backend):
            data = self._get_data(client_sock, backend_sock, to_backend)
            if len(data) > 7:
                raise AssertionError('read %d bytes' % len(data))
            if data:
                self._forward(client_sock, backend_sock, to_backend, data)
            return True


    class DirectInto(BaseHandler):
        """Reads the source socket itself with recv_into."""
        name = 'direct_into'

        def __call__(self, client_sock, backend_sock, to_backend):
            src = client_sock if to_backend else backend_sock
            dst = backend_sock if to_backend else client_sock
            buf = bytearray(1024)
            count = src.recv_into(buf)
            if count:
                dst.sendall(bytes(buf[:count]))
            return 1
''')


@pytest.fixture
def engine_handlers(tmp_path):
    """The directory holding module ``enginehandlers`` (for extra_paths)."""
    support.write_module(tmp_path, 'enginehandlers', ENGINE_HANDLERS)
    return str(tmp_path)


def _roundtrips(sock, count=5):
    for i in range(count):
        message = b'message %d ' % i * (i + 1)
        sock.sendall(message)
        assert support.recv_exact(sock, len(message)) == message


def test_handler_exception_ends_only_its_connection(vaurien_inproc,
                                                    echo_server,
                                                    engine_handlers):
    proxy = vaurien_inproc('--behavior', '100:enginehandlers.Boom',
                           backend=echo_server.address,
                           extra_paths=[engine_handlers])
    with proxy.connect() as calm, proxy.connect() as doomed:
        _roundtrips(calm, 2)
        doomed.sendall(b'boom')
        assert support.ends_soon(doomed, 5)
        _roundtrips(calm, 2)
    with proxy.connect() as fresh:
        _roundtrips(fresh, 2)
    log = proxy.log()
    failed = [l for l in log.splitlines() if 'failed' in l]
    assert failed, log
    # logged under its class's name (the seed's rule)
    assert "handler 'boom' failed" in failed[0]
    assert 'RuntimeError: kaboom on purpose' in failed[0]
    assert 'ERROR' in failed[0]
    assert proxy.running()


def test_handler_calling_sys_exit_ends_only_its_connection(
        vaurien_inproc, echo_server, engine_handlers):
    proxy = vaurien_inproc('--behavior', '100:enginehandlers.exiter',
                           backend=echo_server.address,
                           extra_paths=[engine_handlers])
    with proxy.connect() as sock:
        sock.sendall(b'exit')
        assert support.ends_soon(sock, 5)
    with proxy.connect() as sock:
        _roundtrips(sock, 2)
    assert proxy.running()
    assert "handler 'enginehandlers.exiter' failed" in proxy.log()
    assert 'SystemExit: 3' in proxy.log()


def test_handler_closing_a_socket_ends_the_connection(vaurien_inproc,
                                                      engine_handlers):
    server = support.RecordingServer(reply=lambda data: data)
    try:
        proxy = vaurien_inproc('--behavior', '100:enginehandlers:Closer',
                               backend=server.address,
                               extra_paths=[engine_handlers])
        with proxy.connect() as sock:
            _roundtrips(sock, 2)
            sock.sendall(b'close')
            assert support.ends_soon(sock, 5)
        assert server.eof[0].wait(5)
        assert 'failed' not in proxy.log()
    finally:
        server.close()


@pytest.mark.parametrize('handler', ['NoReturn', 'Py2', 'Direct', 'DirectInto'])
def test_keep_going_until_end_of_stream(vaurien_inproc, echo_server,
                                        engine_handlers, handler):
    """None, an always-true Python 2 style result, or a handler reading
    the socket itself: a whole conversation flows, and end of stream ends
    it (no spinning, no lost bytes)."""
    proxy = vaurien_inproc('--behavior', '100:enginehandlers.' + handler,
                           backend=echo_server.address,
                           extra_paths=[engine_handlers])
    with proxy.connect() as sock:
        _roundtrips(sock, 5)
        tail = b'last words ' * 500
        sock.sendall(tail)
        sock.shutdown(socket.SHUT_WR)
        assert support.recv_all(sock) == tail
    # the connection is over on the proxy side too: no greenlet spinning
    # (in the proxy's thread, which runs every greenlet of its hub)
    stat = '/proc/%d/task/%d/stat' % (proxy.pid, proxy.thread.native_id)
    support.wait_until(lambda: _cpu_idle(stat), timeout=10,
                       what='the proxy to be idle')
    assert 'failed' not in proxy.log()


def _cpu_idle(stat):
    """True when the process or thread of *stat* (its /proc/.../stat file)
    used (almost) no CPU time during 0.3 s."""
    def ticks():
        with open(stat) as fh:
            fields = fh.read().rsplit(')', 1)[1].split()
        return int(fields[11]) + int(fields[12])
    before = ticks()
    time.sleep(0.3)
    return ticks() - before <= 3


def test_false_ends_direction_with_half_close(vaurien_inproc, engine_handlers):
    """False from the client direction: the backend sees end of stream, and
    its answer still reaches the client, which then sees the end."""
    server = support.RecordingServer(reply=lambda data: data.upper())
    try:
        proxy = vaurien_inproc('--behavior', '100:enginehandlers.Once',
                               backend=server.address,
                               extra_paths=[engine_handlers])
        with proxy.connect() as sock:
            sock.sendall(b'only this')
            support.wait_until(lambda: server.eof, what='the backend')
            assert server.eof[0].wait(5), 'the backend saw no end of stream'
            assert support.recv_all(sock) == b'ONLY THIS'
        assert bytes(server.received[0]) == b'only this'
    finally:
        server.close()


# -- descriptors ----------------------------------------------------------------------

@pytest.mark.timeout(90)
def test_descriptors_back_to_baseline(vaurien, echo_server, engine_handlers):
    proxy = vaurien('--behavior',
                    '15:blackout, 15:hang, 10:enginehandlers.Boom, 10:error',
                    '--seed', '3',
                    backend=echo_server.address, extra_paths=[engine_handlers])
    pid = proxy.proc.pid
    # one connection first, so that lazy imports and buffers are in place
    with proxy.connect() as sock:
        sock.sendall(b'warm')
        sock.settimeout(2)
        try:
            sock.recv(10)
        except OSError:
            pass
    support.wait_until(lambda: support.tcp_connections(pid) == 0,
                       what='the proxy to close the first connection')
    baseline = support.fd_count(pid)
    for i in range(60):
        sock = proxy.connect()
        try:
            sock.settimeout(0.1)    # hang and blackout never answer
            sock.sendall(b'boom' if i % 7 == 0 else b'data %d' % i)
            try:
                sock.recv(100)
            except OSError:
                pass
            if i % 3 == 0:
                try:
                    sock.shutdown(socket.SHUT_WR)
                    support.recv_all(sock)
                except OSError:
                    pass
        finally:
            sock.close()
    # clients that vanish without a word, with data in flight
    for i in range(20):
        sock = proxy.connect()
        sock.sendall(b'x' * 100000)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                        b'\x01\x00\x00\x00\x00\x00\x00\x00')
        sock.close()
    support.wait_fds(pid, baseline)
    assert proxy.proc.poll() is None
    # the only errors logged are the handler raising on purpose
    errors = [l for l in proxy.log().splitlines()
              if '[ERROR]' in l or '[WARNING]' in l or '[CRITICAL]' in l]
    assert errors and all('kaboom on purpose' in l for l in errors), errors


@pytest.mark.timeout(60)
def test_descriptors_back_to_baseline_backend_down(vaurien):
    holder = socket.socket()
    holder.bind((support.HOST, 0))
    try:
        proxy = vaurien(backend=holder.getsockname())
        pid = proxy.proc.pid
        with proxy.connect() as sock:
            support.ends_soon(sock)
        baseline = support.fd_count(pid)
        for _ in range(30):
            with proxy.connect() as sock:
                support.ends_soon(sock)
        proxy2 = vaurien('--distant', 'nonexistent.invalid:80')
        pid2 = proxy2.proc.pid
        with proxy2.connect() as sock:
            support.ends_soon(sock)
        baseline2 = support.fd_count(pid2)
        for _ in range(10):
            with proxy2.connect() as sock:
                support.ends_soon(sock)
        support.wait_fds(pid, baseline)
        support.wait_fds(pid2, baseline2)
    finally:
        holder.close()


def test_backend_resetting_connections(vaurien_inproc):
    """A backend that resets at once: the client is closed, nothing logged
    as a failure, the proxy goes on."""
    def reset(sock):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                        b'\x01\x00\x00\x00\x00\x00\x00\x00')
        sock.close()

    server = support.TCPServer(reset)
    try:
        proxy = vaurien_inproc(backend=server.address)
        for _ in range(5):
            with proxy.connect() as sock:
                try:
                    sock.sendall(b'hello' * 1000)
                except OSError:
                    pass
                assert support.ends_soon(sock, 5)
        assert 'failed' not in proxy.log()
        assert 'Traceback' not in proxy.log()
        assert proxy.running()
    finally:
        server.close()


@pytest.mark.timeout(60)
def test_many_concurrent_connections(vaurien_inproc, echo_server):
    # socketserver listens with a backlog of 5: make room for 100 at once
    echo_server.server.socket.listen(128)
    proxy = vaurien_inproc(backend=echo_server.address)
    socks = [proxy.connect() for _ in range(100)]
    try:
        for i, sock in enumerate(socks):
            sock.sendall(b'%03d' % i * 100)
        for i, sock in enumerate(socks):
            assert support.recv_exact(sock, 300) == b'%03d' % i * 100
    finally:
        for sock in socks:
            sock.close()
    support.wait_until(lambda: echo_server.connections == 100,
                       what='100 backend connections')


@pytest.mark.timeout(30)
def test_sigterm_with_connections_in_flight(vaurien, echo_server):
    """SIGTERM ends the process promptly and cleanly even with a client
    in the middle of a long delay and another one idle."""
    proxy = vaurien('--behavior', '100:delay', '--handlers.delay.sleep', '60',
                    backend=echo_server.address)
    with proxy.connect() as delayed, proxy.connect() as idle:
        delayed.sendall(b'held')
        support.wait_until(lambda: echo_server.connections == 2,
                           what='both backend connections')
        start = time.monotonic()
        proxy.proc.send_signal(signal.SIGTERM)
        assert proxy.proc.wait(20) == 0, proxy.output()
        assert time.monotonic() - start < 15
        assert support.ends_soon(delayed, 5) and support.ends_soon(idle, 5)
    output = proxy.output()
    assert 'stopping' in output
    assert 'Traceback' not in output


def test_bufsize_bounds_handler_reads(vaurien_inproc, echo_server,
                                      engine_handlers):
    proxy = vaurien_inproc('--behavior', '50:enginehandlers.Small',
                           '--bufsize', '7',
                           backend=echo_server.address,
                           extra_paths=[engine_handlers])
    with proxy.connect() as sock:
        message = bytes(range(256)) * 40
        sock.sendall(message)
        sock.shutdown(socket.SHUT_WR)
        assert support.recv_all(sock) == message
    assert 'failed' not in proxy.log()


def test_ipv6_both_sides(vaurien_inproc):
    """Listening on [::1] and relaying to a backend on [::1]."""
    try:
        backend = socket.socket(socket.AF_INET6)
        backend.bind(('::1', 0))
    except OSError:
        pytest.skip('no IPv6 loopback here')
    with backend:
        backend.listen(5)
        port = backend.getsockname()[1]
        proxy = vaurien_inproc('--local', '[::1]:0',
                               '--distant', '[::1]:%d' % port)
        assert '-> [::1]:%d' % port in proxy.log()
        with socket.create_connection(('::1', proxy.port), timeout=10) as sock:
            sock.sendall(b'over v6')
            conn, _ = backend.accept()
            with conn:
                conn.settimeout(10)
                assert support.recv_exact(conn, 7) == b'over v6'
                conn.sendall(b'back')
                assert support.recv_exact(sock, 4) == b'back'
