"""The ``tls_error`` handler: failed client handshakes, with real clients."""
import http.client
import json
import socket
import ssl
import subprocess

import pytest

import support
import tls_support
from observe_support import HTTP_ARGS, finish, http_port


@pytest.fixture(scope='module')
def pki(tmp_path_factory):
    return tls_support.make_pki(str(tmp_path_factory.mktemp('pki')))


def start(vaurien_inproc, pki, backend, *args):
    return vaurien_inproc('--local-tls-cert', pki.cert, '--local-tls-key',
                          pki.key,
                          *args, backend=backend)


def handshake(pki, proxy):
    """``None`` when the handshake and an echo work, else the error."""
    raw = socket.create_connection(proxy.address, timeout=10)
    try:
        with tls_support.client_context(pki).wrap_socket(
                raw, server_hostname='localhost') as sock:
            sock.sendall(b'ping')
            data = sock.recv(10)
            return None if data == b'ping' else 'no echo: %r' % data
    except (ssl.SSLError, OSError) as exc:
        return exc
    finally:
        raw.close()


def test_alert_fails_every_handshake(vaurien_inproc, recorder, pki):
    proxy = start(vaurien_inproc, pki, recorder.address, '--behavior',
                  '100:tls_error')
    for _ in range(3):
        error = handshake(pki, proxy)
        assert isinstance(error, ssl.SSLError), error
        assert 'alert handshake failure' in str(error)
    done = subprocess.run(['curl', '-sS', '--cacert', pki.ca,
                           'https://localhost:%d/' % proxy.port],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 35, done.stderr      # SSL connect error
    assert 'handshake failure' in done.stderr
    # The backend was never connected.
    assert recorder.received == []


def test_other_alert(vaurien_inproc, echo_server, pki):
    proxy = start(vaurien_inproc, pki, echo_server.address, '--behavior',
                  '100:tls_error', '--handlers.tls_error.alert',
                  'internal_error')
    error = handshake(pki, proxy)
    assert 'alert internal error' in str(error), error


def test_abort_leaves_the_client_mid_handshake(vaurien_inproc, echo_server,
                                               pki):
    proxy = start(vaurien_inproc, pki, echo_server.address, '--behavior',
                  '100:tls_error', '--handlers.tls_error.mode', 'abort')
    for _ in range(3):
        error = handshake(pki, proxy)
        assert isinstance(error, (ssl.SSLEOFError, ConnectionResetError,
                                  ssl.SSLError)), error
        assert 'alert' not in str(error)


def test_weights_and_seed(vaurien_inproc, echo_server, pki):
    proxy = start(vaurien_inproc, pki, echo_server.address, '--behavior',
                  '50:tls_error', '--seed', '3')
    results = [handshake(pki, proxy) for _ in range(20)]
    failed = [r for r in results if r is not None]
    assert 0 < len(failed) < 20, results
    assert all('handshake failure' in str(r) for r in failed)
    # The same seed fails the same connections.
    again = start(vaurien_inproc, pki, echo_server.address, '--behavior',
                  '50:tls_error', '--seed', '3')
    assert [handshake(pki, again) is None for _ in range(20)] == \
        [r is None for r in results]


def test_pick_per_connection_and_direction(vaurien_inproc, echo_server, pki):
    proxy = start(vaurien_inproc, pki, echo_server.address, '--behavior',
                  '100:tls_error', '--pick', 'connection')
    assert handshake(pki, proxy) is not None
    downstream = start(vaurien_inproc, pki, echo_server.address, '--behavior',
                       '100:tls_error', '--handlers.tls_error.direction',
                       'downstream')
    assert handshake(pki, downstream) is None


def test_without_tls_it_passes_data(vaurien_inproc, echo_server):
    proxy = vaurien_inproc('--behavior', '100:tls_error',
                           backend=echo_server.address)
    assert 'does not terminate TLS' in proxy.log()
    with proxy.connect() as sock:
        sock.sendall(b'plain')
        assert support.recv_exact(sock, 5) == b'plain'


def test_bad_option_is_one_line():
    done = support.run_cli('--behavior', '100:tls_error',
                           '--handlers.tls_error.alert', 'nope')
    assert done.returncode == 2
    assert done.stderr.startswith("vaurien: error: ")
    assert 'alert' in done.stderr and 'handshake_failure' in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_failed_handshakes_are_counted_and_logged(vaurien_inproc, echo_server,
                                                  pki):
    # What tls_error did is one fault per connection: "errored" (an alert)
    # in the stats and, with --log-faults, in the log.
    proxy = start(vaurien_inproc, pki, echo_server.address, '--behavior',
                  '100:tls_error', '--log-faults', *HTTP_ARGS)
    for _ in range(2):
        assert isinstance(handshake(pki, proxy), ssl.SSLError)

    def stats():
        conn = http.client.HTTPConnection(support.HOST, http_port(proxy),
                                          timeout=10)
        try:
            conn.request('GET', '/stats')
            return json.loads(conn.getresponse().read())
        finally:
            conn.close()
    data = support.wait_until(
        lambda: (lambda d: d if d['closed'] == 2 else None)(stats()),
        what='the two connections closed')
    assert [e for e in data['effects'] if e[0] == 'tls_error'] == \
        [['tls_error', 'errored', 2]]
    assert data['connections'] == {'errored': 2}
    log = finish(proxy)
    assert log.count('handler tls_error: errored') == 2
