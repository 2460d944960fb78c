"""Failed client TLS handshakes are counted by reason (``Stats``, ``GET
/stats``, ``/metrics``, statsd, the event log, ``vaurienctl stats``).

Real clients fail for real: plain TCP on the TLS port, Python ``ssl``,
``curl`` and ``openssl s_client`` that do not trust the proxy's
certificate, a client without a certificate under ``--local-tls-ca``, one
that stays silent past ``--local-tls-timeout``, one that leaves in the
middle of its hello. A successful handshake counts nothing, and neither
does a handshake failed on purpose by ``tls_error`` (that is its effect).
"""
import shutil
import socket
import ssl
import subprocess

import pytest

import support
import tls_support
from control_support import api
from observe_support import HTTP_ARGS, UDPSink, finish, http_port, read_events
from test_metrics import parse, value
from vaurien.metrics import render_snapshot
from vaurien.report import read_report, text_report
from vaurien.stats import (HANDSHAKE_REASONS, Snapshot, Stats,
                           handshake_reason)
from vaurien.top import Reading, table

HOST = support.HOST
METRIC = 'vaurien_client_tls_handshake_failures_total'


@pytest.fixture(scope='module')
def pki(tmp_path_factory):
    return tls_support.make_pki(str(tmp_path_factory.mktemp('pki')))


def start(vaurien_inproc, pki, backend, *extra):
    return vaurien_inproc('--local-tls-cert', pki.cert, '--local-tls-key',
                          pki.key, *HTTP_ARGS, *extra, backend=backend)


def counts(proxy):
    """``{reason: count}`` from ``GET /stats``."""
    answer = api(http_port(proxy), 'GET', '/stats')
    assert answer.status == 200
    return answer.json['client_tls_failures']


def metrics(proxy):
    answer = api(http_port(proxy), 'GET', '/metrics')
    assert answer.status == 200
    return answer.text


def wait_count(proxy, reason, count):
    """Wait until ``GET /stats`` has *count* failures for *reason*, the
    other reasons at 0; check ``/metrics`` says the same."""
    expected = dict.fromkeys(HANDSHAKE_REASONS, 0)
    expected[reason] = count
    support.wait_until(lambda: counts(proxy) == expected or None,
                       what='%d %s failure(s), got %r'
                       % (count, reason, counts(proxy)))
    samples, _ = parse(metrics(proxy))
    for name in HANDSHAKE_REASONS:
        assert value(samples, METRIC, reason=name) == expected[name]


def run(*args, stdin=b''):
    if shutil.which(args[0]) is None:
        raise AssertionError('%s is needed (Debian: %s)' % (args[0], args[0]))
    return subprocess.run(list(args), input=stdin, capture_output=True,
                          timeout=30)


def echo_over_tls(pki, proxy, cert=False):
    raw = socket.create_connection(proxy.address, timeout=10)
    with tls_support.client_context(pki, cert).wrap_socket(
            raw, server_hostname='localhost') as sock:
        sock.sendall(b'ping')
        return sock.recv(10)


def echo_or_error(pki, proxy, cert=False):
    """What :func:`echo_over_tls` got back, or the exception it met."""
    try:
        return echo_over_tls(pki, proxy, cert)
    except OSError as exc:      # ssl.SSLError among them
        return exc


def test_reasons_of_exceptions():
    assert handshake_reason(socket.timeout('no TLS handshake')) == 'timeout'
    assert handshake_reason(ConnectionResetError()) == 'reset'
    assert handshake_reason(ssl.SSLEOFError()) == 'reset'
    assert handshake_reason(OSError('strange')) == 'other'
    assert set(HANDSHAKE_REASONS) == {'timeout', 'untrusted', 'certificate',
                                      'protocol', 'reset', 'other'}


