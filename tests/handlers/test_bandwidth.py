"""The ``bandwidth`` handler: a steady rate, in small pieces."""
import os
import socket
import threading
import time

import pytest

import support
from fault_support import ini_for, read_to_end, start_error

RATE_KB = 64
RATE = RATE_KB * 1024            # bytes per second
SIZE = 2 * RATE                  # a two-second transfer


def send_size(sock):
    """Answer a request with SIZE bytes, then close."""
    if sock.recv(1024):
        sock.sendall(os.urandom(16) * (SIZE // 16))


@pytest.fixture
def download_server():
    server = support.TCPServer(send_size)
    yield server
    server.close()


def download(proxy):
    with proxy.connect() as sock:
        start = time.monotonic()
        sock.sendall(b'GET')
        data, how, stamps = read_to_end(sock, timeout=30)
    return data, how, start, stamps


@pytest.mark.timeout(60)
def test_rate_never_exceeded_and_roughly_held(vaurien_inproc,
                                              download_server):
    proxy = vaurien_inproc('--behavior', '100:bandwidth',
                           '--handlers.bandwidth.rate', str(RATE_KB),
                           backend=download_server.address)
    data, how, start, stamps = download(proxy)
    assert (len(data), how) == (SIZE, 'eof')
    elapsed = stamps[-1][0] - start
    rate = SIZE / elapsed
    # Too fast would be the handler's fault: within 10%. Too slow can be a
    # busy machine's (a loop turn late by more than the handler's catch-up
    # allowance loses that time): within 30%.
    assert rate <= 1.1 * RATE, 'too fast: %.0f B/s' % rate
    assert rate >= 0.7 * RATE, 'too slow: %.0f B/s' % rate


@pytest.mark.timeout(60)
def test_flow_is_smooth(vaurien_inproc, download_server):
    """No burst: by any time t, at most about t seconds' worth arrived."""
    proxy = vaurien_inproc('--behavior', '100:bandwidth',
                           '--handlers.bandwidth.rate', str(RATE_KB),
                           backend=download_server.address)
    data, how, start, stamps = download(proxy)
    assert len(data) == SIZE
    piece = RATE * 0.02
    received = 0
    for when, count in stamps:
        received += count
        allowed = RATE * (when - start) * 1.05 + 3 * piece
        assert received <= allowed, (received, when - start)
    # Many small arrivals, not a few big ones.
    assert len(stamps) >= 40


@pytest.mark.timeout(60)
def test_upload_is_throttled_and_intact(vaurien_inproc, hash_server):
    proxy = vaurien_inproc('--behavior', '100:bandwidth',
                           '--handlers.bandwidth.rate', '32',
                           '--handlers.bandwidth.direction', 'upstream',
                           backend=hash_server.address)
    payload = os.urandom(48 * 1024)           # 1.5 s at 32 KB/s
    with proxy.connect() as sock:
        start = time.monotonic()
        sender = threading.Thread(target=lambda: (
            sock.sendall(payload), sock.shutdown(socket.SHUT_WR)))
        sender.start()
        answer, how, _ = read_to_end(sock, timeout=30)
        elapsed = time.monotonic() - start
        sender.join(10)
    assert answer.decode().split() == [support.sha256(payload),
                                       str(len(payload))]
    assert elapsed >= len(payload) / (1.1 * 32 * 1024)
    assert elapsed < 30


@pytest.mark.timeout(60)
def test_directions_are_throttled_separately(vaurien_inproc, echo_server):
    """An echo at 32 KB/s each way takes about as long as one way."""
    proxy = vaurien_inproc('--behavior', '100:bandwidth',
                           '--handlers.bandwidth.rate', '32',
                           backend=echo_server.address)
    payload = os.urandom(32 * 1024)
    with proxy.connect() as sock:
        start = time.monotonic()
        sender = threading.Thread(target=lambda: (
            sock.sendall(payload), sock.shutdown(socket.SHUT_WR)))
        sender.start()
        data, how, _ = read_to_end(sock, timeout=30)
        elapsed = time.monotonic() - start
        sender.join(10)
    assert data == payload
    assert 1.0 / 1.1 <= elapsed < 30


@pytest.mark.parametrize('value', ['-1', '0', 'fast'])
def test_bad_rate_is_a_start_up_error(value):
    line = start_error('--behavior', '100:bandwidth',
                       '--handlers.bandwidth.rate', value)
    assert "bandwidth: option 'rate'" in line


def test_bad_rate_in_ini():
    line = start_error(ini=ini_for('100:bandwidth', 'bandwidth', rate='-5'))
    assert "bandwidth: option 'rate'" in line
