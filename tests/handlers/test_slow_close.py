"""The ``slow_close`` handler: a close is passed on ``delay`` late."""
import socket
import time

import pytest

import support
from fault_support import answer_and_close, ini_for, \
    read_exactly, read_to_end, start_error, wait_for


@pytest.fixture
def closing_server():
    """Answers "bye" and closes; ``closing_server.closing`` holds when
    each close began (the server closes a connection once its handler
    returned)."""
    closing = []

    def serve(sock):
        answer_and_close(sock)
        closing.append(time.monotonic())
    server = support.TCPServer(serve)
    server.closing = closing
    yield server
    server.close()


@pytest.mark.timeout(60)
def test_backend_close_reaches_client_late(vaurien_inproc, closing_server):
    proxy = vaurien_inproc('--behavior', '100:slow_close',
                           '--handlers.slow_close.delay', '1',
                           backend=closing_server.address)
    with proxy.connect() as sock:
        sock.sendall(b'hi')
        assert read_exactly(sock, 3) == b'bye'
        data, how, _ = read_to_end(sock, timeout=30)
        # From the backend's close, not from when this thread read "bye",
        # which a busy machine may delay.
        waited = time.monotonic() - closing_server.closing[0]
    assert (data, how) == (b'', 'eof')     # a clean close, only late
    assert 1.0 <= waited < 20


@pytest.mark.timeout(60)
def test_client_close_reaches_backend_late(vaurien_inproc, recorder):
    proxy = vaurien_inproc('--behavior', '100:slow_close',
                           '--handlers.slow_close.delay', '0.8',
                           backend=recorder.address)
    with proxy.connect() as sock:
        sock.sendall(b'hi')
        assert read_exactly(sock, 2) == b'hi'    # data passes untouched
        sock.shutdown(socket.SHUT_WR)
        closed = time.monotonic()
        wait_for(lambda: recorder.times and recorder.times[0]
                 and recorder.times[0][-1][1] == 'eof', timeout=20,
                 what='the backend to see the close')
        seen = recorder.times[0][-1][0]
        # The backend's close comes back slowly too.
        assert read_to_end(sock, timeout=30)[1] == 'eof'
    assert seen - closed >= 0.8
    assert seen - closed < 20


@pytest.mark.timeout(60)
def test_zero_delay_closes_at_once(vaurien_inproc, closing_server):
    proxy = vaurien_inproc('--behavior', '100:slow_close',
                           '--handlers.slow_close.delay', '0',
                           backend=closing_server.address)
    with proxy.connect() as sock:
        sock.sendall(b'hi')
        assert read_to_end(sock, timeout=10)[:2] == (b'bye', 'eof')


@pytest.mark.parametrize('value', ['-1', 'later'])
def test_bad_delay_is_a_start_up_error(value):
    line = start_error('--behavior', '100:slow_close',
                       '--handlers.slow_close.delay', value)
    assert "slow_close: option 'delay'" in line


def test_bad_delay_in_ini():
    line = start_error(ini=ini_for('100:slow_close', 'slow_close',
                                   delay='-2'))
    assert "slow_close: option 'delay'" in line
