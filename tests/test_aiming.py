"""Aiming: the ``direction`` option of every handler, and ``--pick``.

Built-in handlers and user handlers (a class and a plain callable, named
by dotted path or in a ``[handler:NAME]`` section) are all aimed the same
way, without declaring anything.
"""
import os

import pytest

from fault_support import read_exactly, read_to_end, \
    start_error, wait_for

USER_MODULE = '''
"""User handlers for the aiming tests: they swap the case of the data."""
from vaurien.handlers import BaseHandler


class Swap(BaseHandler):
    """Swaps the case of every letter passing through."""
    name = 'swap'
    options = {}

    def __call__(self, client_sock, backend_sock, to_backend):
        data = self._get_data(client_sock, backend_sock, to_backend)
        if data:
            self._forward(client_sock, backend_sock, to_backend,
                          data.swapcase())
        return bool(data)


def swap(client_sock, backend_sock, to_backend):
    """The same as a plain callable, reading the sockets itself."""
    source, dest = ((client_sock, backend_sock) if to_backend
                    else (backend_sock, client_sock))
    data = source.recv(65536)
    if data:
        dest.sendall(data.swapcase())
    return bool(data)
'''


@pytest.fixture
def user_dir(tmp_path):
    (tmp_path / 'swaps.py').write_text(USER_MODULE)
    return tmp_path


def exchange(proxy, recorder, payload=b'abc'):
    """(what the backend got, what the client got back)."""
    with proxy.connect() as sock:
        sock.sendall(payload)
        back = read_exactly(sock, len(payload))
    wait_for(lambda: recorder.received and
             len(recorder.received[-1]) == len(payload),
             what='the backend to receive')
    return bytes(recorder.received[-1]), back


# What (backend, client) see for b'abc' through a case swapper aimed so.
SWAPPED = {
    'both': (b'ABC', b'abc'),
    'upstream': (b'ABC', b'ABC'),
    'downstream': (b'abc', b'ABC'),
}


def write_ini(user_dir, behavior, section, **keys):
    lines = ['[vaurien]', 'behavior = %s' % behavior, '',
             '[handler:%s]' % section]
    lines += ['%s = %s' % item for item in keys.items()]
    path = user_dir / 'aim.ini'
    path.write_text('\n'.join(lines) + '\n')
    return str(path)


@pytest.mark.timeout(60)
@pytest.mark.parametrize('direction', ['both', 'upstream', 'downstream'])
@pytest.mark.parametrize('target', ['swaps.Swap', 'swaps:swap'])
def test_user_handler_by_dotted_path(vaurien_inproc, recorder, user_dir,
                                     target, direction):
    args = ['--behavior', '100:%s' % target]
    if direction != 'both':
        args += ['--handlers.%s.direction' % target, direction]
    proxy = vaurien_inproc(*args, backend=recorder.address,
                           extra_paths=[str(user_dir)])
    assert exchange(proxy, recorder) == SWAPPED[direction]


@pytest.mark.timeout(60)
@pytest.mark.parametrize('direction', ['upstream', 'downstream'])
@pytest.mark.parametrize('target', ['swaps.Swap', 'swaps.swap'])
def test_user_handler_in_ini(vaurien_inproc, recorder, user_dir, target,
                             direction):
    ini = write_ini(user_dir, '100:flip', 'flip', callable=target,
                    direction=direction)
    proxy = vaurien_inproc('--config', ini, backend=recorder.address,
                           extra_paths=[str(user_dir)])
    assert exchange(proxy, recorder) == SWAPPED[direction]


@pytest.mark.timeout(60)
def test_command_line_direction_wins_over_ini(vaurien_inproc, recorder,
                                              user_dir):
    ini = write_ini(user_dir, '100:flip', 'flip', callable='swaps.Swap',
                    direction='upstream')
    proxy = vaurien_inproc('--config', ini, '--handlers.flip.direction',
                           'downstream', backend=recorder.address,
                           extra_paths=[str(user_dir)])
    assert exchange(proxy, recorder) == SWAPPED['downstream']


@pytest.mark.timeout(60)
@pytest.mark.parametrize('direction', ['upstream', 'downstream'])
def test_builtin_handler_aimed(vaurien_inproc, recorder, direction):
    proxy = vaurien_inproc('--behavior', '100:corrupt',
                           '--handlers.corrupt.rate', '1',
                           '--handlers.corrupt.direction', direction,
                           backend=recorder.address)
    payload = os.urandom(1000)
    backend_got, client_got = exchange(proxy, recorder, payload)
    if direction == 'upstream':
        assert backend_got != payload and client_got == backend_got
    else:
        assert backend_got == payload and client_got != payload


