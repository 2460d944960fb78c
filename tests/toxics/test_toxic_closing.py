"""The toxics that end connections: ``slow_close``, ``timeout``,
``reset_peer``, ``limit_data`` (vaurien/toxics/*.py), on real sockets."""
import socket

import pytest

import support
from toxiproxy_support import Sender, connect, read_until_end


@pytest.fixture
def sender():
    server = Sender([b'd' * 5000])
    yield server
    server.close()


@pytest.fixture
def silent():
    """A backend that reads and never answers, until the client closes."""
    def hold(sock):
        while sock.recv(1024):
            pass
    server = support.TCPServer(hold)
    yield server
    server.close()


def test_slow_close_holds_the_end_not_the_data(toxiproxy, sender):
    addr = toxiproxy.create('s', sender.address)
    toxiproxy.add_toxic('s', 'slow_close', delay=600)
    with connect(addr) as sock:
        sock.sendall(b'go')
        sock.settimeout(5)
        first = support.recv_exact(sock, 5000)
        assert len(first) == 5000
        data, how, took = read_until_end(sock)
    assert (data, how) == (b'', 'eof')
    assert 0.5 <= took < 1.5


def test_timeout_drops_data_then_closes(toxiproxy):
    sender = Sender([b'd' * 5000], hold=True)
    addr = toxiproxy.create('s', sender.address)
    toxiproxy.add_toxic('s', 'timeout', timeout=500)
    with connect(addr) as sock:
        sock.sendall(b'go')
        data, how, took = read_until_end(sock)
    sender.close()
    assert (data, how) == (b'', 'eof')
    assert 0.4 <= took < 1.5


def test_timeout_zero_holds_until_removed_then_closes(toxiproxy, sender):
    addr = toxiproxy.create('s', sender.address)
    toxiproxy.add_toxic('s', 'timeout', timeout=0)
    with connect(addr) as sock:
        sock.sendall(b'go')
        sock.settimeout(0.5)
        with pytest.raises(socket.timeout):
            sock.recv(10)
        answer = toxiproxy.request('DELETE',
                                   '/proxies/s/toxics/timeout_downstream')
        assert answer.status_code == 204
        data, how, took = read_until_end(sock, timeout=5)
    assert (data, how) == (b'', 'eof') and took < 2


def test_reset_peer_resets_after_its_timeout(toxiproxy, sender):
    addr = toxiproxy.create('s', sender.address)
    toxiproxy.add_toxic('s', 'reset_peer', timeout=300)
    with connect(addr) as sock:
        sock.sendall(b'go')
        data, how, took = read_until_end(sock)
    assert how == 'reset' and data == b''
    assert 0.25 <= took < 1.5


def test_reset_peer_upstream_resets_the_backend_too(toxiproxy, silent):
    addr = toxiproxy.create('s', silent.address)
    toxiproxy.add_toxic('s', 'reset_peer', 'upstream', timeout=0)
    with connect(addr) as sock:
        sock.sendall(b'go')
        data, how, took = read_until_end(sock)
    assert how == 'reset'


def test_limit_data_cuts_at_the_limit(toxiproxy, sender):
    addr = toxiproxy.create('s', sender.address)
    toxiproxy.add_toxic('s', 'limit_data', bytes=1234)
    with connect(addr) as sock:
        sock.sendall(b'go')
        data, how, took = read_until_end(sock)
    assert (len(data), how) == (1234, 'eof')
