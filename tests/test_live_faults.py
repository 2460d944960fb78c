"""The fault catalogue through the control API: bad values are refused
with a 400, and a live change ends a fault's waits at once."""
import socket
import time

import pytest

import support
from control_support import api, assert_error, start_controlled, wait_picks
from inproc import InProcessVaurien

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope='module')
def module_vaurien():
    """One vaurien --http and echo backend for the module (per worker),
    for the tests of refused values, which leave it as they found it."""
    server = support.TCPServer(support.echo)
    proc = start_controlled(InProcessVaurien, server.address)
    yield proc
    proc.stop()
    server.close()


@pytest.mark.parametrize('name, options, contains', [
    ('bandwidth', {'rate': -1}, "'rate'"),
    ('bandwidth', {'rate': 0}, "'rate'"),
    ('slicer', {'average_size': 0}, "'average_size'"),
    ('slicer', {'delay': -0.5}, "'delay'"),
    ('corrupt', {'rate': 1.5}, "'rate'"),
    ('corrupt', {'rate': -0.1}, "'rate'"),
    ('delay', {'jitter': -1}, "'jitter'"),
    ('slow_close', {'delay': -2}, "'delay'"),
    ('timeout', {'timeout': 'soon'}, "'timeout'"),
    ('reset_peer', {'timeout': -1}, "'timeout'"),
    ('limit_data', {'bytes': -5}, "'bytes'"),
    ('transient', {'agitate': 1.5}, "'agitate'"),
    ('delay', {'direction': 'sideways'}, "'direction'"),
])
def test_bad_fault_values_are_refused(module_vaurien, name, options,
                                      contains):
    proxy = module_vaurien
    assert api(proxy.http_port, 'GET', '/handler').text.strip() == 'dummy'
    body = dict(options, name=name)
    assert_error(api(proxy.http_port, 'PUT', '/behavior', body), 400,
                 contains=contains)
    # Nothing changed.
    assert api(proxy.http_port, 'GET', '/handler').text.strip() == 'dummy'


def _connect(proxy):
    sock = socket.create_connection(proxy.address, timeout=20)
    return sock


def test_switching_away_ends_a_slow_close_wait(vaurien_inproc, echo_server):
    proxy = start_controlled(vaurien_inproc, echo_server.address,
                             '--behavior', '100:slow_close',
                             '--handlers.slow_close.delay', '30')
    with _connect(proxy) as sock:
        sock.sendall(b'abc')
        assert support.recv_exact(sock, 3) == b'abc'
        wait_picks(proxy, 'slow_close', 1)    # the data
        sock.shutdown(socket.SHUT_WR)     # the close slow_close holds back
        # The end of stream is no pick: wait until the proxy has read it
        # (its handing to slow_close runs before the loop does anything
        # else, so it is then held in slow_close's wait).
        support.wait_until(lambda: proxy.call(lambda: any(
            conn.client.eof for conn in proxy.proxy.connections)),
            what='the proxy to read the end of stream')
        start = time.monotonic()
        assert api(proxy.http_port, 'POST', '/handler', 'dummy').status == 200
        assert sock.recv(10) == b''       # the close arrives now, not in 30 s
        assert time.monotonic() - start < 10


def test_switching_away_ends_a_reset_peer_wait(vaurien_inproc, echo_server):
    proxy = start_controlled(vaurien_inproc, echo_server.address,
                             '--behavior', '100:reset_peer',
                             '--handlers.reset_peer.timeout', '30')
    with _connect(proxy) as sock:
        sock.sendall(b'abc')
        wait_picks(proxy, 'reset_peer', 1)
        start = time.monotonic()
        assert api(proxy.http_port, 'POST', '/handler', 'dummy').status == 200
        with pytest.raises(ConnectionResetError):
            sock.recv(10)                 # the reset comes now
        assert time.monotonic() - start < 10


def test_switching_away_closes_a_timeout_connection(vaurien_inproc,
                                                    echo_server):
    proxy = start_controlled(vaurien_inproc, echo_server.address,
                             '--behavior', '100:timeout',
                             '--handlers.timeout.timeout', '30')
    with _connect(proxy) as sock:
        sock.sendall(b'abc')
        wait_picks(proxy, 'timeout', 1)
        start = time.monotonic()
        assert api(proxy.http_port, 'POST', '/handler', 'dummy').status == 200
        try:
            assert sock.recv(10) == b''
        except ConnectionResetError:
            pass
        assert time.monotonic() - start < 10
    # New connections are relayed again.
    with _connect(proxy) as sock:
        sock.sendall(b'ping')
        assert support.recv_exact(sock, 4) == b'ping'


def test_switching_away_releases_bandwidth(vaurien_inproc, echo_server):
    proxy = start_controlled(vaurien_inproc, echo_server.address,
                             '--behavior', '100:bandwidth',
                             '--handlers.bandwidth.rate', '1')
    payload = b'x' * 60000                # about a minute at 1 KB/s
    with _connect(proxy) as sock:
        sock.sendall(payload)
        wait_picks(proxy, 'bandwidth', 1)
        start = time.monotonic()
        assert api(proxy.http_port, 'POST', '/handler', 'dummy').status == 200
        assert support.recv_exact(sock, len(payload)) == payload
        assert time.monotonic() - start < 10
