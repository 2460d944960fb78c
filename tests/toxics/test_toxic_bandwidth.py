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


def paced_download(toxiproxy, rates, count=40, size=1000, gap=0.005):
    """Through ``latency`` 0 then a ``bandwidth`` per rate in *rates*:
    *count* pieces of *size* bytes sent *gap* seconds apart (each fits in
    one piece of every schedule, so the link may pass it on where it is
    read); the seconds the download took."""
    sender = Sender([b'p' * size] * count, gap=gap)
    try:
        addr = toxiproxy.create('paced', sender.address)
        toxiproxy.add_toxic('paced', 'latency', latency=0)
        for index, rate in enumerate(rates):
            answer = toxiproxy.request('POST', '/proxies/paced/toxics', {
                'name': 'bandwidth%d' % index, 'type': 'bandwidth',
                'attributes': {'rate': rate}})
            assert answer.status_code == 200, answer.text
        with connect(addr) as sock:
            sock.sendall(b'go')
            data, how, took = read_until_end(sock, timeout=30)
        assert (len(data), how) == (count * size, 'eof')
        return took
    finally:
        sender.close()


def test_small_chunks_above_the_rate_are_held_to_it(toxiproxy):
    """Small chunks sent at 200 KB/s through 100 KB/s: the first ones pass
    where they are read and count against the schedule, so the rest wait
    for it (10 ms per 1000 bytes) instead of all passing at once."""
    took = paced_download(toxiproxy, [100])
    assert 0.35 <= took < 2.0, took


def test_stacked_bandwidths_the_slowest_sets_the_pace(toxiproxy):
    """Two bandwidths stacked: chunks the first lets through at once and
    the second holds (or both hold) leave at the slower rate."""
    took = paced_download(toxiproxy, [100, 50])      # 20 ms per piece
    assert 0.7 <= took < 2.0, took
