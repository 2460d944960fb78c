"""Prometheus metrics: render() on a real proxy, GET /metrics end to end,
and ``vaurienctl stats``."""
import http.client
import socket

import pytest

import support
from support import exchange
from observe_support import (HTTP_ARGS, InProcessProxy, http_port,
                             talk)

parser = pytest.importorskip('prometheus_client.parser')


def parse(text):
    """``{(name, frozenset(labels)): value}`` with prometheus_client's own
    parser of the text format (it raises on a malformed page)."""
    samples = {}
    families = {}
    for family in parser.text_string_to_metric_families(text):
        families[family.name] = family.type
        for sample in family.samples:
            key = (sample.name, frozenset(sample.labels.items()))
            assert key not in samples, key
            samples[key] = sample.value
    return samples, families


def value(samples, name, **labels):
    return samples[(name, frozenset(labels.items()))]


class Boom:
    """A handler that raises: counted as a handler exception."""

    def __call__(self, client_sock, backend_sock, to_backend):
        raise RuntimeError('boom')


MESSAGES = [b'a' * 10, b'b' * 300, b'c' * 7]


@pytest.mark.timeout(60)
def test_render_counts_the_traffic_of_a_real_proxy(echo_server):
    from vaurien.metrics import render
    proxy = InProcessProxy(echo_server.address,
                           behavior='30:delay,20:error', seed=99,
                           bufsize=4096)
    try:
        sent = talk(proxy.address, MESSAGES, connections=4, same=False)
        support.wait_until(lambda: proxy.call(lambda: len(
            proxy.proxy.connections)) == 0, what='connections to close')
        samples, families = parse(proxy.call(render, proxy.proxy))
    finally:
        proxy.close()
    assert value(samples, 'vaurien_connections_total') == 4
    assert value(samples, 'vaurien_connections_closed_total') == 4
    assert value(samples, 'vaurien_connections_open') == 0
    assert value(samples, 'vaurien_bytes_total', direction='upstream') \
        == sent == 4 * 317
    # error replaces what the backend answers with as many random bytes:
    # the byte counts are what was read from each side.
    assert value(samples, 'vaurien_bytes_total', direction='downstream') \
        == sent
    # Each message is one readable event each way, one pick each; the end
    # of stream is not a pick.
    for direction in ('upstream', 'downstream'):
        picks = sum(value(samples, 'vaurien_handler_picks_total',
                          handler=name, direction=direction)
                    for name in ('delay', 'error', 'dummy'))
        assert picks == 4 * len(MESSAGES)
    assert families['vaurien_connections'] == 'counter'
    assert families['vaurien_connections_open'] == 'gauge'
    assert families['vaurien_handler_picks'] == 'counter'


@pytest.mark.timeout(60)
def test_render_counts_failures_and_exceptions(echo_server):
    from vaurien.metrics import render
    with support.reserved_port() as closed_port:
        proxy = InProcessProxy((support.HOST, closed_port))
        try:
            with proxy.connect() as sock:
                assert support.recv_all(sock) == b''
            samples, _ = parse(proxy.call(render, proxy.proxy))
        finally:
            proxy.close()
    assert value(samples, 'vaurien_backend_connect_failures_total',
                 reason='refused') == 1
    assert value(samples, 'vaurien_backend_connect_failures_total',
                 reason='timeout') == 0
    assert value(samples, 'vaurien_connections_total') == 1

    proxy = InProcessProxy(echo_server.address, behavior='100:boom',
                           handlers=[('boom', Boom())])
    try:
        for _ in range(2):
            with proxy.connect() as sock:
                sock.sendall(b'x')
                try:    # closed with 'x' unread: a reset is fine too
                    assert support.recv_all(sock) == b''
                except ConnectionResetError:
                    pass
        support.wait_until(lambda: proxy.call(lambda: len(
            proxy.proxy.connections)) == 0, what='connections to close')
        samples, _ = parse(proxy.call(render, proxy.proxy))
    finally:
        proxy.close()
    assert value(samples, 'vaurien_handler_exceptions_total',
                 handler='boom') == 2
    assert value(samples, 'vaurien_handler_picks_total', handler='boom',
                 direction='upstream') == 2


