"""``--workers N``: N processes on one port, one control API for all."""
import json
import os
import signal
import socket
import time
import urllib.error
import urllib.request

import pytest

import support


def _api(port, method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request('http://127.0.0.1:%d%s' % (port, path),
                                     data=data, method=method)
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def _control_port(proxy):
    import re
    match = support.wait_until(
        lambda: re.search(r'control API on http://\S+:(\d+)', proxy.log()),
        what='the control API line')
    return int(match.group(1))


def _exchange(port, payload=b'ping'):
    with socket.create_connection((support.HOST, port), timeout=10) as sock:
        sock.sendall(payload)
        return support.recv_exact(sock, len(payload))


def _children(pid):
    path = '/proc/%d/task/%d/children' % (pid, pid)
    with open(path) as fh:
        return [int(p) for p in fh.read().split()]


def _workers_listening(proxy, count):
    return support.wait_until(
        lambda: proxy.log().count('proxying ') >= count,
        what='%d workers to listen' % count)


@pytest.mark.timeout(60)
def test_two_workers_share_the_port(vaurien, echo_server, tmp_path):
    events = tmp_path / 'events.log'
    proxy = vaurien('--workers', '2', '--event-log', str(events),
                    '--event-log-flush', backend=echo_server.address)
    _workers_listening(proxy, 2)
    assert 'worker 1 of 2' in proxy.log() and 'worker 2 of 2' in proxy.log()
    assert len(_children(proxy.proc.pid)) == 2
    for i in range(40):
        assert _exchange(proxy.port, b'hello %d' % i) == b'hello %d' % i
    opened = support.wait_until(
        lambda: len(_opens(events)) >= 40 and _opens(events),
        what='40 open events')
    # Worker 1 numbers its connections 1, 3, 5...; worker 2: 2, 4, 6...
    # The kernel spreads connections over both (2**-39 odds of not).
    assert len(set(opened)) == len(opened)
    assert {n % 2 for n in opened} == {0, 1}


def _opens(path):
    return [json.loads(line)['conn'] for line in path.read_text().splitlines()
            if '"event":"open"' in line]


@pytest.mark.timeout(60)
def test_a_control_change_reaches_every_worker(vaurien, echo_server):
    proxy = vaurien('--workers', '2', '--http', '--http-port', '0',
                    backend=echo_server.address)
    _workers_listening(proxy, 2)
    port = _control_port(proxy)
    assert _exchange(proxy.port) == b'ping'
    assert _api(port, 'PUT', '/behavior', {'name': 'error'}) == \
        {'status': 'ok'}
    # Every connection, whichever worker takes it, now gets random bytes.
    answers = [_exchange(proxy.port, b'x' * 64) for _ in range(30)]
    assert all(answer != b'x' * 64 for answer in answers)
    assert _api(port, 'GET', '/behavior')['behavior'] == 'error'
    # Each worker applied it (the parent only forwards).
    applied = [line for line in proxy.log().splitlines()
               if 'control API: behavior is now 100:error' in line]
    assert {int(line.split('[')[1].split(']')[0]) for line in applied} == \
        set(_children(proxy.proc.pid))
    assert len(applied) == 2

    # Down: every worker stops listening, so connections are refused.
    _api(port, 'PUT', '/proxy', {'enabled': False})
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((support.HOST, proxy.port), timeout=5)
    assert _api(port, 'GET', '/proxy')['enabled'] is False
    _api(port, 'PUT', '/proxy', {'enabled': True})
    _api(port, 'PUT', '/behavior', {'name': 'dummy'})
    for _ in range(10):
        assert _exchange(proxy.port) == b'ping'


@pytest.mark.timeout(60)
def test_a_refused_change_reaches_no_worker(vaurien, echo_server):
    proxy = vaurien('--workers', '2', '--http', '--http-port', '0',
                    backend=echo_server.address)
    _workers_listening(proxy, 2)
    port = _control_port(proxy)
    request = urllib.request.Request(
        'http://127.0.0.1:%d/behavior' % port, method='PUT',
        data=json.dumps({'name': 'delay', 'sleep': 'long'}).encode())
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(request, timeout=10)
    assert info.value.code == 400
    # The same answer as one process gives (the workers' refusal, relayed).
    assert json.loads(info.value.read()) == {
        'status': 'error', 'errors': [{
            'location': 'body', 'name': 'sleep',
            'description': "delay: option 'sleep' expects a number, got "
                           "'long'"}]}
    # State and options are read from the workers, unchanged.
    assert _api(port, 'GET', '/behavior') == {'behavior': 'dummy'}
    assert _api(port, 'GET', '/proxy')['options'] == {'dummy': {}}
    assert _api(port, 'GET', '/backend') == {
        'backend': '%s:%d' % echo_server.address}
    for _ in range(10):
        assert _exchange(proxy.port) == b'ping'
    assert 'behavior is now' not in proxy.log()


@pytest.mark.timeout(60)
def test_sigterm_stops_every_worker(echo_server):
    proxy = support.VaurienProcess('--workers', '3',
                                   backend=echo_server.address)
    try:
        _workers_listening(proxy, 3)
        children = _children(proxy.proc.pid)
        assert len(children) == 3
        assert _exchange(proxy.port) == b'ping'
    finally:
        proxy.proc.send_signal(signal.SIGTERM)
        assert proxy.proc.wait(20) == 0
        proxy.stop()
    for pid in children:
        assert not os.path.exists('/proc/%d' % pid) or \
            open('/proc/%d/stat' % pid).read().split()[2] == 'Z'


@pytest.mark.parametrize('args, words', [
    (['--workers', '0'], '--workers expects a whole number above 0'),
    (['--workers', '2', '--behavior', '10:nosuch'], "unknown handler 'nosuch'"),
])
def test_mistakes_end_before_any_fork(args, words):
    result = support.run_cli(*args)
    assert result.returncode == 2
    assert result.stderr.count('\n') == 1 and words in result.stderr
    assert 'Traceback' not in result.stderr


def test_port_in_use_with_workers():
    with socket.socket() as taken:
        taken.bind((support.HOST, 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = support.run_cli('--workers', '2', '--local',
                                 '127.0.0.1:%d' % port)
    assert result.returncode == 2
    assert result.stderr == ('vaurien: error: cannot listen on 127.0.0.1:%d: '
                             'address already in use\n' % port)


@pytest.mark.timeout(60)
def test_metrics_add_up_every_worker(vaurien, echo_server):
    from prometheus_client.parser import text_string_to_metric_families
    proxy = vaurien('--workers', '2', '--http', '--http-port', '0',
                    backend=echo_server.address)
    _workers_listening(proxy, 2)
    port = _control_port(proxy)
    for i in range(20):
        assert _exchange(proxy.port, b'%05d' % i) == b'%05d' % i

    def samples():
        url = 'http://127.0.0.1:%d/metrics' % port
        with urllib.request.urlopen(url, timeout=10) as response:
            text = response.read().decode()
        found = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                key = (sample.name, tuple(sorted(sample.labels.items())))
                found[key] = sample.value
        return found
    # Closes are counted as the workers notice them: poll.
    found = support.wait_until(
        lambda: (lambda f: f if f[('vaurien_connections_closed_total', ())]
                 == 20 else None)(samples()), what='20 closed connections')
    assert found[('vaurien_connections_total', ())] == 20
    assert found[('vaurien_connections_open', ())] == 0
    # GET /proxy counts the workers' open connections too.
    with socket.create_connection(proxy.address) as held:
        held.sendall(b'x')
        assert support.recv_exact(held, 1) == b'x'
        assert _api(port, 'GET', '/proxy')['connections'] == 1
    support.wait_until(lambda: _api(port, 'GET', '/proxy')['connections']
                       == 0, what='the connection to be closed')
    for direction in ('upstream', 'downstream'):
        assert found[('vaurien_bytes_total',
                      (('direction', direction),))] == 100
    picks = sum(value for (name, labels), value in found.items()
                if name == 'vaurien_handler_picks_total')
    assert picks >= 40     # each connection: its data, both ways


@pytest.mark.timeout(60)
def test_stats_add_up_every_worker(vaurien, echo_server):
    # GET /stats (the dashboard's figures): effects summed, the last
    # faults of every worker in time order.
    proxy = vaurien('--workers', '2', '--http', '--http-port', '0',
                    '--behavior', '100:blackout', backend=echo_server.address)
    _workers_listening(proxy, 2)
    port = _control_port(proxy)
    for _ in range(12):
        with socket.create_connection(proxy.address, timeout=10) as sock:
            sock.sendall(b'x')
            assert support.ends_soon(sock)
    stats = support.wait_until(
        lambda: (lambda s: s if s['closed'] == 12 else None)(
            _api(port, 'GET', '/stats')), what='12 closed connections')
    assert stats['effects'] == [['blackout', 'cut', 12]]
    # (worker k numbers its connections k+1, k+3, ...: unique, with gaps)
    conns = [fault['conn'] for fault in stats['recent']]
    assert len(set(conns)) == 12
    times = [fault['time'] for fault in stats['recent']]
    assert times == sorted(times)


def _wait_children(proxy, count, without=()):
    return support.wait_until(
        lambda: (lambda kids: kids if len(kids) == count and not
                 set(kids) & set(without) else None)(
            _children(proxy.proc.pid)), timeout=5,
        what='%d workers, none of %s' % (count, without))


def _exited(pid):
    """True once every thread of *pid* has exited, or it is gone: a
    killed process's main thread can be a zombie while another thread
    still runs its exit, and the last one holds the listening socket."""
    try:
        tasks = os.listdir('/proc/%d/task' % pid)
    except FileNotFoundError:
        return True
    for task in tasks:
        try:
            with open('/proc/%d/task/%s/stat' % (pid, task)) as fh:
                if fh.read().rpartition(')')[2].split()[0] not in ('Z', 'X'):
                    return False
        except FileNotFoundError:
            pass
    return True


@pytest.mark.timeout(60)
@pytest.mark.parametrize('victim', [0, 2])
def test_a_dead_worker_is_replaced_within_a_second(vaurien, echo_server,
                                                   victim):
    proxy = vaurien('--workers', '3', backend=echo_server.address)
    _workers_listening(proxy, 3)
    children = _children(proxy.proc.pid)
    dead = children[victim]
    os.kill(dead, signal.SIGKILL)
    start = time.monotonic()
    # Connections the kernel had already queued on the victim's own
    # SO_REUSEPORT socket die with it (docs/reliability.rst); from its
    # exit on, the port is served all along by the others.
    support.wait_until(lambda: _exited(dead), timeout=5,
                       what='worker pid %d to exit' % dead)
    for i in range(20):
        assert _exchange(proxy.port, b'%03d' % i) == b'%03d' % i
    fresh = _wait_children(proxy, 3, without=[dead])
    assert time.monotonic() - start < 5
    support.wait_until(lambda: proxy.log().count('proxying ') >= 4,
                       what='the new worker to listen')
    replaced = [line for line in proxy.log().splitlines()
                if 'pid %d) was killed by signal 9' % dead in line]
    assert len(replaced) == 1 and 'starting a new one' in replaced[0]
    assert 'worker %d is pid' % (victim + 1) in proxy.log()
    assert len(set(fresh) - set(children)) == 1
    for i in range(20):
        assert _exchange(proxy.port, b'%03d' % i) == b'%03d' % i


@pytest.mark.timeout(60)
def test_a_paused_worker_gets_a_503_and_the_change_is_rolled_back(
        vaurien, echo_server):
    proxy = vaurien('--workers', '2', '--http', '--http-port', '0',
                    backend=echo_server.address)
    _workers_listening(proxy, 2)
    port = _control_port(proxy)
    assert _api(port, 'PUT', '/behavior', {'name': 'delay'}) == \
        {'status': 'ok'}
    paused, awake = _children(proxy.proc.pid)
    os.kill(paused, signal.SIGSTOP)
    try:
        request = urllib.request.Request(
            'http://127.0.0.1:%d/behavior' % port, method='PUT',
            data=json.dumps({'name': 'error'}).encode())
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(request, timeout=20)
        assert info.value.code == 503
        [error] = json.loads(info.value.read())['errors']
        assert 'pid %d' % paused in error['name']
        assert 'rolled back' in error['description']
    finally:
        os.kill(paused, signal.SIGCONT)
    # The late worker applies the change, then its undo: both agree again.
    def last_behavior(pid):
        lines = [line for line in proxy.log().splitlines()
                 if '[%d]' % pid in line and 'behavior is now' in line]
        return lines[-1].rsplit(' ', 1)[1] if lines else None
    support.wait_until(lambda: last_behavior(paused) == '100:delay' and
                       proxy.log().count('[%d]' % paused) >= 4,
                       what='the paused worker to catch up')
    assert last_behavior(awake) == '100:delay'
    # Later calls get their own answers, not the late ones.
    for _ in range(5):
        assert _api(port, 'GET', '/behavior')['behavior'] == 'delay'
        with urllib.request.urlopen('http://127.0.0.1:%d/metrics' % port,
                                    timeout=10) as response:
            assert response.status == 200
