"""The ``timeout`` handler: data swallowed, closed after ``timeout``."""
import time

import pytest

from fault_support import ini_for, read_to_end, start_error


@pytest.mark.timeout(60)
def test_swallows_then_closes_cleanly(vaurien_inproc, recorder):
    proxy = vaurien_inproc('--behavior', '100:timeout',
                           '--handlers.timeout.timeout', '1',
                           backend=recorder.address)
    with proxy.connect() as sock:
        start = time.monotonic()
        sock.sendall(b'PING\r\n')
        time.sleep(0.1)
        sock.sendall(b'PING again\r\n')
        data, how, _ = read_to_end(sock, timeout=30)
        elapsed = time.monotonic() - start
    assert (data, how) == (b'', 'eof')
    assert 1.0 <= elapsed < 20
    assert recorder.total() == 0


@pytest.mark.timeout(60)
def test_zero_never_closes(vaurien_inproc, recorder):
    proxy = vaurien_inproc('--behavior', '100:timeout',
                           '--handlers.timeout.timeout', '0',
                           backend=recorder.address)
    with proxy.connect() as sock:
        sock.sendall(b'PING\r\n')
        data, how, _ = read_to_end(sock, timeout=2.5)
    assert (data, how) == (b'', 'timeout')
    assert recorder.total() == 0
    # The proxy still serves once the client has given up.
    with proxy.connect() as sock:
        sock.sendall(b'x')
        assert read_to_end(sock, timeout=1)[:2] == (b'', 'timeout')


@pytest.mark.timeout(60)
def test_deadline_counts_from_the_first_event(vaurien_inproc, recorder):
    """Data sent late does not push the close back."""
    proxy = vaurien_inproc('--behavior', '100:timeout',
                           '--handlers.timeout.timeout', '1.5',
                           backend=recorder.address)
    with proxy.connect() as sock:
        start = time.monotonic()
        sock.sendall(b'a')
        time.sleep(1.0)
        try:
            sock.sendall(b'b')
        except OSError:
            pass
        data, how, _ = read_to_end(sock, timeout=30)
        elapsed = time.monotonic() - start
    assert how == 'eof' and data == b''
    assert 1.5 <= elapsed < 20


@pytest.mark.parametrize('value', ['-1', 'never'])
def test_bad_timeout_is_a_start_up_error(value):
    line = start_error('--behavior', '100:timeout',
                       '--handlers.timeout.timeout', value)
    assert "timeout: option 'timeout'" in line


def test_bad_timeout_in_ini():
    line = start_error(ini=ini_for('100:timeout', 'timeout', timeout='-3'))
    assert "timeout: option 'timeout'" in line
