"""docs/observability.rst stays true: its event log excerpt has the format
the proxy writes today (and is a real, replayable run), its metrics list is
the one /metrics serves, its command lines run.

``python tests/test_observability_docs.py`` prints a fresh excerpt, made
exactly as the one in the docs was (paste it between the markers).
"""
import json
import os
import re
import shlex
import socket
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.dirname(HERE), HERE]

import support  # noqa: E402
from observe_support import (UDPSink, finish, http_port,  # noqa: E402
                             read_events, talk)

DOC = os.path.join(support.ROOT, 'docs', 'observability.rst')

# The run the excerpt comes from.
SEED = 288
BEHAVIOR = '30:delay,10:error'
ARGS = ('--seed', str(SEED), '--behavior', BEHAVIOR,
        '--handlers.delay.sleep', '0.2')
REQUEST = b'GET / HTTP/1.1\r\nHost: backend\r\n\r\n'


def _doc():
    with open(DOC, encoding='utf-8') as fh:
        return fh.read()


def doc_excerpt():
    """The event log lines quoted in the docs, as dicts."""
    text = _doc()
    block = text.split('.. event-log-excerpt-start')[1].split(
        '.. event-log-excerpt-end')[0]
    return [json.loads(line.strip()) for line in block.splitlines()
            if line.strip().startswith('{')]


def _answer_size(address):
    with socket.create_connection(address, timeout=10) as sock:
        sock.sendall(REQUEST)
        data = b''
        while b'\r\n\r\n' not in data:
            data += sock.recv(65536)
        head, _, body = data.partition(b'\r\n\r\n')
        length = int(re.search(rb'Content-Length: (\d+)', head).group(1))
        return len(head) + 4 + length


def make_excerpt(vaurien_factory, path):
    """Run the documented scenario: an HTTP backend, two clients making two
    requests each through ``vaurien ARGS --event-log path``; the events."""
    server = support.HTTPServer()
    try:
        size = _answer_size(server.address)
        proc = vaurien_factory('--event-log', str(path), *ARGS,
                               backend=server.address)
        for _ in range(2):
            with proc.connect() as sock:
                for _ in range(2):
                    sock.sendall(REQUEST)
                    got = b''
                    while len(got) < size:
                        chunk = sock.recv(65536)
                        if not chunk:
                            break
                        got += chunk
        support.wait_until(lambda: path.exists() and path.read_text().count(
            '"event":"close"') >= 2 or None, what='two close lines')
        finish(proc)
    finally:
        server.close()
    return read_events(path)


def _shape(event):
    """The keys of *event* in order, with the JSON types of their values."""
    return [(key, type(value).__name__) for key, value in event.items()]


def _shapes(events):
    """``{(event kind, has seconds, has why): shape}``."""
    return {(e['event'], 'seconds' in e, 'why' in e): _shape(e)
            for e in events}


@pytest.mark.timeout(90)
def test_excerpt_has_the_format_of_a_real_log(vaurien_inproc, tmp_path):
    excerpt = doc_excerpt()
    assert len(excerpt) >= 8
    fresh = _shapes(make_excerpt(vaurien_inproc, tmp_path / 'events.log'))
    documented = _shapes(excerpt)
    assert documented.keys() <= fresh.keys()
    for kind, shape in documented.items():
        assert shape == fresh[kind], kind


def test_excerpt_is_a_real_seeded_run():
    # Every handler in the excerpt is the one the seeded picker gives to
    # that event: the excerpt was not written by hand.
    from test_events import expected_handlers
    excerpt = doc_excerpt()
    opens = [e for e in excerpt if e['event'] == 'open']
    assert opens and all(e['seed'] == SEED and e['behavior'] == BEHAVIOR
                         for e in opens)
    seen = {}
    for event in excerpt:
        if event['event'] != 'data':
            continue
        key = (event['conn'], event['direction'])
        seen.setdefault(key, []).append(event['handler'])
    assert seen
    for (conn, direction), handlers in seen.items():
        assert handlers == expected_handlers(
            SEED, BEHAVIOR, conn, direction == 'upstream', len(handlers))


def test_metrics_list_matches_the_code():
    from vaurien.metrics import METRICS
    text = _doc()
    documented = set(re.findall(r'``(vaurien_[a-z_]+)``', text))
    assert documented == set(METRICS)


def _commands(prefix):
    """The console commands of the docs starting with *prefix*."""
    text = _doc()
    commands = []
    for match in re.finditer(r'\n    \$ (%s.*?)(?=\n    \$|\n\n)'
                             % re.escape(prefix), text, re.S):
        commands.append(shlex.split(match.group(1).replace('\\\n', ' ')))
    return commands


def _replace(args, flag, value):
    if flag in args:
        args[args.index(flag) + 1] = value
    return args


@pytest.mark.timeout(90)
def test_statsd_example_runs(vaurien_inproc, echo_server):
    commands = [c for c in _commands('vaurien ') if '--statsd.enabled' in c]
    assert commands
    sink = UDPSink()
    try:
        for args in commands:
            args = args[1:]
            _replace(args, '--local', '127.0.0.1:0')
            _replace(args, '--distant', '%s:%d' % echo_server.address)
            _replace(args, '--statsd.host', support.HOST)
            _replace(args, '--statsd.port', str(sink.port))
            prefix = args[args.index('--statsd.prefix') + 1]
            proc = vaurien_inproc(*args)
            talk(proc.address, [b'hello'])
            finish(proc)
            assert sink.totals()['%s.connections.opened' % prefix] == 1
    finally:
        sink.close()


