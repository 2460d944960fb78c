"""What the proxy counts (vaurien/stats.py): the effects of handler calls
and the last faults, on a real proxy, and the same figures across
``--workers`` (``Snapshot.merged``); the one percentile definition
(nearest rank)."""
import json
import socket

import pytest

import support
from control_support import api
from observe_support import (HTTP_ARGS, InProcessProxy, finish, http_port,
                             read_events)
from vaurien.stats import RECENT, Snapshot, percentile, snapshot
from support import exchange

pytestmark = pytest.mark.timeout(60)


def snap(proxy):
    return proxy.call(snapshot, proxy.proxy)


def test_effects_and_recent_faults(echo_server):
    # delay (before=true) delays what clients send, and does nothing to
    # the answers; blackout cuts.
    proxy = InProcessProxy(echo_server.address, behavior='100:delay')
    try:
        with proxy.connect() as sock:
            client = '%s:%d' % sock.getsockname()[:2]
            for message in (b'one', b'two'):
                assert exchange(sock, message) == message
        support.wait_until(lambda: snap(proxy).closed == 1,
                           what='the close')
        data = snap(proxy)
        effects = data.effects
        # Each message a pick: the requests delayed, the answers untouched
        # (wrong direction); the ends of stream are no picks.
        assert effects == {('delay', 'delayed'): 2, ('delay', 'none'): 2}
        # The connection met one kind of fault.
        assert data.connections == {'delayed': 1}
        assert data.requests == {}      # tcp mode: no requests
        assert data.recent, data.recent
        assert len(data.recent) == effects[('delay', 'delayed')]
        fault = data.recent[0]
        assert fault['conn'] == 1 and fault['client'] == client
        assert fault['direction'] == 'upstream'
        assert (fault['handler'], fault['effect']) == ('delay', 'delayed')
        assert fault['seconds'] >= 0 and fault['time'] > 0
        json.dumps(data.to_json())      # crosses processes as JSON
    finally:
        proxy.close()


def test_recent_faults_are_bounded(echo_server):
    proxy = InProcessProxy(echo_server.address, behavior='100:blackout')
    try:
        for _ in range(RECENT + 5):
            with proxy.connect() as sock:
                sock.sendall(b'x')
                assert support.ends_soon(sock)
        support.wait_until(lambda: snap(proxy).closed == RECENT + 5,
                           what='every close')
        data = snap(proxy)
        assert data.effects[('blackout', 'cut')] == RECENT + 5
        assert len(data.recent) == RECENT
        assert [f['conn'] for f in data.recent] == list(
            range(6, RECENT + 6))
        assert {f['effect'] for f in data.recent} == {'cut'}
    finally:
        proxy.close()


def test_merged_adds_effects_and_keeps_the_last_faults():

    def part(effects, times):
        return {'opened': 1, 'closed': 1, 'open': 0, 'hung': 0,
                'bytes_up': 1, 'bytes_down': 1, 'picks': [],
                'failures': {}, 'exceptions': {}, 'behavior': '20:delay',
                'effects': effects, 'requests': effects,
                'connections': {'delayed': 1, 'passed': 2},
                'recent': [{'time': t, 'conn': 1, 'client': 'c',
                            'direction': 'upstream', 'handler': 'delay',
                            'effect': 'delayed', 'seconds': 0.0}
                           for t in times]}
    merged = Snapshot.merged([
        part([['delay', 'delayed', 3], ['delay', 'none', 1]],
             range(0, 2 * RECENT, 2)),
        part([['delay', 'delayed', 2]], range(1, 2 * RECENT, 2))])
    assert merged.effects == {('delay', 'delayed'): 5, ('delay', 'none'): 1}
    assert merged.requests == merged.effects
    assert merged.connections == {'delayed': 2, 'passed': 4}
    assert [f['time'] for f in merged.recent] == list(
        range(RECENT, 2 * RECENT))


def test_effects_agree_with_the_event_log(vaurien_inproc, http_server,
                                          tmp_path):
    # The counts and the event log tell the same story, pick by pick.
    path = tmp_path / 'events.jsonl'
    proc = vaurien_inproc('--event-log', str(path), '--seed', '7',
                          '--behavior', '30:delay,20:error,10:blackout',
                          '--handlers.delay.sleep', '0', *HTTP_ARGS,
                          backend=http_server.address)
    for _ in range(8):
        with proc.connect() as sock:
            try:
                sock.sendall(b'GET / HTTP/1.1\r\nHost: x\r\n\r\n' * 2)
                sock.shutdown(socket.SHUT_WR)
                support.recv_all(sock)
            except OSError:
                pass
    support.wait_until(lambda: path.exists() and path.read_text().count(
        '"event":"close"') >= 8 or None, what='every close line')
    stats = api(http_port(proc), 'GET', '/stats').json
    finish(proc)
    logged = {}
    for event in read_events(path):
        if event['event'] == 'data' and 'seconds' in event:
            key = (event['handler'], event['effect'])
            logged[key] = logged.get(key, 0) + 1
    assert {(n, e): c for n, e, c in stats['effects']} == logged


def test_percentile_is_nearest_rank():
    values = list(range(1, 101))           # 1..100
    assert percentile(values, 0.5) == 50
    assert percentile(values, 0.9) == 90
    assert percentile(values, 0.99) == 99
    assert percentile(values, 1.0) == 100
    assert percentile(values, 0.0) == 1
    # Unsorted input, odd count: the true median; never interpolated.
    assert percentile([5, 1, 3], 0.5) == 3
    assert percentile([1, 2, 3, 4], 0.5) == 2
    assert percentile([0.25], 0.99) == 0.25
    assert percentile([], 0.5) is None