def test_successful_handshakes_count_nothing(vaurien_inproc, echo_server,
                                             pki):
    proxy = start(vaurien_inproc, pki, echo_server.address)
    for _ in range(3):
        assert echo_over_tls(pki, proxy) == b'ping'
    done = run('curl', '-sS', '--max-time', '20', '--cacert', pki.ca,
               '-d', 'x', 'https://localhost:%d/' % proxy.port)
    # The echo server answers curl's request with itself: not HTTP, but
    # the handshake worked (curl fails later, on the answer).
    assert b'SSL' not in done.stderr, done.stderr
    assert counts(proxy) == dict.fromkeys(HANDSHAKE_REASONS, 0)
    samples, _ = parse(metrics(proxy))
    assert all(value(samples, METRIC, reason=r) == 0
               for r in HANDSHAKE_REASONS)


def test_not_tls_is_protocol(vaurien_inproc, echo_server, pki, tmp_path):
    events = tmp_path / 'events.jsonl'
    proxy = start(vaurien_inproc, pki, echo_server.address, '--event-log',
                  str(events), '--event-log-flush')
    with socket.create_connection(proxy.address, timeout=10) as sock:
        sock.sendall(b'GET / HTTP/1.1\r\nHost: x\r\n\r\n')
        try:    # an alert, then the end; or a reset
            assert b'HTTP' not in support.recv_all(sock)
        except ConnectionResetError:
            pass
    done = run('curl', '-sS', '--max-time', '20',
               'http://localhost:%d/' % proxy.port)
    assert done.returncode != 0
    wait_count(proxy, 'protocol', 2)
    support.wait_until(lambda: events.exists() and events.read_text().count(
        '"tls_failed"') == 2 or None, what='two tls_failed lines')
    failed = [e for e in read_events(str(events))
              if e['event'] == 'tls_failed']
    assert {e['reason'] for e in failed} == {'protocol'}
    assert all(e['message'].startswith('TLS: ') for e in failed), failed
    assert 'TLS handshake with client' in proxy.log()
    # The report tells them apart from backend failures.
    report = read_report(str(events))
    assert report.unknown == 0
    text = text_report(report, limit=5)
    assert 'TLS handshake failed: protocol (TLS: ' in text, text
    assert 'backend unreachable' not in text


def test_client_that_does_not_trust_the_proxy(vaurien_inproc, echo_server,
                                              pki):
    proxy = start(vaurien_inproc, pki, echo_server.address)
    # Python's ssl with the system's CAs only.
    raw = socket.create_connection(proxy.address, timeout=10)
    with pytest.raises(ssl.SSLCertVerificationError):
        ssl.create_default_context().wrap_socket(
            raw, server_hostname='localhost')
    raw.close()
    wait_count(proxy, 'untrusted', 1)
    # curl, the same.
    done = run('curl', '-sS', '--max-time', '20',
               'https://localhost:%d/' % proxy.port)
    assert done.returncode == 60, done.stderr    # peer certificate
    wait_count(proxy, 'untrusted', 2)
    # openssl s_client told to stop on a failed verification.
    done = run('openssl', 's_client', '-connect',
               '%s:%d' % (HOST, proxy.port), '-servername', 'localhost',
               '-verify_return_error', '-CAfile', pki.self_cert)
    assert done.returncode != 0
    wait_count(proxy, 'untrusted', 3)


def test_missing_client_certificate_under_mtls(vaurien_inproc, echo_server,
                                               pki):
    proxy = start(vaurien_inproc, pki, echo_server.address,
                  '--local-tls-ca', pki.ca)
    assert echo_over_tls(pki, proxy, cert=True) == b'ping'
    # TLS 1.3: the client finishes first and learns at its first read.
    assert echo_or_error(pki, proxy) != b'ping'
    done = run('curl', '-sS', '--max-time', '20', '--cacert', pki.ca,
               'https://localhost:%d/' % proxy.port)
    assert done.returncode != 0
    wait_count(proxy, 'certificate', 2)
    # A certificate from no CA the proxy knows.
    done = run('openssl', 's_client', '-connect',
               '%s:%d' % (HOST, proxy.port), '-servername', 'localhost',
               '-CAfile', pki.ca, '-cert', pki.self_cert, '-key',
               pki.self_key, stdin=b'hello\n')
    wait_count(proxy, 'certificate', 3)


