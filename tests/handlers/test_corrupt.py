"""The ``corrupt`` handler: one random bit flipped in a share of bytes."""
import os
import socket
import threading

import pytest

from fault_support import ini_for, read_to_end, start_error, \
    wait_for

SIZE = 200_000


def echo(proxy, payload):
    with proxy.connect() as sock:
        sender = threading.Thread(target=lambda: (
            sock.sendall(payload), sock.shutdown(socket.SHUT_WR)))
        sender.start()
        data, how, _ = read_to_end(sock, timeout=30)
        sender.join(10)
    assert how == 'eof'
    return data


def flipped(original, got):
    """The positions that differ; each must differ by exactly one bit."""
    assert len(got) == len(original)
    positions = []
    for index, (a, b) in enumerate(zip(original, got)):
        if a != b:
            assert bin(a ^ b).count('1') == 1, (index, a, b)
            positions.append(index)
    return positions


@pytest.mark.timeout(60)
def test_share_of_bytes_with_one_bit_flipped(vaurien_inproc, recorder):
    proxy = vaurien_inproc('--behavior', '100:corrupt',
                           '--handlers.corrupt.rate', '0.1',
                           '--handlers.corrupt.direction', 'upstream',
                           backend=recorder.address)
    payload = os.urandom(SIZE)
    got = echo(proxy, payload)
    share = len(flipped(payload, got)) / SIZE
    assert 0.09 <= share <= 0.11, share
    # What the backend got is what came back: corrupted on the way up only.
    assert bytes(recorder.received[0]) == got


@pytest.mark.timeout(60)
@pytest.mark.parametrize('rate, share', [('0', 0.0), ('1', 1.0)])
def test_rate_bounds(vaurien_inproc, echo_server, rate, share):
    proxy = vaurien_inproc('--behavior', '100:corrupt',
                           '--handlers.corrupt.rate', rate,
                           '--handlers.corrupt.direction', 'downstream',
                           backend=echo_server.address)
    payload = os.urandom(50_000)
    got = echo(proxy, payload)
    assert len(flipped(payload, got)) == share * len(payload)


@pytest.mark.timeout(60)
def test_downstream_only_leaves_requests_intact(vaurien_inproc, recorder):
    proxy = vaurien_inproc('--behavior', '100:corrupt',
                           '--handlers.corrupt.rate', '0.5',
                           '--handlers.corrupt.direction', 'downstream',
                           backend=recorder.address)
    payload = os.urandom(20_000)
    got = echo(proxy, payload)
    wait_for(lambda: len(recorder.received[0]) == len(payload))
    assert bytes(recorder.received[0]) == payload
    assert 0.4 < len(flipped(payload, got)) / len(payload) < 0.6


@pytest.mark.timeout(90)
def test_seed_replays_the_same_corruption(vaurien_inproc, echo_server):
    payload = os.urandom(SIZE)

    def run(seed):
        proxy = vaurien_inproc('--behavior', '100:corrupt',
                               '--handlers.corrupt.rate', '0.01',
                               '--seed', str(seed),
                               backend=echo_server.address)
        got = echo(proxy, payload)
        return got

    first = run(5)
    assert first != payload
    # Byte for byte the same, however the data was split into reads.
    assert run(5) == first
    assert run(6) != first


@pytest.mark.parametrize('value', ['-0.1', '1.5', '2', 'half'])
def test_bad_rate_is_a_start_up_error(value):
    line = start_error('--behavior', '100:corrupt',
                       '--handlers.corrupt.rate', value)
    assert "corrupt: option 'rate'" in line


@pytest.mark.parametrize('value', ['-1', '1.01'])
def test_bad_rate_in_ini(value):
    line = start_error(ini=ini_for('100:corrupt', 'corrupt', rate=value))
    assert "corrupt: option 'rate'" in line


def test_positions_follow_the_stream_not_the_reads():
    """Socket-free: the same bytes corrupted however the data is split."""
    import random
    import socket as socketlib

    from vaurien.handlers.corrupt import Corrupt

    handler = Corrupt(settings={'rate': 0.2})
    data = os.urandom(10_000)
    results = []
    for sizes in ([10_000], [1, 999, 4000, 5000], [3333] * 3 + [1]):
        a, b = socketlib.socketpair()
        with a, b:
            random.seed(7)      # outside the proxy, _random is the module
            pieces, start = [], 0
            for size in sizes:
                pieces.append(handler.corrupt(data[start:start + size], a,
                                              True))
                start += size
            results.append(b''.join(pieces))
    assert results[0] != data
    assert results[0] == results[1] == results[2]
