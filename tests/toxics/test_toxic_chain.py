"""The chain runtime (vaurien/toxics/link.py, vaurien/toxics/__init__.py):
toxicity rolls, live changes under load, connections switched on."""
import hashlib
import os
import socket
import threading
import time

import pytest

import support
from toxiproxy_support import (Echo, Sender, ToxiproxyServer, connect,
                               exchange, read_until_end)
from vaurien.toxics.link import roll


@pytest.fixture
def echo():
    server = Echo()
    yield server
    server.close()


def delayed_pattern(server, echo, count=12):
    """Which of *count* connections a 50% latency toxic acts on."""
    addr = server.create('echo', echo.address)
    body = {'type': 'latency', 'toxicity': 0.5,
            'attributes': {'latency': 300}}
    assert server.request('POST', '/proxies/echo/toxics',
                          body).status_code == 200
    pattern = []
    for _ in range(count):
        with connect(addr) as sock:
            pattern.append(exchange(sock, b'x')[1] >= 0.3)
    return pattern


def test_toxicity_rolls_once_per_connection_and_replays(echo):
    runs = []
    for _ in range(2):
        server = ToxiproxyServer(seed=42)
        try:
            runs.append(delayed_pattern(server, echo))
        finally:
            server.stop()
    assert runs[0] == runs[1]
    assert 0 < sum(runs[0]) < len(runs[0])
    # The same rolls as the documented function: connection k (1-based).
    expected = [roll(42, seq, 'downstream', 'latency_downstream') < 0.5
                for seq in range(1, 13)]
    assert runs[0] == expected


def test_toxicity_zero_and_one(toxiproxy, echo):
    addr = toxiproxy.create('echo', echo.address)
    body = {'type': 'latency', 'toxicity': 0, 'attributes': {'latency': 500}}
    toxiproxy.request('POST', '/proxies/echo/toxics', body)
    with connect(addr) as sock:
        assert exchange(sock, b'x')[1] < 0.3
    answer = toxiproxy.request('PATCH', '/proxies/echo/toxics/'
                               'latency_downstream', {'toxicity': 1})
    assert answer.json()['toxicity'] == 1
    with connect(addr) as sock:
        assert exchange(sock, b'x')[1] >= 0.5


def test_a_toxic_acts_on_connections_already_open(toxiproxy, echo):
    addr = toxiproxy.create('echo', echo.address)
    with connect(addr) as sock:
        assert exchange(sock, b'x')[1] < 0.3
        toxiproxy.add_toxic('echo', 'latency', latency=300)
        assert exchange(sock, b'x')[1] >= 0.3
        toxiproxy.request('DELETE', '/proxies/echo/toxics/latency_downstream')
        assert exchange(sock, b'x')[1] < 0.3


def test_changes_under_load_never_block(toxiproxy, echo):
    """50 connections stream through a latency and a bandwidth toxic while
    they are updated, added and removed: every answer comes at once and
    the data keeps flowing, intact, on every connection."""
    addr = toxiproxy.create('echo', echo.address)
    toxiproxy.add_toxic('echo', 'latency', latency=50)
    toxiproxy.add_toxic('echo', 'bandwidth', 'upstream', rate=100)
    stop = threading.Event()
    counts = [0] * 50
    errors = []

    def stream(index):
        try:
            with connect(addr) as sock:
                payload = (b'%03d' % index) * 1000
                while not stop.is_set():
                    got, _ = exchange(sock, payload)
                    if got != payload:
                        errors.append((index, len(got)))
                        return
                    counts[index] += 1
        except OSError as exc:
            errors.append((index, exc))

    threads = [threading.Thread(target=stream, args=(i,), daemon=True)
               for i in range(50)]
    for thread in threads:
        thread.start()
    try:
        support.wait_until(lambda: all(counts) or errors, timeout=30,
                           what='50 streams flowing')
        assert not errors, (errors[:5], toxiproxy.output()[-2000:])
        took = []
        calls = [
            ('PATCH', '/proxies/echo/toxics/latency_downstream',
             {'attributes': {'latency': 20}}),
            ('POST', '/proxies/echo/toxics',
             {'type': 'slicer', 'attributes': {'average_size': 500}}),
            ('PATCH', '/proxies/echo/toxics/bandwidth_upstream',
             {'attributes': {'rate': 200}}),
            ('DELETE', '/proxies/echo/toxics/slicer_downstream', None),
            ('DELETE', '/proxies/echo/toxics/latency_downstream', None),
        ]
        for method, path, body in calls:
            start = time.monotonic()
            answer = toxiproxy.request(method, path, body)
            took.append(time.monotonic() - start)
            assert answer.status_code in (200, 204), answer.text
        before = list(counts)
        support.wait_until(lambda: all(c > b for c, b in zip(counts, before)),
                           timeout=30,
                           what='every stream to go on after the changes')
    finally:
        stop.set()
        for thread in threads:
            thread.join(10)
    assert not errors, errors[:5]
    # The bound is 100 ms; the shared test machine gets slack.
    assert max(took) < 0.5, took


