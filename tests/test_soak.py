"""The soak suite's probes at a small scale: seconds, not minutes.

Each probe (``benchmarks/soak.py``) runs the real ``vaurien`` against real
loopback backends; here its load is shrunk and its limit loosened to an
order of magnitude (the full run, ``python -m benchmarks soak``, measures
the figures of docs/reliability.rst against the real limits).
"""
import smtplib

import pymysql
import pytest

from benchmarks import soak

SCALE = 0.01

# The probes load the machine: one at a time, in one xdist worker.
pytestmark = pytest.mark.xdist_group('soak')


@pytest.mark.parametrize('mode', ['tcp', 'http', 'redis', 'mysql', 'smtp'])
def test_fairness_small_clients_keep_going_beside_a_full_speed_upload(mode):
    [result] = soak.fairness(SCALE, modes=(mode,))
    assert not result.detail['raw'], result.figure
    assert result.detail['requests'] > 100, result.figure
    assert result.detail['p50_ms'] < 100, result.figure


@pytest.mark.parametrize('protocol', ['http', 'redis', 'memcache', 'smtp',
                                      'mysql'])
def test_a_64_mib_message_through_delay_takes_bounded_memory(protocol):
    [result] = soak.big_messages(1 / 16, protocols=(protocol,))
    assert 'byte count exact' in result.figure
    assert not result.detail['raw'], result.figure
    # The whole message held once (and copied once) would be 128 MiB.
    assert result.detail['rss_mib'] <= 32, result.figure


def test_the_fake_mysql_backend_is_understood_by_a_real_driver():
    backend = soak.Backend('mysql')
    try:
        conn = pymysql.connect(host=soak.HOST, port=backend.port, user='soak',
                               password='', connect_timeout=10,
                               read_timeout=30, write_timeout=30,
                               max_allowed_packet=1 << 26)
        try:
            conn.ping(reconnect=False)
            cursor = conn.cursor()
            before = cursor.execute('SELECT 1')
            # 20 MiB: two packets of 0xFFFFFF bytes and a shorter one.
            query = 'SELECT ' + 'x' * (20 << 20)
            after = cursor.execute(query)
        finally:
            conn.close()
    finally:
        backend.stop()
    # The OK to a query counts every byte the connection sent: the second
    # query's packets are exactly the difference.
    payload = 1 + len(query)
    assert after - before == payload + 4 * (payload // 0xFFFFFF + 1)


def test_the_fake_smtp_backend_is_understood_by_a_real_client():
    backend = soak.Backend('smtp')
    try:
        client = smtplib.SMTP(soak.HOST, backend.port, timeout=10)
        try:
            assert client.ehlo()[0] == 250
            assert client.has_extn('chunking')
            assert client.noop() == (250, b'2.0.0 OK')
            client.send(b'BDAT 5\r\nhelloBDAT 3 LAST\r\nbye')
            assert client.getreply() == (250, b'2.0.0 5 octets received')
            assert client.getreply() == (250, b'2.0.0 3 octets received')
        finally:
            assert client.quit()[0] == 221
    finally:
        backend.stop()


@pytest.mark.parametrize('protocol', ['tcp', 'http', 'redis'])
def test_a_backend_that_does_not_read_stalls_the_client(protocol):
    [result] = soak.back_pressure(0.2, protocols=(protocol,))
    assert result.detail['pushed_mib'] <= 64, result.figure
    assert result.detail['rss_mib'] <= 32, result.figure


def test_short_connections_leave_no_descriptor_behind():
    for result in soak.churn(SCALE):
        assert result.ok, result.figure


def test_concurrent_transfers_are_byte_exact():
    [result] = soak.transfers(SCALE)
    assert result.ok, result.figure


def test_out_of_descriptors_is_a_warning_not_a_traceback():
    auto, forced = soak.exhaustion(SCALE)
    assert auto.ok, auto.figure
    assert forced.ok, forced.figure


def test_sigterm_drains_then_resets():
    [result] = soak.drain(SCALE)
    assert result.ok, result.figure


def test_the_table_for_the_docs():
    results = [soak.Result('p', 'f', 'l', True), soak.Result('q', 'g', 'm',
                                                             False)]
    text = soak.rst_table(results, 'Measured now.')
    assert text.startswith('Measured now.\n\n')
    assert '**no**' in text and 'yes' in text


def test_fuzzing_the_api_while_relaying():
    [result] = soak.api_fuzz(0.02)
    assert result.detail['5xx'] == 0 and result.detail['hangs'] == 0, \
        result.figure
    assert ' 0 ERROR lines, 0 tracebacks' in result.figure, result.figure


def test_slowloris_clients_do_not_hold_the_api():
    [result] = soak.slowloris(0.1)
    assert result.ok, result.figure


def test_workers_killed_and_paused():
    for result in soak.workers(0.2):
        assert result.ok, (result.probe, result.figure)
