"""--max-message: a longer message is given to the handler as its head, and
its rest follows the handler's decision (sent on, replaced, dropped)."""
import http.client
import os

import pytest

from conftest import HERE, Timer, payload
from harness import pair
from vaurien.protocols import build_protocol

pytestmark = pytest.mark.timeout(90)

LIMIT = 64 << 10


def start(factory, backend, *args):
    return factory('--protocol', 'http', '--max-message', '64k', *args,
                   backend=backend.address, extra_paths=[HERE])


def exchange(proxy, method, path, body=None, count=1):
    c = http.client.HTTPConnection(*proxy.address, timeout=30)
    try:
        answers = []
        for _ in range(count):
            c.request(method, path, body=body)
            response = c.getresponse()
            answers.append((response.status, response.read()))
        return answers
    finally:
        c.close()


def test_delay_delays_the_start_then_the_rest_streams(vaurien_inproc,
                                                      http_backend):
    proxy = start(vaurien_inproc, http_backend, '--behavior', '100:delay',
                  '--handlers.delay.sleep', '0.3')
    body = os.urandom(3 << 20)
    with Timer() as t:
        [(status, echoed)] = exchange(proxy, 'POST', '/echo', body)
    assert status == 200 and echoed == body
    # One delay for the request (before=true): not one per 64k piece.
    assert 0.3 - 0.05 <= t.elapsed < 1.5


def test_error_replaces_a_long_response_whole(vaurien_inproc, http_backend):
    proxy = start(vaurien_inproc, http_backend, '--behavior', '100:error',
                  '--handlers.error.direction', 'downstream')
    answers = exchange(proxy, 'GET', '/size/%d' % (2 << 20), count=3)
    # Each 2 MiB response replaced by a 5xx; the connection stays in step.
    for status, body in answers:
        assert 500 <= status < 600 and b'injected error' in body


def test_a_long_response_through_a_passing_handler(vaurien_inproc,
                                                   http_backend):
    # Slices of about 1 KiB: the 64 KiB head in about 64 slices (the
    # default 64 B slices would take ten seconds a response).
    proxy = start(vaurien_inproc, http_backend, '--behavior', '100:slicer',
                  '--handlers.slicer.average_size', '1024',
                  '--handlers.slicer.size_variation', '512')
    answers = exchange(proxy, 'GET', '/size/%d' % (1 << 20), count=2)
    assert answers == [(200, payload(1 << 20))] * 2


def _request(size):
    return b'POST / HTTP/1.1\r\nContent-Length: %d\r\n\r\n%s' % (
        size, b'b' * size)


def test_head_then_pieces_of_the_rest():
    protocol = build_protocol('http')
    message = _request(5 * LIMIT)
    _, up, _ = pair(protocol, [message + _request(10)])
    up.stream.over = LIMIT
    head = up.read()
    assert up.streaming and LIMIT <= len(head) < len(message)
    parts = [head]
    while up.streaming:
        parts.append(up.read())
    assert b''.join(parts) == message
    assert up.read() == _request(10)


@pytest.mark.parametrize('send', [True, False])
def test_finish_sends_or_drops_the_rest(send):
    protocol = build_protocol('http')
    message = _request(5 * LIMIT)
    _, up, _ = pair(protocol, [message + _request(10)], )
    up.stream.over = LIMIT
    head = up.read()
    sent = []
    # A sink uses the bytes at once (the buffer is reused after).
    up.finish((lambda piece: sent.append(bytes(piece))) if send else None)
    assert not up.streaming
    assert (head + b''.join(sent) == message) if send else not sent
    # Memory stayed bounded: no piece longer than the limit and a buffer.
    assert all(len(piece) <= 2 * LIMIT + up.bufsize for piece in sent)
    assert up.read() == _request(10)
