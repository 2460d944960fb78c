"""The chaos event log (``--event-log``), with a real proxy process."""
import datetime
import json
import os
import socket
import time

import pytest

import support
from observe_support import finish, read_events, talk
from support import exchange

MESSAGES = [b'one', b'two' * 50, b'three' * 10, b'four', b'five' * 100]


def expected_handlers(seed, behavior_text, seq, to_backend, count):
    """The handlers the seeded picker gives to the first *count* events of
    one direction of connection *seq*."""
    from vaurien.behavior import Behavior, direction_random
    from vaurien.config import parse_behavior
    behavior = Behavior([(percent, name, object())
                         for percent, name in parse_behavior(behavior_text)])
    rng = direction_random(seed, seq, to_backend)
    return [behavior.pick(rng, to_backend)[0] for _ in range(count)]


def handler_sequences(events):
    """``{(conn, direction): [handler, ...]}`` of the data events."""
    result = {}
    for event in events:
        if event['event'] == 'data':
            result.setdefault((event['conn'], event['direction']),
                              []).append(event['handler'])
    return result


def wait_for_close(path, count=1):
    """Wait until the event log (written with --event-log-flush) has
    *count* close lines."""
    support.wait_until(
        lambda: path.exists() and path.read_text().count(
            '"event":"close"') >= count, what='the close line')


def _stamp(text):
    """Seconds since the epoch of an event's ``time`` field."""
    return datetime.datetime.fromisoformat(
        text.replace('Z', '+00:00')).timestamp()


def seeded_run(vaurien_inproc, backend, path, seed, behavior):
    proc = vaurien_inproc('--event-log', str(path), '--seed', str(seed),
                          '--behavior', behavior, '--handlers.delay.sleep',
                          '0',
                          backend=backend)
    sent = talk(proc.address, MESSAGES, connections=3, same=False)
    finish(proc)
    return sent, read_events(path)


@pytest.mark.timeout(90)
def test_seeded_run_lists_the_expected_handler_per_event(vaurien_inproc,
                                                         echo_server,
                                                         tmp_path):
    behavior = '40:delay,20:error'
    began = time.monotonic()
    sent, events = seeded_run(vaurien_inproc, echo_server.address,
                              tmp_path / 'events.log', 1234, behavior)
    elapsed = time.monotonic() - began
    opens = [e for e in events if e['event'] == 'open']
    closes = [e for e in events if e['event'] == 'close']
    assert [e['conn'] for e in opens] == [1, 2, 3]
    assert [e['conn'] for e in closes] == [1, 2, 3]
    for event in opens:
        assert event['seed'] == 1234
        assert event['pick'] == 'event'
        assert event['behavior'] == behavior
        assert event['backend'] == '%s:%d' % echo_server.address
    per_conn = sent // 3
    for event in closes:
        assert event['bytes_up'] == per_conn
        assert event['bytes_down'] == per_conn
        assert event['closed_by'] == 'client'
    # Each duration is the span from its open line to its close line (both
    # stamped to the millisecond), and the connections, one after the
    # other, fit in the time the run took.
    for opened, closed in zip(opens, closes):
        span = _stamp(closed['time']) - _stamp(opened['time'])
        assert abs(closed['duration'] - span) <= 0.01, (opened, closed)
    assert sum(e['duration'] for e in closes) <= elapsed, (closes, elapsed)
    sequences = handler_sequences(events)
    assert len(sequences) == 6
    for (conn, direction), handlers in sequences.items():
        # One pick per message; the end of stream is not a pick.
        assert len(handlers) == len(MESSAGES)
        assert handlers == expected_handlers(
            1234, behavior, conn, direction == 'upstream', len(handlers))
    assert {'delay', 'error', 'dummy'} <= {
        h for handlers in sequences.values() for h in handlers}
    for event in events:
        if event['event'] != 'data':
            continue
        assert event['client'] == opens[event['conn'] - 1]['client']
        upstream = event['direction'] == 'upstream'
        assert event['bytes'] > 0, event
        expected = {'dummy': 'passed',
                    'delay': 'delayed' if upstream else 'none',
                    'error': 'none' if upstream else 'errored'}
        assert event['effect'] == expected[event['handler']], event
        # A pick with no effect says why.
        assert event.get('why') == ('wrong direction'
                                    if event['effect'] == 'none' else None)
        assert ('seconds' in event) == (event['handler'] != 'dummy')


