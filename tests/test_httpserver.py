"""vaurien.httpserver: the bounded HTTP server of the control API, tried
as a hostile client would, over real sockets (tests/httpserver_app.py)."""
import concurrent.futures
import json
import os
import random
import socket
import subprocess
import sys
import time

import pytest

import support
from benchmarks.soak import fuzz_request

pytestmark = pytest.mark.timeout(60)

APP = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                   'httpserver_app.py')


class Server:
    def __init__(self, connections=8, timeout=1.0):
        self.proc = subprocess.Popen(
            [sys.executable, APP, str(connections), str(timeout)],
            env=support.env_with_root(), stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
        self.port = int(self.proc.stdout.readline())
        self.address = ('127.0.0.1', self.port)

    def stop(self):
        self.proc.kill()
        _, err = self.proc.communicate(timeout=10)
        return err.decode('utf-8', 'replace')


@pytest.fixture
def httpserver_app():
    started = []

    def start(**kwargs):
        started.append(Server(**kwargs))
        return started[-1]
    yield start
    for one in started:
        one.stop()


def ask(address, raw, timeout=5.0):
    """Send *raw*, read until the server closes (or *timeout*); the bytes."""
    with socket.create_connection(address, timeout) as sock:
        sock.sendall(raw)
        return support.recv_answer(sock, timeout)


def status(answer):
    return int(answer.split(b' ', 2)[1])


def error_name(answer):
    body = answer.split(b'\r\n\r\n', 1)[1]
    return json.loads(body)['errors'][0]['name']


def test_keep_alive_and_pipelining(httpserver_app):
    srv = httpserver_app()
    answer = ask(srv.address, b'GET /ok HTTP/1.1\r\nHost: x\r\n\r\n' * 2 +
                 b'POST /echo HTTP/1.1\r\nContent-Length: 3\r\n'
                 b'Connection: close\r\n\r\nabc')
    assert answer.count(b'HTTP/1.1 200 OK') == 3
    assert answer.endswith(b'abc') and b'Connection: close' in answer


@pytest.mark.parametrize('raw, code, name', [
    (b'GARBAGE\r\n\r\n', 400, 'bad_request'),
    (b'GET /ok HTTP/9.9\r\n\r\n', 400, 'bad_request'),
    (b'GET /ok HTTP/1.1\r\nno colon\r\n\r\n', 400, 'bad_request'),
    (b'POST /echo HTTP/1.1\r\nContent-Length: 1x\r\n\r\n', 400,
     'bad_request'),
    (b'POST /echo HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n',
     400, 'bad_request'),
    (b'POST /echo HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n', 400,
     'bad_request'),
    (b'POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n', 400,
     'bad_request'),
    (b'POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n'
     b'3\r\nabcdef\r\n0\r\n\r\n', 400, 'bad_request'),
    (b'GET /ok HTTP/1.1\r\n' + b'X-A: b\r\n' * 101 + b'\r\n', 431,
     'headers_too_large'),
    (b'GET /' + b'a' * 9000 + b' HTTP/1.1\r\n\r\n', 431, 'headers_too_large'),
    (b'POST /echo HTTP/1.1\r\nContent-Length: 2000\r\n\r\n', 413,
     'body_too_large'),
    (b'POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n'
     b'800\r\n', 413, 'body_too_large'),
])
def test_malformed_requests_get_a_4xx_json_error(httpserver_app, raw, code, name):
    srv = httpserver_app()
    answer = ask(srv.address, raw)
    assert status(answer) == code, answer[:200]
    assert error_name(answer) == name
    assert b'Connection: close' in answer
    err = srv.stop()
    assert 'Traceback' not in err and 'ERROR' not in err


def test_a_truncated_body_is_a_400_even_under_a_careless_app(httpserver_app):
    srv = httpserver_app()
    with socket.create_connection(srv.address, 5) as sock:
        sock.sendall(b'POST /echo HTTP/1.1\r\nContent-Length: 100\r\n\r\nab')
        sock.shutdown(socket.SHUT_WR)
        answer = support.recv_answer(sock, 5)
    assert status(answer) == 400 and error_name(answer) == 'bad_request'


@pytest.mark.parametrize('head', [
    b'POST /refused HTTP/1.1\r\nContent-Length: 100000000000\r\n\r\n',
    b'POST /echo HTTP/1.1\r\nContent-Length: 100000000000\r\n\r\n',
])
def test_a_refusal_does_not_read_the_body(httpserver_app, head):
    """401 from the app, 413 from the server: answered, then closed; the
    client cannot push more than socket buffers and the linger cap."""
    srv = httpserver_app()
    with socket.create_connection(srv.address, 5) as sock:
        sock.sendall(head)
        sock.setblocking(False)
        pushed = 0
        chunk = bytes(1 << 16)
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            try:
                pushed += sock.send(chunk)
            except BlockingIOError:
                time.sleep(0.01)
            except OSError:
                break
        sock.setblocking(True)
        answer = support.recv_answer(sock, 2)
    assert pushed < 16 << 20
    assert answer.startswith(b'HTTP/1.1 4'), answer[:100]


def test_slow_clients_cannot_hold_the_server(httpserver_app):
    srv = httpserver_app(connections=8, timeout=5.0)
    slow = []
    for _ in range(30):                  # more than the cap, never finishing
        sock = socket.create_connection(srv.address, 5)
        sock.sendall(b'GET /ok HTTP/1.1\r\nX-Slow: ')
        slow.append(sock)
    start = time.monotonic()
    answer = ask(srv.address, b'GET /ok HTTP/1.1\r\nConnection: close\r\n\r\n')
    assert status(answer) == 200
    assert time.monotonic() - start < 2
    for sock in slow:
        sock.close()


def test_an_incomplete_head_times_out(httpserver_app):
    srv = httpserver_app(timeout=0.5)
    start = time.monotonic()
    answer = ask(srv.address, b'GET /ok HTTP/1.1\r\nX-A: b\r\n', timeout=5)
    assert status(answer) == 408
    assert time.monotonic() - start < 3


def test_fuzzed_requests_never_get_a_5xx(httpserver_app):
    srv = httpserver_app(connections=16, timeout=1.0)
    rng = random.Random(11)
    requests = [fuzz_request(rng) for _ in range(300)]
    # Eight clients at a time (the server holds 16): a request cut short
    # waits out the server's 1 s read timeout without holding up the rest.
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(
            lambda raw: ask(srv.address, raw, timeout=3), requests))
    for answer in answers:
        if answer:
            assert answer.startswith(b'HTTP/1.1 '), answer[:80]
            assert status(answer) < 500, answer[:200]
    assert status(ask(srv.address, b'GET /ok HTTP/1.1\r\n\r\n', 2)) == 200
    err = srv.stop()
    assert 'Traceback' not in err
    # Client errors: warnings, at most about one a second.
    assert err.count('WARNING') <= 30
