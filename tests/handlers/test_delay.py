"""The ``delay`` handler: ``sleep`` seconds, before requests or after responses."""
import hashlib
import os
import socket
import threading
import time

import pytest

from vaurien.handlers.delay import Delay

import support

# gevent timers may fire a hair early; a lower bound allows for that only
EARLY = 0.02


class StampServer(support.TCPServer):
    """Echoes each read upper-cased, stamping when it got and sent it."""

    def __init__(self):
        self.got_at = []
        self.sent_at = []

        def serve(sock):
            while True:
                data = sock.recv(1 << 16)
                if not data:
                    return
                self.got_at.append(time.monotonic())
                sock.sendall(data.upper())
                self.sent_at.append(time.monotonic())
        super().__init__(serve)


def _exchange(sock, message):
    """Send *message*, read its answer; (sent at, answered at)."""
    sent = time.monotonic()
    sock.sendall(message)
    assert support.recv_exact(sock, len(message)) == message.upper()
    return sent, time.monotonic()


def _stamps(server, count=1):
    """The server's first (got at, sent at): its thread stamps a send
    once ``sendall`` returned, which may be after the answer arrived."""
    support.wait_until(lambda: len(server.sent_at) >= count,
                       what='the backend to stamp its answer')
    return server.got_at[0], server.sent_at[0]


@pytest.fixture
def stamp_server():
    server = StampServer()
    yield server
    server.close()


def test_defaults():
    handler = Delay()
    assert handler.option('sleep') == 1.0 and handler.option('before') is True
    assert Delay.check_options({'sleep': '0.25', 'before': 'OFF'}) == \
        {'sleep': 0.25, 'before': False}
    with pytest.raises(ValueError, match="delay: option 'sleep' expects"):
        Delay.check_options({'sleep': '-1'})
    with pytest.raises(ValueError, match="option 'before' expects a boolean"):
        Delay.check_options({'before': 'sometimes'})


@pytest.mark.timeout(30)
def test_before_delays_requests(vaurien_inproc, stamp_server):
    proxy = vaurien_inproc('--behavior', '100:delay',
                           '--handlers.delay.sleep', '1.5',
                           backend=stamp_server.address)
    with proxy.connect() as sock:
        sent, answered = _exchange(sock, b'hello')
    got_at, sent_at = _stamps(stamp_server)
    # the request waited at least 1.5 s before reaching the backend ...
    assert got_at - sent >= 1.5 - EARLY
    # ... and the answer was not held for another 1.5 s (generous bound)
    assert answered - sent_at < 1.5
    assert answered - sent < 1.5 + 10


@pytest.mark.timeout(30)
def test_after_delays_responses(vaurien_inproc, stamp_server):
    proxy = vaurien_inproc('--behavior', '100:delay',
                           '--handlers.delay.sleep', '1.5',
                           '--handlers.delay.before', 'false',
                           backend=stamp_server.address)
    with proxy.connect() as sock:
        sent, answered = _exchange(sock, b'hello')
    got_at, sent_at = _stamps(stamp_server)
    assert got_at - sent < 1.5          # the request went straight through
    assert answered - sent_at >= 1.5 - EARLY   # the answer was held
    assert answered - sent < 1.5 + 10


@pytest.mark.timeout(30)
def test_fractions_and_every_message(vaurien_inproc, stamp_server):
    """sleep=0.3 (a fraction), each message of a conversation is delayed."""
    proxy = vaurien_inproc('--behavior', '100:delay',
                           '--handlers.delay.sleep=0.3',
                           backend=stamp_server.address)
    with proxy.connect() as sock:
        for i in range(4):
            sent, answered = _exchange(sock, b'message %d' % i)
            assert answered - sent >= 0.3 - EARLY
            assert answered - sent < 0.3 + 10


@pytest.mark.timeout(30)
def test_zero_sleep_passes(vaurien_inproc, echo_server):
    proxy = vaurien_inproc('--behavior', '100:delay',
                           '--handlers.delay.sleep', '0',
                           backend=echo_server.address)
    with proxy.connect() as sock:
        for i in range(20):
            sock.sendall(b'%d' % i)
            assert support.recv_exact(sock, len(b'%d' % i)) == b'%d' % i


@pytest.mark.timeout(30)
def test_delay_half_close_keeps_answer(vaurien_inproc, hash_server):
    proxy = vaurien_inproc('--behavior', '100:delay',
                           '--handlers.delay.sleep', '0.2',
                           backend=hash_server.address)
    with proxy.connect() as sock:
        sock.sendall(b'abc')
        sock.shutdown(socket.SHUT_WR)
        assert support.recv_all(sock) == ('%s 3\n' % support.sha256(b'abc')).encode()


@pytest.mark.timeout(30)
def test_delay_in_ini(vaurien_inproc, stamp_server, tmp_path):
    ini = tmp_path / 'v.ini'
    ini.write_text('[vaurien]\nbehavior = 100:delay\n\n'
                   '[handler:delay]\nsleep = 0.4\nbefore = No\n')
    proxy = vaurien_inproc('--config', str(ini), backend=stamp_server.address)
    with proxy.connect() as sock:
        sent, answered = _exchange(sock, b'hi')
    assert answered - _stamps(stamp_server)[1] >= 0.4 - EARLY


@pytest.mark.timeout(60)
def test_byte_exact_through_the_handler(vaurien_inproc, echo_server):
    """16 MiB each way through the handler's own path (not the engine's
    pass-through): nothing lost, nothing reordered."""
    proxy = vaurien_inproc('--behavior', '100:delay',
                           '--handlers.delay.sleep', '0',
                           backend=echo_server.address)
    payload = os.urandom(16 << 20)
    got = hashlib.sha256()
    with proxy.connect(timeout=50) as sock:
        def reader():
            while True:
                data = sock.recv(1 << 20)
                if not data:
                    return
                got.update(data)
        thread = threading.Thread(target=reader)
        thread.start()
        sock.sendall(payload)
        sock.shutdown(socket.SHUT_WR)
        thread.join(50)
    assert got.hexdigest() == support.sha256(payload)
