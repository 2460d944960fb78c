"""One pick per exchange in protocol mode (``--pick exchange``, the
default with ``--protocol``): ``20:delay`` delays 20% of the requests,
``5:blackout`` cuts 5% of the exchanges, and the picks counted are the
requests. Real servers, real clients, seeded runs; the figures come from
the clients and from the proxy's own counts (``GET /stats``)."""
import http.client
import json
import threading
import time

import pytest

import support
from conftest import HERE
from observe_support import HTTP_ARGS, http_port

pytestmark = pytest.mark.timeout(240)

REQUESTS = 2000
CLIENTS = 20
SLEEP = 0.02


def stats(proc):
    """The proxy's counters (``GET /stats``)."""
    conn = http.client.HTTPConnection(support.HOST, http_port(proc),
                                      timeout=10)
    try:
        conn.request('GET', '/stats')
        response = conn.getresponse()
        assert response.status == 200
        return json.loads(response.read())
    finally:
        conn.close()


def requests_by_effect(data):
    result = {}
    for _, effect, count in data['requests']:
        result[effect] = result.get(effect, 0) + count
    return result


def run_clients(one_client):
    """*one_client(times)* in :data:`CLIENTS` threads, each making
    ``REQUESTS // CLIENTS`` requests and appending their durations to
    *times*; all the durations."""
    times, errors = [], []

    def run():
        try:
            one_client(times)
        except BaseException as exc:     # reported to the test thread
            errors.append(exc)
    threads = [threading.Thread(target=run) for _ in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(200)
    assert not errors, errors[0]
    return times


def http_client(proxy):
    def one(times):
        conn = http.client.HTTPConnection(*proxy.address, timeout=30)
        for i in range(REQUESTS // CLIENTS):
            start = time.monotonic()
            conn.request('GET', '/size/100')
            response = conn.getresponse()
            assert response.status == 200 and len(response.read()) == 100
            times.append(time.monotonic() - start)
        conn.close()
    return one


def redis_client(proxy):
    pytest.importorskip('redis')
    from test_protocol_redis import quiet_client

    def one(times):
        # No CLIENT SETINFO on connect: only our PINGs.
        client = quiet_client(proxy, single_connection_client=True)
        for i in range(REQUESTS // CLIENTS):
            start = time.monotonic()
            assert client.ping() is True
            times.append(time.monotonic() - start)
        client.close()
    return one


def memcache_client(proxy):
    pymemcache = pytest.importorskip('pymemcache.client.base')

    def one(times):
        client = pymemcache.Client(proxy.address, timeout=30)
        for i in range(REQUESTS // CLIENTS):
            start = time.monotonic()
            assert client.get('vaurien-absent-key') is None
            times.append(time.monotonic() - start)
        client.close()
    return one


CLIENTS_OF = {'http': (http_client, 'http_backend'),
              'redis': (redis_client, 'redis_backend'),
              'memcache': (memcache_client, 'memcached_backend')}


@pytest.mark.parametrize('protocol', sorted(CLIENTS_OF))
def test_a_share_of_the_requests_is_delayed(vaurien_inproc, request,
                                            protocol):
    make_client, fixture = CLIENTS_OF[protocol]
    backend = request.getfixturevalue(fixture)
    proxy = vaurien_inproc('--protocol', protocol, '--behavior', '20:delay',
                           '--handlers.delay.sleep', str(SLEEP),
                           '--seed', '2026', *HTTP_ARGS,
                           backend=backend.address, extra_paths=[HERE])
    times = run_clients(make_client(proxy))
    assert len(times) == REQUESTS
    sent = REQUESTS
    data = stats(proxy)
    # One pick per request (counted upstream), none per response or per
    # end of stream.
    assert sum(count for _, _, count in data['picks']) == sent
    effects = requests_by_effect(data)
    assert sum(effects.values()) == sent, effects
    delayed = effects.get('delayed', 0)
    assert 0.17 * sent <= delayed <= 0.23 * sent, effects
    # The rest went through untouched.
    assert effects == {'delayed': delayed, 'passed': sent - delayed}
    # Every delayed request really waited, as its client saw it.
    slow = sum(1 for t in times if t >= SLEEP)
    assert slow >= delayed


def test_a_share_of_the_exchanges_is_cut(vaurien_inproc, http_backend):
    connections = 1000
    proxy = vaurien_inproc('--protocol', 'http', '--behavior', '5:blackout',
                           '--seed', '2026', *HTTP_ARGS,
                           backend=http_backend.address, extra_paths=[HERE])
    cut = []
    lock = threading.Lock()

    def one(times):
        for _ in range(connections // CLIENTS):
            # One request a connection: a cut exchange is a cut connection.
            conn = http.client.HTTPConnection(*proxy.address, timeout=30)
            try:
                conn.request('GET', '/size/100')
                response = conn.getresponse()
                assert response.status == 200
                assert len(response.read()) == 100
            except (http.client.HTTPException, OSError):
                with lock:
                    cut.append(1)
            finally:
                conn.close()
    run_clients(one)
    assert 0.035 * connections <= len(cut) <= 0.065 * connections, len(cut)
    data = support.wait_until(
        lambda: (lambda d: d if d['closed'] >= connections else None)(
            stats(proxy)), what='every connection closed')
    effects = requests_by_effect(data)
    # What the clients saw is what the proxy counted: per request, and per
    # connection.
    assert effects.get('cut') == len(cut), effects
    assert data['connections'].get('cut') == len(cut), data['connections']
    assert sum(count for _, _, count in data['picks']) == connections


def keep_alive_requests(proxy, count, statuses):
    conn = http.client.HTTPConnection(*proxy.address, timeout=30)
    for _ in range(count):
        conn.request('GET', '/size/100')
        response = conn.getresponse()
        response.read()
        statuses.append(response.status)
        if response.will_close:
            conn.close()
            conn = http.client.HTTPConnection(*proxy.address, timeout=30)
    conn.close()


def test_the_response_of_a_picked_request_gets_the_fault(vaurien_inproc,
                                                         http_backend):
    # error acts on responses: the response of each request that picked it
    # is an error, as the client sees (and only those).
    proxy = vaurien_inproc('--protocol', 'http', '--behavior', '10:error',
                           '--seed', '7', *HTTP_ARGS,
                           backend=http_backend.address, extra_paths=[HERE])
    statuses = []
    keep_alive_requests(proxy, 400, statuses)
    errors = sum(1 for status in statuses if status >= 500)
    assert 0.05 * 400 <= errors <= 0.15 * 400, errors
    data = stats(proxy)
    assert requests_by_effect(data) == {'errored': errors,
                                        'passed': 400 - errors}
    # Per handler call: the request went through untouched (wrong
    # direction), its response was errored.
    calls = {(name, effect): count for name, effect, count
             in data['effects']}
    assert calls == {('error', 'none'): errors, ('error', 'errored'): errors}


def test_pick_event_picks_each_message(vaurien_inproc, http_backend):
    # The per-message dispatch of --pick event, kept on request: a pick for
    # each request and one for each response (still none at the end of
    # stream).
    proxy = vaurien_inproc('--protocol', 'http', '--pick', 'event',
                           '--behavior', '20:delay',
                           '--handlers.delay.sleep', '0',
                           '--seed', '7', *HTTP_ARGS,
                           backend=http_backend.address, extra_paths=[HERE])
    statuses = []
    keep_alive_requests(proxy, 100, statuses)
    assert statuses == [200] * 100
    data = support.wait_until(
        lambda: (lambda d: d if d['closed'] >= 1 else None)(stats(proxy)),
        what='the connection closed')
    picks = {}
    for _, to_backend, count in data['picks']:
        picks[to_backend] = picks.get(to_backend, 0) + count
    assert picks == {True: 100, False: 100}
    assert data['requests'] == []


def test_pick_exchange_needs_a_protocol():
    result = support.run_cli('--pick', 'exchange', '--check')
    assert result.returncode == 2
    assert result.stderr.startswith('vaurien: error: --pick exchange needs '
                                    'a --protocol')
    assert len(result.stderr.splitlines()) == 1


def test_requests_without_a_response_do_not_shift_the_pairing(
        vaurien_inproc, memcached_backend, tmp_path):
    # pymemcache sends set with noreply: no response. Each get's response
    # must get the pick of that get, not of the set before it.
    from pymemcache.client.base import Client
    from pymemcache.exceptions import MemcacheServerError
    from observe_support import finish, read_events
    log = tmp_path / 'events.jsonl'
    proxy = vaurien_inproc('--protocol', 'memcache', '--behavior', '30:error',
                           '--seed', '11', '--event-log', str(log),
                           backend=memcached_backend.address,
                           extra_paths=[HERE])
    client = Client(proxy.address, timeout=30)
    errors = 0
    for i in range(100):
        client.set('vaurien-pairing', b'%d' % i)     # noreply
        try:
            assert client.get('vaurien-pairing') == b'%d' % i
        except MemcacheServerError:
            errors += 1
    client.close()
    finish(proxy)
    data = [e for e in read_events(log) if e['event'] == 'data']
    up = [e['handler'] for e in data if e['direction'] == 'upstream']
    down = [e['handler'] for e in data if e['direction'] == 'downstream']
    assert len(up) == 200 and len(down) == 100
    assert down == up[1::2]
    assert down.count('error') == errors > 0