@pytest.mark.timeout(90)
def test_event_log_and_stats_examples_run(vaurien_inproc, echo_server,
                                          tmp_path):
    commands = [c for c in _commands('vaurien ') if '--event-log' in c]
    assert commands
    for args in commands:
        args = args[1:]
        _replace(args, '--local', '127.0.0.1:0')
        _replace(args, '--distant', '%s:%d' % echo_server.address)
        _replace(args, '--event-log', str(tmp_path / 'events.log'))
        _replace(args, '--http-port', '0')
        proc = vaurien_inproc(*args)
        talk(proc.address, [b'hello'], same=False)
        if '--http' in args:
            port = http_port(proc)
            for ctl in _commands('vaurienctl '):
                ctl = ctl[1:]
                _replace(ctl, '--host', 'http://127.0.0.1:%d' % port)
                if 'stats' in ctl and '--once' not in ctl:
                    ctl.append('--once')
                result = support.run_cli(*ctl, module='vaurien.ctl')
                assert result.returncode == 0, result.stderr
                assert 'connections' in result.stdout
        finish(proc)
        assert read_events(tmp_path / 'events.log')[0]['event'] == 'open'


def _blocks(language):
    """The ``.. code-block:: LANGUAGE`` blocks of the docs, dedented."""
    import textwrap
    text = _doc()
    blocks = []
    for match in re.finditer(r'\.\. code-block:: %s\n\n((?:    .*\n|\n)+)'
                             % language, text):
        blocks.append(textwrap.dedent(match.group(1)))
    return blocks


def test_effect_example_handlers():
    from vaurien.events import declared_effect
    (code,) = _blocks('python')
    namespace = {}
    exec(compile(code, DOC, 'exec'), namespace)
    throttle = namespace['Throttle']()
    scramble = namespace['Scramble']()
    assert declared_effect(throttle, 'throttle', True) == ('throttled', None)
    assert declared_effect(scramble, 'scramble', True) == \
        ('none', 'wrong direction')
    assert declared_effect(scramble, 'scramble', False) == ('errored', None)
    # Without a description: by name for the built-ins, else "handled".
    assert declared_effect(object(), 'hang', True) == ('hung', None)
    assert declared_effect(object(), 'mine', True) == ('handled', None)


def test_log_faults_example_has_the_format_of_the_log():
    from test_log_faults import LINE
    text = _doc()
    line = text.split('writes one\nINFO line')[1].split('::\n\n')[1] \
        .splitlines()[0].strip()
    assert LINE.search(line), line


def test_ini_example_is_read(tmp_path):
    from vaurien.config import read_ini
    (ini,) = _blocks('ini')
    path = tmp_path / 'statsd.ini'
    path.write_text(ini)
    settings = read_ini(str(path)).settings
    assert settings == {'statsd_enabled': True, 'statsd_host': 'localhost',
                        'statsd_port': 8125, 'statsd_prefix': 'myapp.chaos',
                        'statsd_sample_rate': 1.0}


def test_stats_example_is_what_vaurienctl_prints():
    # The table in the docs is the one vaurien.top prints for its figures.
    from vaurien.top import Reading, table
    text = _doc()
    shown = text.split('(rates appear from the second refresh on)::\n\n')[1]
    shown = '\n'.join(line[4:] for line in shown.split('\n\n\n')[0]
                      .splitlines()) + '\n'

    def reading(opened, up, down, picks, when, effects=None):
        lines = ['vaurien_connections_total %d' % opened,
                 'vaurien_connections_closed_total %d' % (opened - 2),
                 'vaurien_connections_open 2',
                 'vaurien_bytes_total{direction="upstream"} %d' % up,
                 'vaurien_bytes_total{direction="downstream"} %d' % down]
        for name, (u, d) in picks.items():
            for direction, count in (('upstream', u), ('downstream', d)):
                lines.append('vaurien_handler_picks_total{handler="%s",'
                             'direction="%s"} %d' % (name, direction, count))
        for (name, effect), count in (effects or {}).items():
            if name is None:
                lines.append('vaurien_connection_effects_total{effect="%s"} '
                             '%d' % (effect, count))
            else:
                lines.append('vaurien_handler_effects_total{handler="%s",'
                             'effect="%s"} %d' % (name, effect, count))
        return Reading('\n'.join(lines), when=when)
    before = reading(114, 1455000, 11650000, {
        'delay': (135, 132), 'dummy': (548, 553), 'error': (42, 38)}, 0)
    now = reading(118, 1467600, 11748300, {
        'delay': (142, 139), 'dummy': (566, 571), 'error': (45, 41)}, 1, {
        ('delay', 'delayed'): 142, ('delay', 'none'): 139,
        ('error', 'errored'): 41, ('error', 'none'): 45,
        (None, 'delayed'): 71, (None, 'errored'): 33, (None, 'passed'): 40})
    assert table(now, before, 'http://localhost:8081') == shown


if __name__ == '__main__':
    import tempfile
    import pathlib
    started = []

    def factory(*args, **kwargs):
        proc = support.VaurienProcess(*args, **kwargs)
        started.append(proc)
        return proc
    with tempfile.TemporaryDirectory() as tmp:
        events = make_excerpt(factory, pathlib.Path(tmp) / 'events.log')
        with open(pathlib.Path(tmp) / 'events.log') as fh:
            sys.stdout.write(fh.read())
    for proc in started:
        proc.stop()
