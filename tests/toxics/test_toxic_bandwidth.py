"""The ``bandwidth`` toxic (vaurien/toxics/bandwidth.py), and stacking."""
import pytest

from toxiproxy_support import Sender, connect, read_until_end

SIZE = 300 * 1000


@pytest.fixture
def big():
    sender = Sender([b'b' * SIZE])
    yield sender
    sender.close()


def download(addr):
    with connect(addr) as sock:
        sock.sendall(b'go')
        data, how, took = read_until_end(sock, timeout=30)
    assert (len(data), how) == (SIZE, 'eof')
    return took


def test_rate_in_kilobytes_per_second(toxiproxy, big):
    addr = toxiproxy.create('big', big.address)
    toxiproxy.add_toxic('big', 'bandwidth', rate=300)     # 300,000 B/s
    took = download(addr)
    assert 0.9 <= took < 1.5, took


def test_latency_then_bandwidth_both_act(toxiproxy, big):
    addr = toxiproxy.create('big', big.address)
    toxiproxy.add_toxic('big', 'latency', latency=500)
    toxiproxy.add_toxic('big', 'bandwidth', rate=300)
    took = download(addr)
    assert 1.4 <= took < 2.2, took


def test_rate_zero_is_no_limit(toxiproxy, big):
    addr = toxiproxy.create('big', big.address)
    toxiproxy.add_toxic('big', 'bandwidth', rate=0)
    assert download(addr) < 0.5


def test_update_takes_effect_mid_stream(toxiproxy, big):
    addr = toxiproxy.create('big', big.address)
    toxiproxy.add_toxic('big', 'bandwidth', rate=10)      # 30 s at this rate
    with connect(addr) as sock:
        sock.sendall(b'go')
        sock.settimeout(10)
        first = sock.recv(1 << 16)
        assert first
        answer = toxiproxy.request('PATCH', '/proxies/big/toxics/'
                                   'bandwidth_downstream',
                                   {'attributes': {'rate': 0}})
        assert answer.status_code == 200
        assert answer.json()['attributes'] == {'rate': 0}
        rest, how, took = read_until_end(sock)
    assert len(first) + len(rest) == SIZE and how == 'eof'
    assert took < 2.0
