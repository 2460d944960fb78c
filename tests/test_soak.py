"""The soak suite's probes at a small scale: seconds, not minutes.

Each probe (``benchmarks/soak.py``) runs the real ``vaurien`` against real
loopback backends; here its load is shrunk and its limit loosened to an
order of magnitude (the full run, ``python -m benchmarks soak``, measures
the figures of docs/reliability.rst against the real limits).
"""
import pytest

from benchmarks import soak

SCALE = 0.01

# The probes load the machine: one at a time, in one xdist worker.
pytestmark = pytest.mark.xdist_group('soak')


def test_fairness_small_clients_keep_going_beside_a_full_speed_upload():
    for result in soak.fairness(SCALE, modes=('tcp', 'http', 'redis')):
        assert result.detail['requests'] > 100, result.figure
        assert result.detail['p50_ms'] < 100, result.figure


@pytest.mark.parametrize('protocol', ['http', 'redis', 'memcache', 'smtp'])
def test_a_64_mib_message_through_delay_takes_bounded_memory(protocol):
    [result] = soak.big_messages(1 / 16, protocols=(protocol,))
    assert 'byte count exact' in result.figure
    # The whole message held once (and copied once) would be 128 MiB.
    assert result.detail['rss_mib'] <= 32, result.figure


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
