"""The ``delay`` handler's ``jitter``: sleep +/- jitter, seeded."""
import concurrent.futures
import time

import pytest

from fault_support import ini_for, read_exactly, start_error


def round_trips(proxy, count):
    """The time each of *count* echo round trips took, in seconds."""
    times = []
    with proxy.connect(timeout=30) as sock:
        for n in range(count):
            payload = b'ping %d' % n
            start = time.monotonic()
            sock.sendall(payload)
            assert read_exactly(sock, len(payload), timeout=30) == payload
            times.append(time.monotonic() - start)
    return times


def jittery(vaurien_inproc, echo_server, sleep, jitter, seed):
    return vaurien_inproc('--behavior', '100:delay',
                          '--handlers.delay.sleep', str(sleep),
                          '--handlers.delay.jitter', str(jitter),
                          '--seed', str(seed), backend=echo_server.address)


@pytest.mark.timeout(60)
def test_delays_spread_within_sleep_plus_minus_jitter(vaurien_inproc,
                                                      echo_server):
    proxy = jittery(vaurien_inproc, echo_server, 0.4, 0.3, seed=1)
    times = round_trips(proxy, 8)
    assert all(t >= 0.1 for t in times), times
    assert all(t < 10 for t in times), times
    assert max(times) - min(times) >= 0.05, times


@pytest.mark.timeout(60)
def test_never_negative(vaurien_inproc, echo_server):
    proxy = jittery(vaurien_inproc, echo_server, 0.05, 1.0, seed=2)
    times = round_trips(proxy, 10)
    # About half the draws fall below 0 and become no delay at all.
    assert min(times) < 0.5, times
    assert max(times) >= 0.1, times


@pytest.mark.timeout(90)
def test_seed_replays_the_delays(vaurien_inproc, echo_server):
    proxies = [jittery(vaurien_inproc, echo_server, 0.5, 0.4, seed=seed)
               for seed in (9, 9, 10)]
    # The three proxies are timed side by side, each by its own thread.
    with concurrent.futures.ThreadPoolExecutor(len(proxies)) as pool:
        first, again, other = pool.map(lambda p: round_trips(p, 5), proxies)

    def distance(a, b):
        return max(abs(x - y) for x, y in zip(a, b))
    # Same seed: the same delays, give or take scheduling noise.
    assert distance(first, again) < 0.25, (first, again)
    assert distance(first, other) > distance(first, again), (first, other)


@pytest.mark.timeout(60)
def test_no_jitter_is_the_plain_delay(vaurien_inproc, echo_server):
    proxy = vaurien_inproc('--behavior', '100:delay',
                           '--handlers.delay.sleep', '0.3',
                           backend=echo_server.address)
    assert all(t >= 0.3 for t in round_trips(proxy, 3))


@pytest.mark.parametrize('option, value', [('jitter', '-1'),
                                           ('jitter', 'some'),
                                           ('sleep', '-1')])
def test_bad_values_are_start_up_errors(option, value):
    line = start_error('--behavior', '100:delay',
                       '--handlers.delay.%s' % option, value)
    assert "delay: option %r" % option in line


def test_bad_jitter_in_ini():
    line = start_error(ini=ini_for('100:delay', 'delay', jitter='-0.5'))
    assert "delay: option 'jitter'" in line