@pytest.mark.timeout(120)
def test_same_seed_same_handler_sequence(vaurien_inproc, echo_server,
                                         tmp_path):
    behavior = '30:delay,30:error'
    runs = []
    for run in range(2):
        _, events = seeded_run(vaurien_inproc, echo_server.address,
                               tmp_path / ('run%d.log' % run), 77, behavior)
        runs.append([(e['conn'], e['direction'], e['handler'], e['bytes'])
                     for e in events if e['event'] == 'data'])
    assert runs[0] == runs[1]
    _, other = seeded_run(vaurien_inproc, echo_server.address,
                          tmp_path / 'other.log', 78, behavior)
    assert runs[0] != [(e['conn'], e['direction'], e['handler'], e['bytes'])
                       for e in other if e['event'] == 'data']


@pytest.mark.timeout(60)
def test_pick_per_connection_is_logged(vaurien_inproc, echo_server, tmp_path):
    path = tmp_path / 'events.log'
    proc = vaurien_inproc('--event-log', str(path), '--pick', 'connection',
                          '--behavior', '50:delay', '--handlers.delay.sleep',
                          '0',
                          '--seed', '9', backend=echo_server.address)
    talk(proc.address, MESSAGES[:2], connections=4)
    finish(proc)
    events = read_events(path)
    assert {e['pick'] for e in events if e['event'] == 'open'} == \
        {'connection'}
    for conn in range(1, 5):
        handlers = {e['handler'] for e in events
                    if e['event'] == 'data' and e['conn'] == conn}
        assert len(handlers) == 1


@pytest.mark.timeout(60)
@pytest.mark.parametrize('name, effect, closed_by', [
    ('blackout', 'cut', 'handler'),
    ('hang', 'hung', 'client'),
])
def test_effects_of_faults(vaurien_inproc, echo_server, tmp_path, name,
                           effect, closed_by):
    path = tmp_path / 'events.log'
    proc = vaurien_inproc('--event-log', str(path), '--event-log-flush',
                          '--behavior', '100:' + name,
                          backend=echo_server.address)
    with proc.connect() as sock:
        sock.sendall(b'hello')
        if name == 'hang':
            sock.settimeout(0.3)
            with pytest.raises(socket.timeout):
                sock.recv(10)
    wait_for_close(path)
    finish(proc)
    events = read_events(path)
    data = [e for e in events if e['event'] == 'data']
    assert data[0]['handler'] == name
    assert data[0]['effect'] == effect
    close = [e for e in events if e['event'] == 'close']
    assert len(close) == 1
    assert close[0]['closed_by'] == closed_by


@pytest.mark.timeout(60)
def test_backend_failure_is_logged(vaurien_inproc, tmp_path):
    path = tmp_path / 'events.log'
    with support.reserved_port() as closed:
        proc = vaurien_inproc('--event-log', str(path),
                              backend=(support.HOST, closed))
        with proc.connect() as sock:
            assert support.recv_all(sock) == b''
        finish(proc)
    events = read_events(path)
    assert [e['event'] for e in events] == ['open', 'connect_failed',
                                            'close']
    assert events[1]['reason'] == 'refused'
    assert events[2]['closed_by'] == 'backend'
    assert events[2]['bytes_up'] == events[2]['bytes_down'] == 0