def test_label_values_are_escaped():
    from vaurien.metrics import render_snapshot
    from vaurien.stats import Snapshot
    snap = Snapshot()
    snap.opened = snap.closed = snap.open = snap.hung = 0
    snap.bytes_up = snap.bytes_down = 0
    weird = 'we"ird\\name\nx'
    snap.picks = {(weird, True): 3, ('dummy', False): 1}
    snap.failures = {}
    snap.exceptions = {weird: 2}
    snap.behavior = ''
    samples, _ = parse(render_snapshot(snap))
    assert value(samples, 'vaurien_handler_picks_total', handler=weird,
                 direction='upstream') == 3
    assert value(samples, 'vaurien_handler_exceptions_total',
                 handler=weird) == 2


def get(port, path):
    conn = http.client.HTTPConnection(support.HOST, port, timeout=10)
    try:
        conn.request('GET', path)
        response = conn.getresponse()
        return response.status, response.getheader('Content-Type'), \
            response.read().decode('utf-8')
    finally:
        conn.close()


@pytest.mark.timeout(90)
def test_get_metrics_end_to_end(vaurien_inproc, echo_server):
    proc = vaurien_inproc(*HTTP_ARGS, '--behavior', '25:delay',
                          '--handlers.delay.sleep', '0', '--seed', '5',
                          backend=echo_server.address)
    port = http_port(proc)
    sent = talk(proc.address, MESSAGES, connections=3)
    # One connection still open, with one exchange done.
    held = proc.connect()
    assert exchange(held, b'held') == b'held'
    status, kind, text = get(port, '/metrics')
    assert status == 200
    assert kind.startswith('text/plain') and 'version=0.0.4' in kind
    samples, _ = parse(text)
    assert value(samples, 'vaurien_connections_total') == 4
    assert value(samples, 'vaurien_connections_open') == 1
    assert value(samples, 'vaurien_bytes_total', direction='upstream') \
        == sent + 4
    assert value(samples, 'vaurien_bytes_total', direction='downstream') \
        == sent + 4
    ups = {name: value(samples, 'vaurien_handler_picks_total',
                       handler=name, direction='upstream')
           for name in ('delay', 'dummy')}
    assert sum(ups.values()) == 3 * len(MESSAGES) + 1
    held.close()
    support.wait_until(
        lambda: value(parse(get(port, '/metrics')[2])[0],
                      'vaurien_connections_closed_total') == 4,
        what='the held connection to be counted closed')


@pytest.mark.timeout(90)
def test_vaurienctl_stats_once(vaurien_inproc, echo_server):
    proc = vaurien_inproc(*HTTP_ARGS, '--behavior', '50:delay',
                          '--handlers.delay.sleep', '0', '--seed', '3',
                          backend=echo_server.address)
    port = http_port(proc)
    talk(proc.address, [b'x' * 2048], connections=2)
    samples, _ = parse(get(port, '/metrics')[2])
    result = support.run_cli('--host', 'http://%s:%d' % (support.HOST, port),
                             'stats', '--once', module='vaurien.ctl')
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert 'total 2  closed 2' in out
    assert '(4.0 KB total)' in out          # 2 x 2048 bytes each way
    rows = {line.split()[0]: line.split()[1:4] for line in out.splitlines()
            if line.split() and line.split()[0] in ('delay', 'dummy')}
    for name in ('delay', 'dummy'):
        up = value(samples, 'vaurien_handler_picks_total', handler=name,
                   direction='upstream')
        down = value(samples, 'vaurien_handler_picks_total', handler=name,
                     direction='downstream')
        assert rows[name] == [str(int(up)), str(int(down)),
                              str(int(up + down))]


