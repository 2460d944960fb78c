"""The control API under hostile clients, on a real proxy (vaurien --http):
refusals that do not read bodies, malformed requests that are 4xx with the
documented JSON error, a non-ASCII token, a fuzz of random requests."""
import json
import random
import socket
import subprocess
import threading
import time

import pytest

import support
from benchmarks.soak import fuzz_request
from control_support import api, start_controlled

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
def proxy(vaurien_inproc, echo_server):
    return start_controlled(vaurien_inproc, echo_server.address)


def raw(port, data, timeout=10.0, end=False):
    """Send *data* to the API (then end the stream if *end*); everything
    it answers until it closes."""
    with socket.create_connection((support.HOST, port), timeout) as sock:
        sock.sendall(data)
        if end:
            sock.shutdown(socket.SHUT_WR)
        return support.recv_answer(sock, timeout)


def error_of(answer):
    head, _, body = answer.partition(b'\r\n\r\n')
    status = int(head.split(b' ', 2)[1])
    return status, json.loads(body)['errors'][0]


def assert_clean(proxy):
    text = proxy.output()
    assert 'Traceback' not in text and '[ERROR]' not in text


@pytest.mark.parametrize('head', [
    # 413: the declared length is over the limit.
    b'PUT /behavior HTTP/1.1\r\nHost: 127.0.0.1\r\n'
    b'Content-Length: 16000000000\r\n\r\n',
    # 404 and 405: refused before the body is read.
    b'PUT /nope HTTP/1.1\r\nHost: 127.0.0.1\r\n'
    b'Content-Length: 16000000000\r\n\r\n',
    b'DELETE /handler HTTP/1.1\r\nHost: 127.0.0.1\r\n'
    b'Content-Length: 16000000000\r\n\r\n',
    # 403: a foreign Host.
    b'PUT /behavior HTTP/1.1\r\nHost: evil.example\r\n'
    b'Content-Length: 16000000000\r\n\r\n',
])
def test_a_refusal_is_answered_and_the_body_left_unread(proxy, head):
    with socket.create_connection((support.HOST, proxy.http_port), 5) as sock:
        sock.sendall(head)
        sock.setblocking(False)
        pushed = 0
        chunk = bytes(1 << 16)
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:
            try:
                pushed += sock.send(chunk)
            except BlockingIOError:
                time.sleep(0.01)
            except OSError:
                break
        sock.setblocking(True)
        answer = support.recv_answer(sock, 3)
    # Socket buffers and the server's bounded linger, not gigabytes.
    assert pushed < 16 << 20, pushed
    assert answer.startswith(b'HTTP/1.1 4'), answer[:100]
    assert_clean(proxy)


@pytest.mark.parametrize('request_bytes, status, name', [
    (b'PUT /behavior HTTP/1.1\r\nHost: 127.0.0.1\r\n'
     b'Transfer-Encoding: chunked\r\n\r\nnope\r\n', 400, 'request'),
    (b'GET /handler HTTP/1.1\r\nHost: 127.0.0.1\r\n'
     + b'X-Many: yes\r\n' * 150 + b'\r\n', 431, 'headers'),
    (b'\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03\r\n\r\n', 400, 'request'),
])
def test_malformed_requests_are_4xx_json(proxy, request_bytes, status, name):
    answer = raw(proxy.http_port, request_bytes, timeout=10)
    got, error = error_of(answer)
    assert (got, error['name']) == (status, name), answer[:300]
    assert error['description']
    assert_clean(proxy)


def test_a_truncated_body_is_a_400(proxy):
    with socket.create_connection((support.HOST, proxy.http_port), 5) as sock:
        sock.sendall(b'PUT /behavior HTTP/1.1\r\nHost: 127.0.0.1\r\n'
                     b'Content-Length: 50\r\n\r\n{"name"')
        sock.shutdown(socket.SHUT_WR)
        sock.settimeout(5)
        answer = support.recv_all(sock)
    status, error = error_of(answer)
    assert status == 400 and 'ended' in error['description']
    assert api(proxy.http_port, 'GET', '/handler').text == 'dummy'
    assert_clean(proxy)


def test_a_non_ascii_token_sent_by_curl(vaurien_inproc, echo_server):
    proxy = start_controlled(vaurien_inproc, echo_server.address,
                             '--http-token', 'sésame')
    url = 'http://%s:%d/handler' % (support.HOST, proxy.http_port)
    ok = subprocess.run(['curl', '-s', '-o', '/dev/null', '-w', '%{http_code}',
                         '-H', 'Authorization: Bearer sésame', url],
                        capture_output=True, text=True, timeout=20)
    wrong = subprocess.run(['curl', '-s', '-o', '/dev/null', '-w',
                            '%{http_code}', '-H',
                            'Authorization: Bearer sesame', url],
                           capture_output=True, text=True, timeout=20)
    assert (ok.stdout, wrong.stdout) == ('200', '401')


def test_fuzzed_requests_never_get_a_5xx(proxy):
    statuses = []
    odd = []

    def client(seed):
        rng = random.Random(seed)
        for _ in range(40):
            # The client ends its stream: a cut request is answered at
            # once (the 5 s request timeout is tested by the soak).
            answer = raw(proxy.http_port, fuzz_request(rng), timeout=8,
                         end=True)
            if answer.startswith(b'HTTP/1.1 '):
                statuses.append(int(answer[9:12]))
            elif answer:
                odd.append(answer[:100])
    threads = [threading.Thread(target=client, args=(seed,))
               for seed in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(80)
    assert not odd
    assert len(statuses) > 250 and max(statuses) < 500, \
        sorted(set(statuses))
    assert api(proxy.http_port, 'GET', '/handler').text == 'dummy'
    text = proxy.output()
    assert 'Traceback' not in text and '[ERROR]' not in text
    # Client errors are warnings, at most about one a second.
    assert text.count('[WARNING]') <= 40