def test_silence_is_timeout_and_leaving_is_reset(vaurien_inproc, echo_server,
                                                 pki):
    proxy = start(vaurien_inproc, pki, echo_server.address,
                  '--local-tls-timeout', '0.3')
    with socket.create_connection(proxy.address, timeout=10) as sock:
        assert sock.recv(100) == b''     # closed by the proxy
    wait_count(proxy, 'timeout', 1)
    # Half a client hello, then gone.
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = tls_support.client_context(pki).wrap_bio(
        incoming, outgoing, server_hostname='localhost')
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    hello = outgoing.read()
    with socket.create_connection(proxy.address, timeout=10) as sock:
        sock.sendall(hello[:len(hello) // 2])
    expected = dict.fromkeys(HANDSHAKE_REASONS, 0)
    expected.update(timeout=1, reset=1)
    support.wait_until(lambda: counts(proxy) == expected or None,
                       what='a reset, got %r' % counts(proxy))


@pytest.mark.parametrize('mode,effect', [('alert', 'errored'),
                                         ('abort', 'reset')])
def test_tls_error_is_a_fault_not_a_failure(vaurien_inproc, echo_server, pki,
                                            mode, effect):
    proxy = start(vaurien_inproc, pki, echo_server.address, '--behavior',
                  '100:tls_error', '--handlers.tls_error.mode', mode)
    for _ in range(3):
        assert echo_or_error(pki, proxy) != b'ping'
    support.wait_until(lambda: ['tls_error', effect, 3] in api(
        http_port(proxy), 'GET', '/stats').json['effects'] or None,
        what='three tls_error effects')
    assert counts(proxy) == dict.fromkeys(HANDSHAKE_REASONS, 0)


@pytest.mark.timeout(90)
def test_workers_add_up(vaurien, echo_server, pki):
    proxy = vaurien('--workers', '2', '--local-tls-cert', pki.cert,
                    '--local-tls-key', pki.key, *HTTP_ARGS,
                    backend=echo_server.address)
    for _ in range(6):
        with socket.create_connection(proxy.address, timeout=10) as sock:
            sock.sendall(b'PING\r\n')
    assert echo_over_tls(pki, proxy) == b'ping'
    wait_count(proxy, 'protocol', 6)


@pytest.mark.timeout(60)
def test_statsd_counter(vaurien_inproc, echo_server, pki):
    pytest.importorskip('statsd')
    sink = UDPSink()
    try:
        proxy = start(vaurien_inproc, pki, echo_server.address,
                      '--statsd.enabled', '--statsd.host', HOST,
                      '--statsd.port', str(sink.port))
        for _ in range(2):
            with socket.create_connection(proxy.address, timeout=10) as sock:
                sock.sendall(b'PING\r\n')
        wait_count(proxy, 'protocol', 2)
        finish(proxy)
        support.wait_until(lambda: sink.totals().get(
            'vaurien.client.tls_failures.protocol') == 2, timeout=10,
            what='the statsd counter')
        assert 'vaurien.client.tls_failures.timeout' not in sink.totals()
    finally:
        sink.close()


def test_merged_and_shown():
    stats = Stats()
    stats.client_tls_failed(socket.timeout('late'))
    stats.client_tls_failed(ConnectionResetError())
    part = {'opened': 2, 'closed': 2, 'open': 0, 'hung': 0, 'bytes_up': 0,
            'bytes_down': 0, 'picks': [], 'failures': {}, 'exceptions': {},
            'client_tls_failures': dict(stats.client_tls_failures),
            'behavior': '', 'effects': [], 'requests': [],
            'connections': {}, 'recent': []}
    merged = Snapshot.merged([part, part])
    assert merged.client_tls_failures['timeout'] == 2
    assert merged.client_tls_failures['reset'] == 2
    assert merged.to_json()['client_tls_failures']['protocol'] == 0
    text = render_snapshot(merged)
    assert '%s{reason="timeout"} 2' % METRIC in text
    assert 'failed client TLS handshakes 4' in table(Reading(text))
    assert 'TLS' not in table(Reading(render_snapshot(Snapshot.merged(
        [dict(part, client_tls_failures={})]))))
