"""The ``transient`` handler: the first ``agitate`` answers fail."""
import pytest

from fault_support import ini_for, read_exactly, start_error


def ask(sock, payload):
    sock.sendall(payload)
    return read_exactly(sock, len(payload))


@pytest.mark.timeout(60)
def test_first_answers_fail_then_it_behaves(vaurien_inproc, echo_server):
    proxy = vaurien_inproc('--behavior', '100:transient',
                           '--handlers.transient.agitate', '2',
                           backend=echo_server.address)
    with proxy.connect() as sock:
        first = ask(sock, b'request-1')
        second = ask(sock, b'request-2')
        assert first != b'request-1' and second != b'request-2'
        for n in range(3, 8):
            payload = b'request-%d' % n
            assert ask(sock, payload) == payload


@pytest.mark.timeout(60)
def test_the_count_is_shared_by_connections(vaurien_inproc, echo_server):
    proxy = vaurien_inproc('--behavior', '100:transient',
                           '--handlers.transient.agitate', '2',
                           backend=echo_server.address)
    a, b, c = proxy.connect(), proxy.connect(), proxy.connect()
    try:
        assert ask(a, b'hello a') != b'hello a'
        assert ask(b, b'hello b') != b'hello b'
        # The "backend" has recovered, for everyone.
        assert ask(c, b'hello c') == b'hello c'
        assert ask(a, b'again a') == b'again a'
    finally:
        for sock in (a, b, c):
            sock.close()


@pytest.mark.timeout(60)
def test_requests_reach_the_backend_untouched(vaurien_inproc, hash_server):
    import socket

    import support
    proxy = vaurien_inproc('--behavior', '100:transient',
                           '--handlers.transient.agitate', '1',
                           backend=hash_server.address)
    with proxy.connect() as sock:
        sock.sendall(b'x' * 1000)
        sock.shutdown(socket.SHUT_WR)
        answer = support.recv_all(sock)
    expected = ('%s 1000\n' % support.sha256(b'x' * 1000)).encode()
    # The one answer was garbled; its length is kept.
    assert len(answer) == len(expected) and answer != expected


@pytest.mark.timeout(60)
def test_zero_agitate_fails_nothing(vaurien_inproc, echo_server):
    proxy = vaurien_inproc('--behavior', '100:transient',
                           '--handlers.transient.agitate', '0',
                           backend=echo_server.address)
    with proxy.connect() as sock:
        assert ask(sock, b'fine') == b'fine'


@pytest.mark.timeout(60)
def test_inject_keeps_the_data_around_the_noise(vaurien_inproc, echo_server):
    proxy = vaurien_inproc('--behavior', '100:transient',
                           '--handlers.transient.inject', 'true',
                           backend=echo_server.address)
    with proxy.connect() as sock:
        sock.sendall(b'0123456789')
        sock.settimeout(10)
        got = b''
        while len(got) <= 10:
            got += sock.recv(1024)
        assert got.startswith(b'01234') and got.endswith(b'56789')
        assert ask(sock, b'next') == b'next'


@pytest.mark.timeout(90)
def test_seed_replays_the_error_bytes(vaurien_inproc, echo_server):
    def garbled(seed):
        proxy = vaurien_inproc('--behavior', '100:transient',
                               '--handlers.transient.agitate', '1',
                               '--seed', str(seed),
                               backend=echo_server.address)
        with proxy.connect() as sock:
            return ask(sock, b'some request bytes')

    first = garbled(3)
    assert garbled(3) == first
    assert garbled(4) != first


@pytest.mark.parametrize('value', ['-1', '1.5', 'many'])
def test_bad_agitate_is_a_start_up_error(value):
    line = start_error('--behavior', '100:transient',
                       '--handlers.transient.agitate', value)
    assert "transient: option 'agitate'" in line


def test_warmup_is_not_an_option_here():
    line = start_error('--behavior', '100:transient',
                       '--handlers.transient.warmup', '1')
    assert "transient: unknown option 'warmup'" in line


def test_bad_agitate_in_ini():
    line = start_error(ini=ini_for('100:transient', 'transient',
                                   agitate='-2'))
    assert "transient: option 'agitate'" in line
