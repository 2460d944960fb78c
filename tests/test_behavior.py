"""The behavior (vaurien/behavior.py): weights, the remainder, seeded picks."""
import math
import re

import pytest

from vaurien.behavior import (PASS, Behavior, connection_random,
                              direction_random)

import support


def binomial_bounds(n, p, sigmas=5):
    """A generous interval for the count of successes of n trials."""
    mean = n * p
    spread = sigmas * math.sqrt(n * p * (1 - p))
    return mean - spread, mean + spread


def counts(behavior, rng, n, to_backend=True):
    result = {}
    for _ in range(n):
        name, _ = behavior.pick(rng, to_backend)
        result[name] = result.get(name, 0) + 1
    return result


def test_weights_honoured():
    error, delay = object(), object()
    behavior = Behavior([(30, 'error', error), (20, 'delay', delay)])
    n = 4000
    got = counts(behavior, direction_random(12345, 1, True), n)
    for name, p in (('error', .3), ('delay', .2), ('dummy', .5)):
        low, high = binomial_bounds(n, p)
        assert low <= got[name] <= high, (name, got)


def test_remainder_goes_to_dummy():
    handler = object()
    behavior = Behavior([(30, 'error', handler)])
    assert behavior.handler_names() == ('error', 'dummy')
    assert behavior.pair(1, True) == ('dummy', PASS)
    assert behavior.text == '30:error'
    full = Behavior([(60, 'error', handler), (40, 'delay', handler)])
    assert full.handler_names() == ('error', 'delay')
    assert Behavior([]).handler_names() == ('dummy',)


def test_zero_percent_never_picked():
    behavior = Behavior([(0, 'error', object()), (50, 'delay', object())])
    got = counts(behavior, direction_random(1, 1, False), 2000, False)
    assert 'error' not in got
    assert set(got) == {'delay', 'dummy'}
    assert behavior.text == '0:error,50:delay'


def test_single_handler_needs_no_draw():
    handler = object()
    behavior = Behavior([(100, 'error', handler)])
    assert behavior.single_index == 0
    assert behavior.index(None) == 0       # no generator is even needed
    assert behavior.pick(None) == ('error', handler)


def test_direction_aims_a_handler():
    up, down = object(), object()
    behavior = Behavior([(50, 'up', up, 'upstream'),
                         (50, 'down', down, 'downstream')])
    assert behavior.pair(0, True) == ('up', up)
    assert behavior.pair(0, False) == ('up', PASS)
    assert behavior.pair(1, True) == ('down', PASS)
    assert behavior.pair(1, False) == ('down', down)
    with pytest.raises(ValueError):
        Behavior([(50, 'x', up, 'sideways')])


def test_seeded_generators():
    def draws(rng):
        return [rng.random() for _ in range(20)]
    assert draws(direction_random(7, 3, True)) == \
        draws(direction_random(7, 3, True))
    assert draws(direction_random(7, 3, True)) != \
        draws(direction_random(7, 3, False))
    assert draws(direction_random(7, 3, True)) != \
        draws(direction_random(7, 4, True))
    assert draws(direction_random(7, 3, True)) != \
        draws(direction_random(8, 3, True))
    assert draws(connection_random(7, 3)) == draws(connection_random(7, 3))


def test_picks_per_connection_whatever_the_interleaving():
    """Connection k sees the same picks however connections interleave."""
    behavior = Behavior([(30, 'error', object()), (30, 'delay', object())])

    def run(order):
        rngs = {seq: direction_random(99, seq, True) for seq in (1, 2, 3)}
        seen = {seq: [] for seq in rngs}
        for seq in order:
            seen[seq].append(behavior.pick(rngs[seq])[0])
        return seen

    assert run([1, 2, 3] * 50) == run([3] * 50 + [1, 2] * 50) \
        == run([2] * 50 + [3, 1] * 50)


# -- end to end ----------------------------------------------------------------------

def _lockstep(sock, count, size=64, tag=b''):
    """count round trips of *size* bytes; True for each corrupted answer."""
    result = []
    for i in range(count):
        message = (tag + b'%05d' % i).ljust(size, b'.')
        sock.sendall(message)
        got = support.recv_exact(sock, size)
        assert len(got) == size
        result.append(got != message)
    return result


@pytest.mark.timeout(60)
def test_weights_end_to_end(vaurien_inproc, echo_server):
    proxy = vaurien_inproc('--behavior', '30:error',
                           backend=echo_server.address)
    n = 500
    with proxy.connect() as sock:
        corrupted = sum(_lockstep(sock, n))
    low, high = binomial_bounds(n, 0.3)
    assert low <= corrupted <= high


def _seeded_run(vaurien_inproc, backend, seed, order):
    """Open 3 connections in order, then talk on them in *order*; returns
    {connection number: [answers]}."""
    proxy = vaurien_inproc('--behavior', '50:error', '--seed', str(seed),
                           backend=backend)
    socks = {}
    answers = {}
    try:
        for k in (1, 2, 3):
            socks[k] = proxy.connect()
            # one round trip each, so that accept order is connection order
            answers[k] = [_answer(socks[k], k, 0)]
        counters = {1: 1, 2: 1, 3: 1}
        for k in order:
            answers[k].append(_answer(socks[k], k, counters[k]))
            counters[k] += 1
    finally:
        for sock in socks.values():
            sock.close()
    assert 'seed %d (replay with --seed %d)' % (seed, seed) in proxy.log()
    return answers


def _message(k, i):
    return (b'conn %d msg %d ' % (k, i)).ljust(48, b'-')


def _answer(sock, k, i):
    message = _message(k, i)
    sock.sendall(message)
    return support.recv_exact(sock, len(message))


@pytest.mark.timeout(60)
def test_seed_reproducible_end_to_end(vaurien_inproc, echo_server):
    """Same seed: each connection gets the same bytes (which messages were
    errored, with which random bytes), whatever the interleaving."""
    first = _seeded_run(vaurien_inproc, echo_server.address, 4242,
                        [1, 2, 3] * 12)
    second = _seeded_run(vaurien_inproc, echo_server.address, 4242,
                         [3] * 12 + [2, 1] * 12)
    assert first == second
    errored = [answer != _message(k, i) for k, answers in first.items()
               for i, answer in enumerate(answers)]
    # 39 events at 50 %: not all clean, not all errored
    assert 0 < sum(errored) < len(errored)
    other = _seeded_run(vaurien_inproc, echo_server.address, 4243,
                        [1, 2, 3] * 12)
    assert other != first


def test_random_seed_is_logged(vaurien_inproc, echo_server):
    proxy = vaurien_inproc(backend=echo_server.address)
    match = re.search(r'seed (\d+) \(replay with --seed (\d+)\)', proxy.log())
    assert match and match.group(1) == match.group(2)


def test_spaces_allowed(vaurien_inproc, echo_server):
    proxy = vaurien_inproc('--behavior', ' 30 : error ,  20:delay ',
                           '--handlers.delay.sleep', '0',
                           backend=echo_server.address)
    assert 'behavior 30:error,20:delay,' in proxy.log()
    with proxy.connect() as sock:
        sock.sendall(b'x')
        assert len(support.recv_exact(sock, 1)) == 1
