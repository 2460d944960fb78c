"""statsd counters, received by a real UDP listener."""
import socket

import pytest

import support
from observe_support import UDPSink, finish, talk

pytest.importorskip('statsd')

MESSAGES = [b'x' * 100, b'y' * 23]


@pytest.fixture
def sink():
    listener = UDPSink()
    yield listener
    listener.close()


def statsd_args(sink, *more):
    return ('--statsd.enabled', '--statsd.host', support.HOST,
            '--statsd.port', str(sink.port)) + more


def arrived(sink, name, value):
    """The sink's totals once *name* has reached *value*: the last push,
    made as the proxy stops, is read by the sink's thread a moment later."""
    support.wait_until(lambda: sink.totals().get(name) == value,
                       timeout=10, what='%s to reach %s' % (name, value))
    return sink.totals()


@pytest.mark.timeout(90)
def test_counters_reach_a_real_udp_listener(vaurien_inproc, echo_server, sink):
    proc = vaurien_inproc(*statsd_args(sink, '--statsd.prefix', 'chaos'),
                          '--behavior', '50:delay', '--handlers.delay.sleep',
                          '0',
                          '--seed', '11', backend=echo_server.address)
    sent = talk(proc.address, MESSAGES, connections=3)
    # Pushed about once a second while running, without stopping it.
    support.wait_until(
        lambda: sink.totals().get('chaos.connections.closed') == 3,
        timeout=20, what='chaos.connections.closed to reach 3')
    totals = sink.totals()
    assert totals['chaos.connections.opened'] == 3
    assert totals['chaos.bytes.up'] == sent
    assert totals['chaos.bytes.down'] == sent
    picks = totals.get('chaos.handler.delay', 0) + \
        totals.get('chaos.handler.dummy', 0)
    assert picks == 3 * 2 * len(MESSAGES)     # the ends of stream: none
    # Each connection met delay's fault, or none.
    assert totals.get('chaos.connections.effect.delayed', 0) + \
        totals.get('chaos.connections.effect.passed', 0) == 3
    assert totals.get('chaos.connections.effect.delayed', 0) > 0
    assert all(line.startswith('chaos.') for line in sink.lines())
    assert 'chaos.connections.open:0|g' in sink.lines()
    # Counters are sent as increments: nothing is counted twice.
    talk(proc.address, MESSAGES)
    finish(proc)      # the last push happens on the way out
    totals = arrived(sink, 'chaos.connections.opened', 4)
    assert totals['chaos.bytes.up'] == sent + sum(map(len, MESSAGES))


@pytest.mark.timeout(60)
def test_backend_failures_are_counted(vaurien_inproc, sink):
    with support.reserved_port() as closed:
        proc = vaurien_inproc(*statsd_args(sink), backend=(support.HOST,
                              closed))
        for _ in range(2):
            with proc.connect() as sock:
                assert support.recv_all(sock) == b''
        finish(proc)
    totals = arrived(sink, 'vaurien.backend.failures.refused', 2)
    assert totals['vaurien.connections.closed'] == 2


@pytest.mark.timeout(60)
def test_sample_rate_is_sent(vaurien_inproc, echo_server, sink):
    proc = vaurien_inproc(*statsd_args(sink, '--statsd.sample_rate', '0.5'),
                          backend=echo_server.address)

    def counted():
        # Sampling drops some updates at random: keep the traffic going
        # until some got through.
        talk(proc.address, MESSAGES)
        return [line for line in sink.lines() if '|c' in line]
    support.wait_until(counted, timeout=30, interval=0.2,
                       what='sampled counters')
    finish(proc)
    counters = [line for line in sink.lines() if '|c' in line]
    assert all(line.endswith('|c|@0.5') for line in counters)


@pytest.mark.timeout(60)
def test_statsd_from_the_ini_file(vaurien_inproc, echo_server, sink, tmp_path):
    config = tmp_path / 'vaurien.ini'
    config.write_text('[statsd]\nenabled = true\nhost = %s\nport = %d\n'
                      'prefix = fromini\n' % (support.HOST, sink.port))
    proc = vaurien_inproc('--config', str(config), backend=echo_server.address)
    talk(proc.address, MESSAGES)
    finish(proc)
    arrived(sink, 'fromini.connections.opened', 1)


@pytest.mark.timeout(60)
def test_unreachable_statsd_does_not_matter(vaurien_inproc, echo_server):
    # Nothing listens on this UDP port: every push is refused by the
    # kernel (ICMP), and the traffic does not care.
    with support.reserved_port(kind=socket.SOCK_DGRAM) as port:
        proc = vaurien_inproc('--statsd.enabled', 'yes', '--statsd.host',
                              support.HOST, '--statsd.port', str(port),
                              backend=echo_server.address)
        for _ in range(3):
            talk(proc.address, MESSAGES, connections=3)
        log = finish(proc)
    assert 'Traceback' not in log


def test_statsd_without_the_extra_is_a_startup_error(echo_server, tmp_path):
    # Simulate "pip install vaurien" without [statsd]: a directory put first
    # on PYTHONPATH holds a statsd.py that raises ImportError, exactly what
    # Python raises when the package is not installed at all.
    shadow = tmp_path / 'shadow'
    shadow.mkdir()
    (shadow / 'statsd.py').write_text(
        'raise ImportError("No module named \'statsd\'")\n')
    result = support.run_cli('--local', '127.0.0.1:0', '--distant',
                             '%s:%d' % echo_server.address,
                             '--statsd.enabled', extra_paths=[str(shadow)])
    assert result.returncode == 2
    assert result.stderr == ('vaurien: error: --statsd.enabled needs the '
                             'statsd package: pip install statsd\n')


@pytest.mark.parametrize('args, message', [
    (('--statsd.sample_rate', '0'),
     '--statsd.sample_rate expects a number above 0 and at most 1, '
     "got '0'"),
    (('--statsd.port', '70000'),
     "--statsd.port expects a port number from 1 to 65535, got '70000'"),
    (('--statsd.enabled', 'maybe'),
     '--statsd.enabled expects a boolean (yes/no, true/false, on/off, 1/0), '
     "got 'maybe'"),
])
def test_bad_statsd_settings(args, message):
    result = support.run_cli('--local', '127.0.0.1:0', *args)
    assert result.returncode == 2
    assert result.stderr == 'vaurien: error: %s\n' % message


@pytest.mark.timeout(60)
def test_statsd_host_that_cannot_be_resolved(echo_server):
    result = support.run_cli('--local', '127.0.0.1:0', '--distant',
                             '%s:%d' % echo_server.address,
                             '--statsd.enabled', '--statsd.host',
                             'no-such-host.invalid', timeout=50)
    assert result.returncode == 2
    assert result.stderr.startswith(
        'vaurien: error: cannot send to statsd at no-such-host.invalid:8125 '
        '(--statsd.host): ')
    assert len(result.stderr.splitlines()) == 1