@pytest.mark.timeout(60)
def test_builtin_handler_aimed_in_ini(vaurien_inproc, recorder, tmp_path):
    ini = write_ini(tmp_path, '100:reset_peer', 'reset_peer',
                    direction='downstream')
    proxy = vaurien_inproc('--config', ini, backend=recorder.address)
    with proxy.connect() as sock:
        sock.sendall(b'hello')
        assert read_to_end(sock)[:2] == (b'', 'reset')
    # Aimed at the answers: the request itself went through.
    wait_for(lambda: recorder.total() == 5, what='the request')


@pytest.mark.parametrize('target', ['delay', 'swaps.Swap', 'swaps.swap'])
def test_bad_direction_is_a_start_up_error(user_dir, target):
    import support
    result = support.run_cli(
        '--local', '127.0.0.1:0', '--distant', '127.0.0.1:1',
        '--behavior', '100:%s' % target,
        '--handlers.%s.direction' % target, 'sideways',
        cwd=str(user_dir), extra_paths=[str(user_dir)])
    assert result.returncode == 2, result.stderr
    line = result.stderr.strip()
    assert line.startswith('vaurien: error: ') and '\n' not in line
    assert "option 'direction'" in line and 'sideways' in line


def test_bad_direction_in_ini(tmp_path):
    line = start_error(ini='[vaurien]\nbehavior = 100:abort\n\n'
                           '[handler:abort]\ndirection = both-ways\n')
    assert "abort: option 'direction'" in line


# -- --pick ---------------------------------------------------------------

def swapped_per_connection(proxy, connections=16, requests=4):
    """For each connection, the list of "was this answer swapped?"."""
    result = []
    for n in range(connections):
        with proxy.connect() as sock:
            marks = []
            for _ in range(requests):
                sock.sendall(b'abc')
                marks.append(read_exactly(sock, 3) == b'ABC')
            result.append(marks)
    return result


def half_swapping(factory, echo_server, user_dir, pick):
    return factory('--behavior', '50:swaps.Swap',
                   '--handlers.swaps.Swap.direction', 'upstream',
                   '--pick', pick, '--seed', '4',
                   backend=echo_server.address, extra_paths=[str(user_dir)])


@pytest.mark.timeout(90)
def test_pick_per_connection_keeps_the_pick(vaurien_inproc, echo_server,
                                            user_dir):
    proxy = half_swapping(vaurien_inproc, echo_server, user_dir, 'connection')
    marks = swapped_per_connection(proxy)
    # Every connection is either all swapped or all untouched...
    assert all(len(set(m)) == 1 for m in marks), marks
    # ... and both kinds occur.
    assert {m[0] for m in marks} == {True, False}, marks


@pytest.mark.timeout(90)
def test_pick_per_event_mixes_within_a_connection(vaurien_inproc,
                                                  echo_server, user_dir):
    proxy = half_swapping(vaurien_inproc, echo_server, user_dir, 'event')
    marks = swapped_per_connection(proxy)
    assert any(len(set(m)) == 2 for m in marks), marks


@pytest.mark.timeout(90)
def test_share_of_connections_reset(vaurien_inproc, echo_server):
    """"20% of connections fail": per connection, not per event."""
    proxy = vaurien_inproc('--behavior', '20:abort', '--pick', 'connection',
                           '--seed', '1', backend=echo_server.address)
    failed = 0
    total = 40
    for _ in range(total):
        with proxy.connect() as sock:
            outcomes = []
            for _ in range(3):
                try:
                    sock.sendall(b'ping')
                    data, how, _ = read_to_end(sock, limit=4)
                    assert how != 'limit' or data == b'ping'
                except (ConnectionResetError, BrokenPipeError):
                    how = 'reset'
                outcomes.append(how)
                if how != 'limit':
                    break
        if outcomes[0] == 'reset':
            failed += 1
        else:
            assert outcomes == ['limit'] * 3, outcomes
    assert 2 <= failed <= 16, failed


@pytest.mark.timeout(90)
def test_pick_connection_with_builtin_aimed(vaurien_inproc, recorder):
    """A per-connection pick still honours the handler's direction."""
    proxy = vaurien_inproc('--behavior', '100:corrupt', '--pick', 'connection',
                           '--handlers.corrupt.rate', '1',
                           '--handlers.corrupt.direction', 'downstream',
                           backend=recorder.address)
    payload = os.urandom(100)
    backend_got, client_got = exchange(proxy, recorder, payload)
    assert backend_got == payload and client_got != payload


def test_bad_pick_is_a_start_up_error():
    line = start_error('--pick', 'sometimes')
    assert '--pick' in line