def test_a_handler_is_a_toxic_type(toxiproxy, echo):
    addr = toxiproxy.create('echo', echo.address)
    answer = toxiproxy.request('POST', '/proxies/echo/toxics', {
        'type': 'error', 'attributes': {}})
    assert answer.status_code == 200, answer.text
    assert answer.json()['attributes'] == {'inject': 0, 'warmup': 0}
    with connect(addr) as sock:
        got, _ = exchange(sock, b'A' * 64)
    assert len(got) == 64 and got != b'A' * 64
    toxiproxy.request('DELETE', '/proxies/echo/toxics/error_downstream')
    toxiproxy.add_toxic('echo', 'delay', 'upstream', sleep=0.3)
    with connect(addr) as sock:
        got, took = exchange(sock, b'hello')
    assert got == b'hello' and took >= 0.3


def test_a_handler_toxic_that_closes_ends_the_connection(toxiproxy, echo):
    addr = toxiproxy.create('echo', echo.address)
    toxiproxy.add_toxic('echo', 'blackout', 'upstream')
    with connect(addr) as sock:
        sock.settimeout(5)
        sock.sendall(b'x')
        try:
            assert sock.recv(10) == b''
        except ConnectionResetError:
            pass


def test_handler_options_are_checked(toxiproxy, echo):
    toxiproxy.create('echo', echo.address)
    answer = toxiproxy.request('POST', '/proxies/echo/toxics', {
        'type': 'delay', 'attributes': {'sleep': 'soon'}})
    assert answer.status_code == 400
    assert answer.json()['error'].startswith('bad request body: ')
    assert 'sleep' in answer.json()['error']


def test_closed_connections_leave_no_link(toxiproxy, echo):
    addr = toxiproxy.create('echo', echo.address)
    toxiproxy.add_toxic('echo', 'latency', latency=10)
    for _ in range(5):
        with connect(addr) as sock:
            exchange(sock, b'x')
            sock.shutdown(socket.SHUT_WR)
            sock.recv(10)
    metrics = toxiproxy.request('GET', '/metrics').text
    support.wait_until(
        lambda: 'vaurien_connections_open{proxy="echo"} 0'
        in toxiproxy.request('GET', '/metrics').text,
        what='every connection closed')
    assert 'toxiproxy_proxy_received_bytes_total' in metrics


