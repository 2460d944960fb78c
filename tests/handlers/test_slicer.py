"""The ``slicer`` handler: data cut into small pieces, nothing lost."""
import os
import socket
import time

import pytest

from fault_support import ini_for, read_to_end, start_error

AVERAGE, VARIATION, DELAY = 100, 50, 0.05


def sliced_echo(vaurien_inproc, echo_server, *extra):
    proxy = vaurien_inproc('--behavior', '100:slicer',
                           '--handlers.slicer.average_size', str(AVERAGE),
                           '--handlers.slicer.size_variation', str(VARIATION),
                           '--handlers.slicer.delay', str(DELAY),
                           '--handlers.slicer.direction', 'downstream',
                           *extra, backend=echo_server.address)
    return proxy


def echo_once(proxy, payload):
    with proxy.connect() as sock:
        start = time.monotonic()
        sock.sendall(payload)
        sock.shutdown(socket.SHUT_WR)
        data, how, stamps = read_to_end(sock, timeout=30)
    return data, how, start, stamps


@pytest.mark.timeout(60)
def test_slices_are_small_and_nothing_is_lost(vaurien_inproc, echo_server):
    proxy = sliced_echo(vaurien_inproc, echo_server)
    payload = os.urandom(2000)
    data, how, start, stamps = echo_once(proxy, payload)
    assert (data, how) == (payload, 'eof')
    sizes = [count for _, count in stamps]
    in_range = [s for s in sizes if AVERAGE - VARIATION <= s
                <= AVERAGE + VARIATION]
    # Readers may merge two slices when late, or get a short last one.
    assert len(sizes) >= 2000 // (AVERAGE + VARIATION)
    assert len(in_range) >= 0.7 * len(sizes), sizes
    # At least ceil(2000 / 150) slices, so at least 13 pauses... for the
    # part that was read at once; never less than a few.
    assert stamps[-1][0] - start >= 0.5


@pytest.mark.timeout(60)
def test_fixed_size_without_variation(vaurien_inproc, echo_server):
    proxy = vaurien_inproc('--behavior', '100:slicer',
                           '--handlers.slicer.average_size', '7',
                           '--handlers.slicer.size_variation', '0',
                           '--handlers.slicer.delay', '0.05',
                           '--handlers.slicer.direction', 'downstream',
                           backend=echo_server.address)
    payload = b'0123456789' * 7
    data, how, start, stamps = echo_once(proxy, payload)
    assert data == payload
    sizes = [count for _, count in stamps]
    assert sizes.count(7) >= 7, sizes
    assert stamps[-1][0] - start >= 9 * 0.05


@pytest.mark.timeout(90)
def test_seed_replays_the_slice_sizes(vaurien_inproc, echo_server):
    payload = os.urandom(1500)

    def boundaries(seed):
        proxy = sliced_echo(vaurien_inproc, echo_server, '--seed', str(seed))
        data, _, _, stamps = echo_once(proxy, payload)
        assert data == payload
        ends, total = set(), 0
        for _, count in stamps:
            total += count
            ends.add(total)
        return ends

    def overlap(a, b):
        return len(a & b) / len(a | b)

    first, again, other = boundaries(11), boundaries(11), boundaries(12)
    # Slice ends match from run to run with the same seed (a late reader
    # may merge two slices, hence not a strict equality)...
    assert overlap(first, again) >= 0.8, (sorted(first), sorted(again))
    # ... and differ with another seed.
    assert overlap(first, other) < overlap(first, again)


@pytest.mark.parametrize('option, value', [
    ('average_size', '0'), ('average_size', '-3'), ('average_size', '1.5'),
    ('size_variation', '-1'), ('delay', '-0.1'), ('delay', 'x')])
def test_bad_options_are_start_up_errors(option, value):
    line = start_error('--behavior', '100:slicer',
                       '--handlers.slicer.%s' % option, value)
    assert "slicer: option %r" % option in line


def test_bad_average_size_in_ini():
    line = start_error(ini=ini_for('100:slicer', 'slicer', average_size='0'))
    assert "slicer: option 'average_size'" in line
