"""The engine's limits: --max-connections, --idle-timeout, and stopping
with --grace (drain, then reset)."""
import signal
import socket
import time

import pytest

import support

pytestmark = pytest.mark.timeout(60)


def _served(sock, timeout):
    """True if an echo exchange on *sock* completes within *timeout*."""
    sock.settimeout(timeout)
    try:
        sock.sendall(b'ping')
        return sock.recv(16) == b'ping'
    except socket.timeout:
        return False


def test_beyond_max_connections_clients_wait_in_the_backlog(vaurien_inproc,
                                                            echo_server):
    proxy = vaurien_inproc('--max-connections', '2',
                           backend=echo_server.address)
    first, second = proxy.connect(), proxy.connect()
    assert _served(first, 5) and _served(second, 5)
    third = proxy.connect()          # accepted by the kernel, not served
    third.sendall(b'ping')
    third.settimeout(0.5)
    with pytest.raises(socket.timeout):
        third.recv(16)
    first.close()
    third.settimeout(5)
    assert third.recv(16) == b'ping'  # served as soon as a slot is free
    second.close()
    third.close()


def test_idle_connections_are_closed(vaurien_inproc, echo_server):
    proxy = vaurien_inproc('--idle-timeout', '0.3',
                           backend=echo_server.address)
    with proxy.connect() as idle, proxy.connect() as busy:
        assert _served(idle, 5)
        start = time.monotonic()
        for _ in range(10):          # 1 s of traffic every 0.1 s
            assert _served(busy, 5)
            time.sleep(0.1)
        assert support.ends_soon(idle, 0.1)
        assert _served(busy, 5)
    assert time.monotonic() - start >= 1.0


def test_a_second_signal_cuts_at_once(vaurien, echo_server):
    proxy = vaurien('--behavior', '100:delay', '--handlers.delay.sleep', '60',
                    '--grace', '30', backend=echo_server.address)
    with proxy.connect() as held:
        held.sendall(b'held')
        support.wait_until(lambda: echo_server.connections >= 1,
                           what='the backend connection')
        proxy.proc.send_signal(signal.SIGTERM)
        support.wait_until(lambda: 'stopping' in proxy.log(),
                           what='the stopping line')
        # New clients are refused at once; the held one is still open.
        assert not support.port_open(proxy.port)
        assert proxy.proc.poll() is None
        start = time.monotonic()
        proxy.proc.send_signal(signal.SIGINT)
        held.settimeout(5)
        with pytest.raises(ConnectionResetError):
            held.recv(16)
        assert proxy.proc.wait(10) == 0
        assert time.monotonic() - start < 5
    assert '0 connections drained, 1 cut (reset)' in proxy.output()


@pytest.mark.parametrize('args, words', [
    (['--max-message', '0'], '--max-message expects a size in bytes above 0'),
    (['--max-message', '1T'], '--max-message expects a size in bytes like'),
    (['--max-connections', 'lots'], '--max-connections expects a whole '
                                     'number above 0, or "auto"'),
    (['--idle-timeout', '-1'], '--idle-timeout expects a number of seconds'),
    (['--grace', 'soon'], '--grace expects a number'),
])
def test_limit_mistakes_are_one_line(args, words):
    result = support.run_cli(*args)
    assert result.returncode == 2
    assert result.stderr.count('\n') == 1 and words in result.stderr, \
        result.stderr
