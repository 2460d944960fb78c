"""Prove that an application survives its backend failing, with pytest.

Vaurien's pytest plugin gives the ``vaurien_proxy`` fixture: it starts a
real proxy in front of a real backend, and the test points the application
at the proxy instead. Run with ``pytest examples/test_with_vaurien.py``.
"""
import http.client
import http.server
import threading

import pytest


class Greeter(http.server.BaseHTTPRequestHandler):
    """The backend: answers every GET with "hello"."""
    protocol_version = 'HTTP/1.1'

    def do_GET(self):
        self.send_response(200)
        self.send_header('Content-Length', '5')
        self.end_headers()
        self.wfile.write(b'hello')

    def log_message(self, *args):
        pass


@pytest.fixture
def backend():
    """A real HTTP server on a free port; its (host, port)."""
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Greeter)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address
    server.shutdown()
    server.server_close()


def fetch_greeting(host, port, timeout=2.0):
    """The application code under test: the greeting, or a fallback when
    the backend fails (connection refused or cut, no answer in time, an
    answer that makes no sense)."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request('GET', '/')
        return conn.getresponse().read().decode()
    except (OSError, http.client.HTTPException, UnicodeDecodeError):
        return 'fallback'
    finally:
        conn.close()


def test_greeting_through_the_proxy(vaurien_proxy, backend):
    proxy = vaurien_proxy(backend=backend)
    assert fetch_greeting(proxy.host, proxy.port) == 'hello'


def test_falls_back_during_a_blackout(vaurien_proxy, backend):
    proxy = vaurien_proxy(backend=backend)
    with proxy.with_handler('blackout'):
        assert fetch_greeting(proxy.host, proxy.port) == 'fallback'
    assert fetch_greeting(proxy.host, proxy.port) == 'hello'


def test_falls_back_when_the_backend_is_too_slow(vaurien_proxy, backend):
    proxy = vaurien_proxy(backend=backend)
    with proxy.with_handler('delay', sleep=30):
        assert fetch_greeting(proxy.host, proxy.port, timeout=0.5) \
            == 'fallback'
    assert fetch_greeting(proxy.host, proxy.port) == 'hello'


def test_falls_back_while_the_service_is_down(vaurien_proxy, backend):
    proxy = vaurien_proxy(backend=backend)
    with proxy.down():
        assert fetch_greeting(proxy.host, proxy.port) == 'fallback'
    assert fetch_greeting(proxy.host, proxy.port) == 'hello'


def test_copes_with_a_flaky_backend(vaurien_proxy, backend):
    # Each time data is readable, a coin flip: pass it on, or cut the
    # connection. Some greetings get through, the others fall back.
    proxy = vaurien_proxy(backend=backend, behavior='50:blackout')
    answers = [fetch_greeting(proxy.host, proxy.port) for _ in range(50)]
    assert 'hello' in answers
    assert 'fallback' in answers