@pytest.mark.timeout(60)
def test_handler_exception_is_logged_as_failed(vaurien_inproc, echo_server,
                                               tmp_path):
    plugin = tmp_path / 'boomer.py'
    plugin.write_text('def boom(client_sock, backend_sock, to_backend):\n'
                      '    raise RuntimeError("boom")\n')
    path = tmp_path / 'events.log'
    proc = vaurien_inproc('--event-log', str(path), '--event-log-flush',
                          '--behavior', '100:boomer.boom',
                          backend=echo_server.address,
                          extra_paths=[str(tmp_path)])
    with proc.connect() as sock:
        sock.sendall(b'x')
        try:
            support.recv_all(sock)
        except ConnectionResetError:
            pass
    wait_for_close(path)
    finish(proc)
    events = read_events(path)
    data = [e for e in events if e['event'] == 'data']
    assert data[0]['handler'] == 'boomer.boom'
    assert data[0]['effect'] == 'failed'
    assert [e for e in events if e['event'] == 'close'][0]['closed_by'] == \
        'error'


@pytest.mark.timeout(60)
@pytest.mark.parametrize('path, reason', [
    ('/nonexistent-dir-for-vaurien/events.log', 'no such file or directory'),
    ('/', 'is a directory'),
])
def test_unwritable_event_log_is_a_startup_error(echo_server, path, reason):
    result = support.run_cli('--local', '127.0.0.1:0', '--distant',
                             '%s:%d' % echo_server.address,
                             '--event-log', path)
    assert result.returncode == 2
    assert result.stderr == 'vaurien: error: cannot write the event log ' \
        'to %s: %s\n' % (path, reason)
    assert result.stdout == ''


@pytest.mark.timeout(90)
@pytest.mark.skipif(not os.path.exists('/dev/full'), reason='no /dev/full')
def test_full_disk_never_stops_the_traffic(vaurien_inproc, echo_server):
    # /dev/full accepts the open and fails every write with ENOSPC, as a
    # disk that filled up after start-up.
    proc = vaurien_inproc('--event-log', '/dev/full',
                          backend=echo_server.address)
    with proc.connect() as sock:
        for i in range(200):
            message = b'message %d ' % i * 20
            assert exchange(sock, message) == message
        support.wait_until(lambda: 'event log: cannot write' in proc.log(),
                           what='the warning about the event log')
        for i in range(50):
            assert exchange(sock, b'still %d' % i) == b'still %d' % i
    log = finish(proc)
    assert log.count('event log: cannot write') == 1


@pytest.mark.timeout(60)
def test_event_log_on_stdout(echo_server):
    # Run to completion (the client talks, then SIGTERM) and read stdout.
    proc = support.VaurienProcess('--event-log', '-',
                                  backend=echo_server.address)
    try:
        talk(proc.address, [b'ping'])
    finally:
        output = proc.stop()
    events = [json.loads(line) for line in output.splitlines()
              if line.startswith('{')]
    assert [e['event'] for e in events][0] == 'open'
    assert [e['event'] for e in events][-1] == 'close'
    assert events[1]['handler'] == 'dummy' and events[1]['bytes'] == 4


@pytest.mark.timeout(60)
@pytest.mark.parametrize('flush', [False, True])
def test_lines_are_written_while_running(vaurien_inproc, echo_server, tmp_path,
                                         flush):
    path = tmp_path / 'events.log'
    args = ['--event-log', str(path)] + (['--event-log-flush'] if flush
                                         else [])
    proc = vaurien_inproc(*args, backend=echo_server.address)
    with proc.connect() as sock:
        assert exchange(sock, b'ping') == b'ping'
        # Without --event-log-flush, within about a second.
        events = support.wait_until(
            lambda: [json.loads(line) for line in
                     path.read_text().splitlines()
                     if line.endswith('}')][:2] or None,
            what='the first lines of the event log')
        assert events[0]['event'] == 'open'


@pytest.mark.timeout(60)
def test_event_log_from_the_ini_file(vaurien_inproc, echo_server, tmp_path):
    path = tmp_path / 'events.log'
    config = tmp_path / 'vaurien.ini'
    config.write_text('[vaurien]\nevent_log = %s\nevent_log_flush = true\n'
                      % path)
    proc = vaurien_inproc('--config', str(config), backend=echo_server.address)
    talk(proc.address, [b'ping'])
    finish(proc)
    assert [e['event'] for e in read_events(path)][0] == 'open'


