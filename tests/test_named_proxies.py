"""Many named proxies in one ``vaurien`` process ([proxy:NAME] sections,
vaurien/service.py GroupService): each relays, each has its own behavior
and toxics, Vaurien's routes exist per proxy beside Toxiproxy's, and one
can be changed without touching the others."""
import subprocess
import sys
import textwrap

import pytest
import requests

import support
from control_support import start_controlled
from named_support import InProcessNamedVaurien
from observe_support import UDPSink
from toxiproxy_support import address, connect, exchange
from vaurien import Client


@pytest.fixture
def echo():
    server = support.TCPServer(support.echo)
    yield server
    server.close()


def ini(echo, extra=''):
    host, port = echo.address
    return textwrap.dedent('''\
        [proxy:slow]
        local = 127.0.0.1:0
        distant = {host}:{port}
        behavior = 100:delay
        handlers.delay.sleep = 0.3
        toxics = [{{"type": "latency", "stream": "upstream",
                   "attributes": {{"latency": 300}}}}]

        [proxy:fast]
        local = 127.0.0.1:0
        distant = {host}:{port}

        [proxy:off]
        local = 127.0.0.1:0
        distant = {host}:{port}
        enabled = false
        ''').format(host=host, port=port) + extra


@pytest.fixture
def named_vaurien(echo):
    proc = InProcessNamedVaurien(ini(echo), names=('slow', 'fast'))
    yield proc
    proc.stop()


def test_each_proxy_relays_with_its_own_faults(named_vaurien):
    """The behavior's pick (delay 0.3 s before the request) and the
    section's toxic (latency 0.3 s upstream) both act on 'slow'."""
    named = named_vaurien
    with connect(named.address('slow')) as sock:
        got, took = exchange(sock, b'ping')
    assert got == b'ping' and 0.6 <= took < 2
    with connect(named.address('fast')) as sock:
        got, took = exchange(sock, b'ping')
    assert got == b'ping' and took < 0.3
    assert 'off' not in named.ports


def test_toxiproxy_routes_list_every_proxy(named_vaurien):
    named = named_vaurien
    proxies = named.request('GET', '/proxies').json()
    assert sorted(proxies) == ['fast', 'off', 'slow']
    assert proxies['off']['enabled'] is False
    assert proxies['slow']['toxics'][0]['name'] == 'latency_upstream'
    answer = named.request('PATCH', '/proxies/off', {'enabled': True})
    port = address(answer.json()['listen'])[1]
    with connect(('127.0.0.1', port)) as sock:
        assert exchange(sock, b'on')[0] == b'on'


def test_vaurien_routes_exist_per_proxy(named_vaurien):
    named = named_vaurien
    answer = named.request('GET', '/proxies/slow/behavior')
    assert answer.json()['behavior'] == 'delay'
    assert named.request('GET', '/proxies/fast/handler').text == 'dummy'
    answer = named.request('PUT', '/proxies/fast/behavior',
                           {'name': 'delay', 'sleep': 0.3})
    assert answer.status_code == 200, answer.text
    with connect(named.address('fast')) as sock:
        assert exchange(sock, b'x')[1] >= 0.3
    # no proxy named "default" and more than one: the top-level routes
    # ask for a name
    answer = named.request('GET', '/handler')
    assert answer.status_code == 404
    assert 'no default proxy' in answer.json()['errors'][0]['description']
    answer = named.request('GET', '/proxies/nope/handler')
    assert answer.status_code == 404


def test_metrics_name_the_proxies(named_vaurien):
    named = named_vaurien
    with connect(named.address('fast')) as sock:
        exchange(sock, b'12345')
    text = named.request('GET', '/metrics').text
    assert 'vaurien_connections_total{proxy="fast"} 1' in text
    text = named.request('GET', '/proxies/fast/metrics').text
    assert 'vaurien_connections_total 1' in text


