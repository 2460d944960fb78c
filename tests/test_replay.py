"""``--seed`` replays the picks and the random choices of every handler.

The handler-specific replays (jitter, slice sizes, corrupted bits, error
bytes of ``transient``) are in tests/handlers/; here: the picks themselves
and the ``error`` handler's bytes, through a real proxy each time.
"""
import pytest

from fault_support import read_exactly


def answers(start, backend, seed, behavior, count=20):
    proxy = start('--behavior', behavior, '--seed', str(seed),
                  backend=backend)
    result = []
    with proxy.connect() as sock:
        for n in range(count):
            payload = b'request %02d' % n
            sock.sendall(payload)
            result.append(read_exactly(sock, len(payload)))
    return result


@pytest.mark.timeout(90)
def test_error_bytes_and_picks_are_replayed(vaurien_inproc, echo_server):
    first = answers(vaurien_inproc, echo_server.address, 21, '40:error')
    expected = [b'request %02d' % n for n in range(20)]
    # Some answers were replaced, some were not...
    assert first != expected
    assert any(a == e for a, e in zip(first, expected))
    # ... and the same ones, with the same bytes, on a replay.
    assert answers(vaurien_inproc, echo_server.address, 21,
                   '40:error') == first
    assert answers(vaurien_inproc, echo_server.address, 22,
                   '40:error') != first
