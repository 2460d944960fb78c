"""vaurien.Client against a real proxy (``--http``) and a real backend."""
import http.client
import socket
import subprocess
import sys
import time

import pytest

import support
from control_support import api, set_back, start_controlled
from inproc import InProcessVaurien

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope='module')
def module_vaurien():
    """One vaurien --http and HTTP backend for the module (per worker)."""
    server = support.HTTPServer()
    proc = start_controlled(InProcessVaurien, server.address)
    proc.backend = server.address
    yield proc
    proc.stop()
    server.close()


@pytest.fixture
def proxy(module_vaurien):
    """vaurien --http in front of a real HTTP backend, one proxy for the
    module, set back before each test to what a new one shows."""
    return set_back(module_vaurien, module_vaurien.backend)


@pytest.fixture
def client(proxy):
    from vaurien import Client
    return Client(support.HOST, proxy.http_port)


def _get(proxy):
    conn = http.client.HTTPConnection(support.HOST, proxy.port, timeout=20)
    try:
        conn.request('GET', '/')
        return conn.getresponse().read()
    finally:
        conn.close()


def test_import_vaurien_stays_light():
    code = ('import sys, vaurien\n'
            'from vaurien import Client, start_proxy, stop_proxy\n'
            'assert "gevent" not in sys.modules, "gevent imported"\n'
            'print(Client.__module__, start_proxy.__module__)')
    result = subprocess.run([sys.executable, '-c', code], cwd=support.ROOT,
                            env=support.env_with_root(), capture_output=True,
                            text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ['vaurien.client', 'vaurien.testing']


def test_handlers(client, proxy):
    assert client.get_handler() == 'dummy'
    assert {'blackout', 'delay', 'dummy', 'error', 'hang'} <= set(
        client.list_handlers())
    client.set_handler('delay', sleep=0.2, before=False)
    assert client.get_handler() == 'delay'
    assert api(proxy.http_port, 'GET', '/proxy').json['options'] == {
        'delay': {'sleep': 0.2, 'before': False}}
    client.set_handler('20:delay,10:error')
    assert client.get_handler() == '20:delay,10:error'


def test_behaviors(client):
    assert client.get_behavior() == 'dummy'
    # Vaurien 1.9's behaviors (and the user's); every handler can be set
    assert client.list_behaviors() == ['blackout', 'delay', 'dummy', 'error',
                                       'hang', 'transient']
    assert set(client.list_behaviors()) < set(client.list_handlers())
    client.set_behavior('delay', sleep=0.1)
    assert client.get_behavior() == 'delay'
    client.set_behavior('20:delay,10:error', delay={'sleep': 0.3},
                        error={'inject': True})
    assert client.get_behavior_state() == {
        'behavior': '20:delay,10:error',
        'options': {'delay': {'sleep': 0.3}, 'error': {'inject': True}}}


def test_with_handler_restores_handler_and_options(client, proxy):
    client.set_handler('delay', sleep=0.25)
    before = client.get_behavior_state()
    with client.with_handler('blackout'):
        assert client.get_handler() == 'blackout'
        with pytest.raises((ConnectionError, http.client.HTTPException)):
            _get(proxy)
    assert client.get_behavior_state() == before == {
        'behavior': 'delay', 'options': {'delay': {'sleep': 0.25}}}
    assert _get(proxy) == support.BODY


def test_with_handler_restores_when_the_block_raises(client):
    client.set_behavior('30:error', error={'warmup': 2})
    with pytest.raises(ZeroDivisionError):
        with client.with_handler('hang'):
            assert client.get_handler() == 'hang'
            1 / 0
    assert client.get_behavior_state() == {
        'behavior': '30:error', 'options': {'error': {'warmup': 2}}}


def test_with_behavior_nested(client):
    with client.with_behavior('delay', sleep=0.1):
        with client.with_behavior('10:error,10:delay', delay={'sleep': 0.5}):
            assert client.get_behavior() == '10:error,10:delay'
        assert client.get_behavior_state()['options'] == {
            'delay': {'sleep': 0.1}}
    assert client.get_behavior() == 'dummy'


def test_refusals_raise_value_error_with_the_server_message(client):
    with pytest.raises(ValueError, match=r"unknown handler 'nope' \(known: "):
        client.set_handler('nope')
    with pytest.raises(ValueError,
                       match="delay: option 'sleep' expects a number"):
        client.set_handler('delay', sleep='abc')
    with pytest.raises(ValueError, match="unknown option 'slep'"):
        client.set_behavior('delay', slep=1)
    with pytest.raises(ValueError, match='more than 100'):
        client.set_behavior('80:delay,80:error')
    with pytest.raises(ValueError, match='unknown handler'):
        with client.with_handler('nope'):
            pass   # pragma: no cover
    assert client.get_handler() == 'dummy'


def test_down(client, proxy):
    assert _get(proxy) == support.BODY
    with client.down():
        assert client.get_proxy()['enabled'] is False
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(proxy.address, timeout=5)
    assert client.get_proxy()['enabled'] is True
    assert _get(proxy) == support.BODY
    with pytest.raises(KeyError):
        with client.down():
            raise KeyError('boom')
    assert _get(proxy) == support.BODY


def test_backend(client, proxy):
    backend_port = proxy.backend[1]
    assert client.get_backend() == '127.0.0.1:%d' % backend_port
    with support.reserved_port() as dead:
        client.set_backend('127.0.0.1', dead)
        assert client.get_backend() == '127.0.0.1:%d' % dead
        with pytest.raises((ConnectionError, http.client.HTTPException)):
            _get(proxy)
    client.set_backend('127.0.0.1:%d' % backend_port)
    assert _get(proxy) == support.BODY


def test_url_form_and_repr(proxy):
    from vaurien import Client
    client = Client('http://127.0.0.1:%d' % proxy.http_port)
    assert client.get_handler() == 'dummy'
    assert repr(client) == '<Client http://127.0.0.1:%d>' % proxy.http_port
    with pytest.raises(ValueError):
        Client('localhost', 8080, scheme='ftp')


def test_unreachable():
    from vaurien import Client
    from vaurien.client import Unreachable
    with support.reserved_port() as port:
        client = Client(support.HOST, port, timeout=5)
        with pytest.raises(Unreachable, match='cannot reach the vaurien '
                           'control API at http://127.0.0.1:%d: connection '
                           'refused' % port):
            client.get_handler()
        with pytest.raises(ConnectionError):
            client.set_handler('delay')


def test_token(vaurien_inproc, http_server):
    from vaurien import Client
    proxy = start_controlled(vaurien_inproc, http_server.address,
                             '--http-token', 'tok')
    with pytest.raises(ValueError, match='missing or wrong token'):
        Client(support.HOST, proxy.http_port).get_handler()
    with pytest.raises(ValueError, match='missing or wrong token'):
        Client(support.HOST, proxy.http_port, token='bad').get_handler()
    client = Client(support.HOST, proxy.http_port, token='tok')
    with client.with_handler('delay', sleep=0.1):
        assert client.get_handler() == 'delay'
    assert client.get_handler() == 'dummy'


# -- the original Vaurien usage, as its users wrote it ---------------------------

def test_original_vaurien_usage(http_server):
    """start_proxy, a request works, with_handler('blackout') breaks it,
    back to normal afterwards (requests and the original names)."""
    requests = pytest.importorskip('requests')
    from vaurien import Client, start_proxy, stop_proxy

    with support.reserved_port() as proxy_port, \
            support.reserved_port() as http_port:
        pid = start_proxy(proxy_port=proxy_port, backend_host='127.0.0.1',
                          backend_port=http_server.port, http_port=http_port,
                          log_output='/dev/null', log_level='error',
                          warmup=30)   # a bound, not a sleep: the default
                                       # 2 s is short on a loaded machine
    url = 'http://localhost:%d' % proxy_port
    try:
        client = Client(port=http_port)
        assert client.get_handler() == 'dummy'
        assert requests.get(url, timeout=20).content == support.BODY

        with client.with_handler('blackout'):
            # oh look we broke it
            with pytest.raises(requests.ConnectionError):
                requests.get(url, timeout=20)
            assert client.get_handler() == 'blackout'

        with client.with_handler('delay', sleep=0.3):
            started = time.monotonic()
            assert requests.get(url, timeout=20).content == support.BODY
            assert time.monotonic() - started >= 0.25

        # we should be back to normal
        assert client.get_handler() == 'dummy'
        assert requests.get(url, timeout=20).content == support.BODY
    finally:
        stop_proxy(pid)