def test_a_removed_proxy_leaves_the_others(named_vaurien):
    named = named_vaurien
    with connect(named.address('fast')) as kept:
        assert exchange(kept, b'1')[0] == b'1'
        assert named.request('DELETE', '/proxies/slow').status_code == 204
        assert not support.port_open(named.ports['slow'])
        assert exchange(kept, b'2')[0] == b'2'


def test_event_log_names_the_proxy(echo, tmp_path):
    events = tmp_path / 'events.jsonl'
    proc = InProcessNamedVaurien(ini(echo), '--event-log', str(events),
                                 '--event-log-flush', names=('slow', 'fast'))
    try:
        with connect(proc.address('fast')) as sock:
            exchange(sock, b'x')
        support.wait_until(lambda: '"proxy":"fast"' in events.read_text())
    finally:
        proc.stop()


def test_default_proxy_beside_sections(echo):
    host, port = echo.address
    proc = InProcessNamedVaurien(ini(echo), '--local', '127.0.0.1:0',
                                 '--distant', '%s:%d' % echo.address,
                                 names=('default', 'fast'))
    try:
        assert proc.request('GET', '/handler').text == 'dummy'
        assert 'default' in proc.request('GET', '/proxies').json()
        with connect(proc.address('default')) as sock:
            assert exchange(sock, b'd')[0] == b'd'
    finally:
        proc.stop()


def test_toxics_on_the_plain_single_proxy(vaurien_inproc, echo):
    """A plain --local/--distant run is the proxy "default": Toxiproxy's
    routes put toxics on it."""
    proc = start_controlled(vaurien_inproc, echo.address)
    url = 'http://127.0.0.1:%d' % proc.http_port
    answer = requests.post(url + '/proxies/default/toxics', json={
        'type': 'latency', 'attributes': {'latency': 300}}, timeout=10)
    assert answer.status_code == 200, answer.text
    with proc.connect() as sock:
        got, took = exchange(sock, b'x')
    assert got == b'x' and took >= 0.3
    assert requests.get(url + '/handler', timeout=10).text == 'dummy'


def test_mistakes_in_sections_are_one_line(tmp_path):
    cases = [
        ('[proxy:a]\nlocal = 127.0.0.1:0\n', '[proxy:a] needs "distant"'),
        ('[proxy:a]\nlocal = 127.0.0.1:0\ndistant = 127.0.0.1:1\n'
         'toxics = [{"type": "nope"}]\n',
         "[proxy:a] in %s: toxics: invalid toxic type 'nope' (known: "),
        ('[proxy:a]\nlocal = 127.0.0.1:0\ndistant = 127.0.0.1:1\n'
         'behavior = 10:nope\n', "unknown handler 'nope'"),
    ]
    for text, words in cases:
        path = tmp_path / 'bad.ini'
        path.write_text(text)
        done = subprocess.run([sys.executable, '-m', 'vaurien', '--config',
                               str(path)], capture_output=True, text=True,
                              timeout=30, env=support.env_with_root())
        assert done.returncode == 2, done.stderr
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith('vaurien: error: ')
        assert (words % path if '%s' in words else words) in lines[0], lines


def test_a_failing_handler_toxic_ends_its_connection_only(echo, tmp_path):
    module = tmp_path / 'boomers.py'
    module.write_text(textwrap.dedent('''\
        from vaurien.handlers import BaseHandler

        class Boom(BaseHandler):
            name = 'boom'

            def __call__(self, client_sock, backend_sock, to_backend):
                raise RuntimeError('boom')
        '''))
    text = ini(echo, textwrap.dedent('''
        [handler:boom]
        callable = boomers.Boom

        [proxy:boom]
        local = 127.0.0.1:0
        distant = {}:{}
        toxics = [{{"type": "boom"}}]
        ''').format(*echo.address))
    proc = InProcessNamedVaurien(text, names=('boom', 'fast'),
                                 extra_paths=[str(tmp_path)])
    try:
        with connect(proc.address('boom')) as sock:
            sock.settimeout(5)
            sock.sendall(b'x')
            try:
                assert sock.recv(10) == b''
            except ConnectionResetError:
                pass
        with connect(proc.address('fast')) as sock:
            assert exchange(sock, b'still')[0] == b'still'
        metrics = proc.request('GET', '/proxies/boom/metrics').text
        assert 'vaurien_handler_exceptions_total{handler="boom"} 1' in metrics
    finally:
        log = proc.stop()
    assert "handler 'boom' failed on connection 1" in log