def test_instant_toxics_keep_every_byte_in_order_for_a_slow_reader(toxiproxy):
    """latency 0 and a high bandwidth pass chunks on where they are read;
    what a slow client cannot take at once waits, in order."""
    blob = os.urandom(16 * 1024 * 1024)
    sender = Sender([blob])
    try:
        addr = toxiproxy.create('s', sender.address)
        toxiproxy.add_toxic('s', 'latency', latency=0)
        toxiproxy.add_toxic('s', 'bandwidth', rate=10 ** 7)
        with connect(addr) as sock:
            sock.sendall(b'go')
            sock.settimeout(10)
            first = sock.recv(1000)         # then nothing read for a while
            support.wait_until(
                lambda: 'vaurien_connections_open{proxy="s"} 1'
                in toxiproxy.request('GET', '/metrics').text)
            rest, how, _ = read_until_end(sock, timeout=30)
        data = first + rest
        assert how == 'eof' and len(data) == len(blob)
        assert hashlib.sha256(data).digest() == hashlib.sha256(blob).digest()
    finally:
        sender.close()


def test_changes_reach_chunks_that_pass_where_they_are_read(toxiproxy, echo):
    """With ``latency`` 0 and a high ``bandwidth`` each chunk passes where
    it is read (no pump); every change acts on the very next chunk, and
    ``jitter`` on a latency of 0 delays chunks."""
    addr = toxiproxy.create('echo', echo.address)
    toxiproxy.add_toxic('echo', 'latency', latency=0)
    toxiproxy.add_toxic('echo', 'bandwidth', rate=10 ** 6)
    latency = '/proxies/echo/toxics/latency_downstream'
    bandwidth = '/proxies/echo/toxics/bandwidth_downstream'

    def patch(path, **attributes):
        answer = toxiproxy.request('PATCH', path, {'attributes': attributes})
        assert answer.status_code == 200, answer.text

    def took(size=100, times=1):
        total = 0.0
        for _ in range(times):
            payload = os.urandom(size)
            got, seconds = exchange(sock, payload)
            assert got == payload
            total += seconds
        return total

    with connect(addr) as sock:
        assert took(times=20) < 2.0
        patch(latency, latency=300)
        assert took() >= 0.3
        patch(latency, latency=0)
        assert took() < 0.3
        patch(bandwidth, rate=10)            # 10,000 B/s: 0.5 s for 5000
        assert took(5000) >= 0.4
        patch(bandwidth, rate=10 ** 6)
        assert took() < 0.3
        answer = toxiproxy.request('POST', '/proxies/echo/toxics', {
            'name': 'more', 'type': 'latency',
            'attributes': {'latency': 300}})
        assert answer.status_code == 200, answer.text
        assert took() >= 0.3
        toxiproxy.request('DELETE', '/proxies/echo/toxics/more')
        assert took() < 0.3
        # Delays drawn within 0 ± 300 ms (below 0: none) for each chunk.
        patch(latency, jitter=300)
        assert took(times=10) >= 0.2
        patch(latency, jitter=0)
        assert took(times=10) < 0.3


def test_behavior_picks_on_chunks_that_could_pass_at_once(vaurien_inproc,
                                                          echo):
    """With a weighted behavior, each chunk of a stream through toxics
    that would let it pass at once is still picked and counted once; a
    chunk that picks a handler goes to it (the full path)."""
    proxy = vaurien_inproc('--behavior', '50:delay', '--seed', '3',
                           '--handlers.delay.sleep', '0.3',
                           '--handlers.delay.before', 'false',
                           '--handlers.delay.direction', 'downstream',
                           backend=echo.address)
    for toxic in ({'type': 'latency', 'attributes': {'latency': 0}},
                  {'type': 'bandwidth', 'attributes': {'rate': 10 ** 6}}):
        proxy.call(proxy.proxy.toxics.add, toxic)
    count = 20
    with connect(proxy.address) as sock:
        slow = sum(exchange(sock, b'%02d' % i)[1] >= 0.3
                   for i in range(count))
    behavior = proxy.proxy.behavior
    down = proxy.call(lambda: list(behavior.picks[False]))
    delay = behavior.names.index('delay')
    assert sum(down) == count
    # An exchange is slow when its answer (one chunk) picked delay.
    assert 0 < down[delay] < count
    assert slow == down[delay]
