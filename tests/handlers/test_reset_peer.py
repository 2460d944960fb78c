"""The ``reset_peer`` handler: a TCP RST, optionally after a delay."""
import time

import pytest

from fault_support import ini_for, read_to_end, start_error, \
    wait_for


@pytest.mark.timeout(60)
def test_reset_at_once(vaurien_inproc, recorder):
    proxy = vaurien_inproc('--behavior', '100:reset_peer',
                           backend=recorder.address)
    with proxy.connect() as sock:
        sock.sendall(b'GET / HTTP/1.0\r\n\r\n')
        data, how, _ = read_to_end(sock)
    # A reset, not a clean end of stream; the request was swallowed.
    assert (data, how) == (b'', 'reset')
    assert recorder.total() == 0


@pytest.mark.timeout(60)
def test_reset_after_timeout(vaurien_inproc, recorder):
    proxy = vaurien_inproc('--behavior', '100:reset_peer',
                           '--handlers.reset_peer.timeout', '1',
                           backend=recorder.address)
    with proxy.connect() as sock:
        start = time.monotonic()
        sock.sendall(b'hello')
        data, how, _ = read_to_end(sock, timeout=30)
        elapsed = time.monotonic() - start
    assert (data, how) == (b'', 'reset')
    assert 1.0 <= elapsed < 20


@pytest.mark.timeout(60)
def test_reset_on_the_answer(vaurien_inproc, recorder):
    """Aimed downstream: the backend gets the request, the client a reset."""
    proxy = vaurien_inproc('--behavior', '100:reset_peer',
                           '--handlers.reset_peer.direction', 'downstream',
                           backend=recorder.address)
    with proxy.connect() as sock:
        sock.sendall(b'hello')
        data, how, _ = read_to_end(sock)
    assert (data, how) == (b'', 'reset')
    wait_for(lambda: recorder.total() == 5, what='the request at the backend')
    assert bytes(recorder.received[0]) == b'hello'


@pytest.mark.parametrize('value', ['-1', 'soon'])
def test_bad_timeout_is_a_start_up_error(value):
    line = start_error('--behavior', '100:reset_peer',
                       '--handlers.reset_peer.timeout', value)
    assert "reset_peer: option 'timeout'" in line


def test_bad_timeout_in_ini():
    line = start_error(ini=ini_for('100:reset_peer', 'reset_peer',
                                   timeout='-0.5'))
    assert "reset_peer: option 'timeout'" in line