def test_client_and_vaurienctl_name_the_proxy(named_vaurien):
    named = named_vaurien
    client = Client(named.url, proxy='fast')
    assert 'fast' in repr(client)
    with client.with_handler('delay', sleep=0.3):
        with connect(named.address('fast')) as sock:
            assert exchange(sock, b'x')[1] >= 0.3
        with connect(named.address('slow')) as sock:
            got, took = exchange(sock, b'x')
    assert client.get_handler() == 'dummy'
    done = subprocess.run(
        [sys.executable, '-m', 'vaurien.ctl', '--host', named.url, '--proxy',
         'slow', 'get-handler'], capture_output=True, text=True, timeout=30,
        env=support.env_with_root())
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == 'delay', done.stdout
    done = subprocess.run(
        [sys.executable, '-m', 'vaurien.ctl', '--host', named.url, '--proxy',
         'slow', 'stats', '--once'], capture_output=True, text=True,
        timeout=30, env=support.env_with_root())
    assert done.returncode == 0 and 'proxy slow' in done.stdout, done.stdout


def test_statsd_counts_each_named_proxy_under_its_name(echo):
    sink = UDPSink()
    proc = InProcessNamedVaurien(ini(echo), '--statsd.enabled',
                                 '--statsd.host', support.HOST,
                                 '--statsd.port', str(sink.port),
                                 names=('slow', 'fast'))
    try:
        with connect(proc.address('fast')) as sock:
            exchange(sock, b'12345')
        support.wait_until(
            lambda: sink.totals().get('vaurien.fast.connections.opened') == 1,
            timeout=20, what='vaurien.fast.connections.opened')
        assert 'vaurien.slow.connections.opened' not in sink.totals()
    finally:
        proc.stop()
        sink.close()


def test_check_and_workers_with_sections(echo, tmp_path):
    path = tmp_path / 'named.ini'
    path.write_text(ini(echo))
    done = subprocess.run([sys.executable, '-m', 'vaurien', '--check',
                           '--config', str(path)], capture_output=True,
                          text=True, timeout=30, env=support.env_with_root())
    assert (done.returncode, done.stdout) == (0,
                                              'vaurien: configuration OK\n')
    path.write_text(ini(echo).replace('100:delay', '100:nope'))
    done = subprocess.run([sys.executable, '-m', 'vaurien', '--check',
                           '--config', str(path)], capture_output=True,
                          text=True, timeout=30, env=support.env_with_root())
    assert done.returncode == 2 and "unknown handler 'nope'" in done.stderr
    path.write_text(ini(echo))
    done = subprocess.run([sys.executable, '-m', 'vaurien', '--workers', '2',
                           '--config', str(path)], capture_output=True,
                          text=True, timeout=30, env=support.env_with_root())
    assert done.returncode == 2
    assert 'need one process (--workers 1)' in done.stderr


def test_both_apis_see_the_same_enabled_state(named_vaurien):
    named = named_vaurien
    assert named.request('PUT', '/proxies/fast/proxy',
                         {'enabled': False}).status_code == 200
    assert named.request('GET', '/proxies/fast').json()['enabled'] is False
    assert not support.port_open(named.ports['fast'])
    answer = named.request('POST', '/proxies/fast', {'enabled': True})
    assert answer.json()['enabled'] is True
    assert named.request('GET', '/proxies/fast/proxy').json()['enabled']
    assert support.port_open(named.ports['fast'])
