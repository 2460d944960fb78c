"""The ``limit_data`` handler: exactly ``bytes`` bytes, then closed."""
import os

import pytest

import support
from fault_support import Recorder, ini_for, read_to_end, sender_of, \
    start_error, wait_for

BIG = 100_000


@pytest.fixture
def download_server():
    server = support.TCPServer(sender_of(BIG))
    yield server
    server.close()


@pytest.fixture
def recorder():
    server = Recorder(reply=lambda sock, data: None)
    yield server
    server.close()


@pytest.fixture
def echo_recorder():
    server = Recorder()
    yield server
    server.close()


@pytest.mark.timeout(60)
@pytest.mark.parametrize('limit', [0, 1, 1000, 65536, 99_999])
def test_download_cut_at_exactly_the_limit(vaurien_inproc, download_server,
                                           limit):
    proxy = vaurien_inproc('--behavior', '100:limit_data',
                           '--handlers.limit_data.bytes', str(limit),
                           '--handlers.limit_data.direction', 'downstream',
                           backend=download_server.address)
    with proxy.connect() as sock:
        sock.sendall(b'GET')
        data, how, _ = read_to_end(sock)
    assert len(data) == limit
    assert data == b'd' * limit
    assert how in ('eof', 'reset')


@pytest.mark.timeout(60)
def test_upload_cut_at_exactly_the_limit(vaurien_inproc, recorder):
    proxy = vaurien_inproc('--behavior', '100:limit_data',
                           '--handlers.limit_data.bytes', '5000',
                           backend=recorder.address)
    payload = os.urandom(50_000)
    with proxy.connect() as sock:
        try:
            sock.sendall(payload)
        except OSError:
            pass          # the proxy may close before all of it is sent
        assert read_to_end(sock)[1] in ('eof', 'reset')
    wait_for(lambda: recorder.times and recorder.times[0]
             and recorder.times[0][-1][1] in ('eof', 'error'),
             what='the backend connection to end')
    assert bytes(recorder.received[0]) == payload[:5000]


@pytest.mark.timeout(60)
def test_both_directions_count_together(vaurien_inproc, echo_recorder):
    proxy = vaurien_inproc('--behavior', '100:limit_data',
                           '--handlers.limit_data.bytes', '1000',
                           backend=echo_recorder.address)
    with proxy.connect() as sock:
        sock.sendall(b'a' * 600)
        data, how, _ = read_to_end(sock)
    # 600 bytes up, so only 400 of the 600 echoed come back.
    assert data == b'a' * 400
    assert how == 'eof'
    assert bytes(echo_recorder.received[0]) == b'a' * 600


@pytest.mark.timeout(60)
def test_the_count_is_per_connection(vaurien_inproc, download_server):
    proxy = vaurien_inproc('--behavior', '100:limit_data',
                           '--handlers.limit_data.bytes', '3000',
                           '--handlers.limit_data.direction', 'downstream',
                           backend=download_server.address)
    for _ in range(3):
        with proxy.connect() as sock:
            sock.sendall(b'GET')
            assert len(read_to_end(sock)[0]) == 3000


@pytest.mark.parametrize('value', ['-1', '1.5', 'lots'])
def test_bad_bytes_is_a_start_up_error(value):
    line = start_error('--behavior', '100:limit_data',
                       '--handlers.limit_data.bytes', value)
    assert "limit_data: option 'bytes'" in line


def test_bad_bytes_in_ini():
    line = start_error(ini=ini_for('100:limit_data', 'limit_data',
                                   bytes='-10'))
    assert "limit_data: option 'bytes'" in line