@pytest.mark.timeout(60)
def test_behavior_change_is_logged(vaurien_inproc, echo_server, tmp_path):
    from observe_support import HTTP_ARGS, http_port
    import http.client
    path = tmp_path / 'events.log'
    proc = vaurien_inproc(*HTTP_ARGS, '--event-log', str(path),
                          backend=echo_server.address)
    conn = http.client.HTTPConnection(support.HOST, http_port(proc),
                                      timeout=10)
    conn.request('POST', '/handler', body=b'blackout')
    assert conn.getresponse().status == 200
    conn.close()
    finish(proc)
    events = read_events(path)
    assert {'event': 'behavior', 'behavior': '100:blackout'}.items() <= \
        events[-1].items()


def assert_close_last(events):
    """Every line of a connection comes before its ``close`` line, and
    every connection opened has exactly one."""
    closed = set()
    for event in events:
        conn = event.get('conn')
        if conn is None:
            continue
        assert conn not in closed, 'line after the close of its ' \
            'connection: %r' % event
        if event['event'] == 'close':
            closed.add(conn)
    opened = {e['conn'] for e in events if e['event'] == 'open'}
    assert closed == opened


@pytest.mark.timeout(60)
@pytest.mark.parametrize('protocol', ['tcp', 'http'])
def test_close_is_the_last_line_of_its_connection(vaurien_inproc, http_server,
                                                  tmp_path, protocol):
    # blackout closes the connection from inside its own handler call; a
    # delay still sleeping on the other direction returns after the close.
    path = tmp_path / 'events.log'
    proc = vaurien_inproc('--event-log', str(path), '--event-log-flush',
                          '--protocol', protocol, '--seed', '5',
                          '--behavior', '50:blackout,50:delay',
                          '--handlers.delay.sleep', '0.05',
                          backend=http_server.address)
    for _ in range(12):
        with proc.connect() as sock:
            try:
                # Two requests, the backend closing after the second (so
                # that reading to the end does not wait out a timeout).
                sock.sendall(b'GET / HTTP/1.1\r\nHost: x\r\n\r\n'
                             b'GET / HTTP/1.1\r\nHost: x\r\n'
                             b'Connection: close\r\n\r\n')
                support.recv_all(sock)
            except OSError:
                pass
    wait_for_close(path, 12)
    finish(proc)
    events = read_events(path)
    assert_close_last(events)
    effects = {e['effect'] for e in events if e['event'] == 'data'}
    assert 'cut' in effects


@pytest.mark.timeout(60)
def test_an_end_of_stream_is_not_a_pick(vaurien_inproc, recorder, tmp_path):
    # delay holds each message the client sends; the client's close is no
    # message: it is passed on at once, not held (nor logged as a pick).
    from fault_support import read_exactly, wait_for
    import time
    path = tmp_path / 'events.log'
    proc = vaurien_inproc('--behavior', '100:delay',
                          '--handlers.delay.sleep', '2',
                          '--event-log', str(path), '--event-log-flush',
                          backend=recorder.address)
    with proc.connect() as sock:
        sock.sendall(b'hi')
        assert read_exactly(sock, 2) == b'hi'
        sock.shutdown(socket.SHUT_WR)
        closed = time.monotonic()
        wait_for(lambda: recorder.times and recorder.times[0]
                 and recorder.times[0][-1][1] == 'eof', timeout=20,
                 what='the backend to see the close')
        assert recorder.times[0][-1][0] - closed < 1.5
        assert support.recv_all(sock) == b''
    wait_for_close(path)
    finish(proc)
    data = [e for e in read_events(path) if e['event'] == 'data']
    assert [(e['direction'], e['effect'], e['bytes']) for e in data] == [
        ('upstream', 'delayed', 2), ('downstream', 'none', 2)]
