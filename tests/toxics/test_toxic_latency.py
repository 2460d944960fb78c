"""The ``latency`` toxic (vaurien/toxics/latency.py), on real sockets."""
import pytest

import support
from toxiproxy_support import (Sender, connect, exchange,
                               read_until_end)


@pytest.fixture
def echo():
    server = support.TCPServer(support.echo)
    yield server
    server.close()


def test_each_answer_is_delayed(toxiproxy, echo):
    addr = toxiproxy.create('echo', echo.address)
    toxiproxy.add_toxic('echo', 'latency', latency=300)
    with connect(addr) as sock:
        for _ in range(2):
            data, took = exchange(sock, b'ping')
            assert data == b'ping'
            assert 0.3 <= took < 1.0


def test_a_stream_is_delayed_not_slowed(toxiproxy):
    # Five pieces 0.1 s apart, each held 0.4 s: the last one arrives about
    # 0.4 + 0.4 s after the request, not 5 * 0.4 s.
    sender = Sender([b'x' * 100] * 5, gap=0.1)
    try:
        addr = toxiproxy.create('s', sender.address)
        toxiproxy.add_toxic('s', 'latency', latency=400)
        with connect(addr) as sock:
            sock.sendall(b'go')
            data, how, took = read_until_end(sock)
        assert (len(data), how) == (500, 'eof')
        assert 0.8 <= took < 1.6
    finally:
        sender.close()


def test_jitter_stays_within_its_spread(toxiproxy, echo):
    addr = toxiproxy.create('echo', echo.address)
    toxiproxy.add_toxic('echo', 'latency', latency=200, jitter=100)
    with connect(addr) as sock:
        delays = [exchange(sock, b'p')[1] for _ in range(6)]
    assert all(0.1 <= d < 0.6 for d in delays), delays
    assert max(delays) - min(delays) > 0.01, delays


def test_upstream_and_downstream_add_up(toxiproxy, echo):
    addr = toxiproxy.create('echo', echo.address)
    toxiproxy.add_toxic('echo', 'latency', latency=200)
    toxiproxy.add_toxic('echo', 'latency', 'upstream', latency=200)
    with connect(addr) as sock:
        data, took = exchange(sock, b'ping')
    assert data == b'ping' and 0.4 <= took < 1.2


def test_removing_it_releases_held_data_at_once(toxiproxy, echo):
    addr = toxiproxy.create('echo', echo.address)
    toxiproxy.add_toxic('echo', 'latency', latency=20000)
    with connect(addr) as sock:
        sock.sendall(b'held')
        sock.settimeout(0.3)
        with pytest.raises(OSError):
            sock.recv(10)       # held by the toxic
        answer = toxiproxy.request('DELETE', '/proxies/echo/toxics/'
                                   'latency_downstream')
        assert answer.status_code == 204
        sock.settimeout(5)
        assert support.recv_exact(sock, 4) == b'held'
