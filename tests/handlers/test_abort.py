"""The ``abort`` handler: a reset at once, nothing read."""
import pytest

from fault_support import read_to_end, start_error, wait_for


@pytest.mark.timeout(60)
def test_client_gets_a_reset_and_backend_nothing(vaurien_inproc, recorder):
    proxy = vaurien_inproc('--behavior', '100:abort', backend=recorder.address)
    with proxy.connect() as sock:
        sock.sendall(b'PING\r\n')
        data, how, _ = read_to_end(sock)
    assert (data, how) == (b'', 'reset')
    # The backend connection was reset too, and never got a byte: once it
    # has ended, nothing more can come.
    wait_for(lambda: recorder.times and recorder.times[0]
             and recorder.times[0][-1][1] in ('eof', 'error'),
             what='the backend connection to end')
    assert recorder.total() == 0


@pytest.mark.timeout(60)
def test_proxy_keeps_serving_after_aborts(vaurien_inproc, recorder):
    proxy = vaurien_inproc('--behavior', '100:abort', backend=recorder.address)
    for _ in range(5):
        with proxy.connect() as sock:
            sock.sendall(b'x')
            assert read_to_end(sock)[1] == 'reset'


def test_abort_takes_no_options():
    line = start_error('--behavior', '100:abort', '--handlers.abort.x', '1')
    assert "abort: unknown option 'x'" in line