def test_vaurienctl_stats_unreachable():
    with support.reserved_port() as port:
        result = support.run_cli('--host',
                                 'http://%s:%d' % (support.HOST, port),
                                 'stats', '--once', module='vaurien.ctl')
    assert result.returncode == 1
    assert result.stderr.startswith('vaurienctl: error: ')
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.timeout(60)
def test_metrics_needs_the_token(vaurien_inproc, echo_server):
    proc = vaurien_inproc(*HTTP_ARGS, '--http-token', 's3cret',
                          backend=echo_server.address)
    port = http_port(proc)
    assert get(port, '/metrics')[0] == 401
    conn = http.client.HTTPConnection(support.HOST, port, timeout=10)
    try:
        conn.request('GET', '/metrics',
                     headers={'Authorization': 'Bearer s3cret'})
        response = conn.getresponse()
        assert response.status == 200
        parse(response.read().decode('utf-8'))
    finally:
        conn.close()
    with socket.create_connection(proc.address, timeout=10):
        pass


@pytest.mark.timeout(60)
def test_unresolvable_backend_is_counted_as_resolve():
    from vaurien.metrics import render
    proxy = InProcessProxy(('no-such-host.invalid', 80))
    try:
        with proxy.connect() as sock:
            sock.settimeout(40)
            assert support.recv_all(sock) == b''
        samples, _ = parse(proxy.call(render, proxy.proxy))
    finally:
        proxy.close()
    assert value(samples, 'vaurien_backend_connect_failures_total',
                 reason='resolve') == 1
    assert value(samples, 'vaurien_connections_closed_total') == 1


@pytest.mark.timeout(60)
def test_picks_of_an_earlier_behavior_stay_counted(echo_server):
    from vaurien.config import parse_behavior
    from vaurien.handlers import Registry
    from vaurien.metrics import render
    from vaurien.control import build_behavior
    proxy = InProcessProxy(echo_server.address, behavior='100:dummy')
    try:
        talk(proxy.address, [b'one'])

        def change():
            behavior, _ = build_behavior(
                Registry(entry_points=False), parse_behavior('100:error'),
                {}, proxy.proxy)
            proxy.proxy.set_behavior(behavior)
        proxy.call(change)
        talk(proxy.address, [b'two', b'three'], same=False)
        samples, _ = parse(proxy.call(render, proxy.proxy))
    finally:
        proxy.close()
    # One pick per message each way (the ends of stream are not picks).
    for direction in ('upstream', 'downstream'):
        assert value(samples, 'vaurien_handler_picks_total',
                     handler='dummy', direction=direction) == 1
        assert value(samples, 'vaurien_handler_picks_total',
                     handler='error', direction=direction) == 2


@pytest.mark.timeout(90)
def test_vaurienctl_stats_refreshes(vaurien_inproc, echo_server):
    import subprocess
    import sys
    import threading
    proc = vaurien_inproc(*HTTP_ARGS, backend=echo_server.address)
    port = http_port(proc)
    talk(proc.address, [b'x' * 100])
    watcher = subprocess.Popen(
        [sys.executable, '-m', 'vaurien.ctl', '--host',
         'http://%s:%d' % (support.HOST, port), 'stats', '--interval', '0.2'],
        env=support.env_with_root(), stdout=subprocess.PIPE, text=True)
    lines = []
    reader = threading.Thread(
        target=lambda: lines.extend(iter(watcher.stdout.readline, '')),
        daemon=True)
    reader.start()
    try:
        support.wait_until(
            lambda: sum('vaurien stats from' in line for line in lines) >= 3,
            timeout=30, what='three tables')
    finally:
        watcher.terminate()
        watcher.wait(10)
    text = ''.join(lines)
    tables = text.split('vaurien stats from')[1:]
    assert 'new/s -' in tables[0]            # no rate from one reading
    assert 'new/s 0.0' in tables[1]          # then rates, here idle
    assert 'up 0 B/s (100 B total)' in tables[1]
