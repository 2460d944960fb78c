"""--timeout: a backend that never completes the TCP handshake."""
import socket
import time

import pytest

import support


@pytest.fixture
def full_backlog():
    """A listening socket that never accepts, with its accept queue full.

    Linux drops further SYNs to it, so a new connect() neither succeeds nor
    fails: it waits, which is how an unresponsive backend looks.
    """
    listener = socket.socket()
    listener.bind((support.HOST, 0))
    listener.listen(0)
    fillers = []
    address = listener.getsockname()
    for _ in range(8):
        sock = socket.socket()
        sock.setblocking(False)
        sock.connect_ex(address)
        fillers.append(sock)
    probe = socket.socket()
    probe.settimeout(0.3)
    try:
        probe.connect(address)
        blocked = False
    except (socket.timeout, BlockingIOError):
        blocked = True
    except OSError:
        blocked = False
    finally:
        probe.close()
    if not blocked:
        pytest.skip('this kernel does not drop SYNs to a full accept queue')
    yield address
    for sock in fillers:
        sock.close()
    listener.close()


@pytest.mark.timeout(30)
def test_connect_timeout_closes_client_and_warns(vaurien_inproc, full_backlog):
    proxy = vaurien_inproc('--timeout', '0.5', backend=full_backlog)
    start = time.monotonic()
    with proxy.connect() as sock:
        sock.settimeout(10)
        try:
            data = sock.recv(10)
        except ConnectionResetError:
            data = b''
    elapsed = time.monotonic() - start
    assert data == b''
    assert 0.4 <= elapsed < 5, elapsed
    log = support.wait_until(
        lambda: 'unreachable' in proxy.log() and proxy.log(),
        what='the warning')
    assert 'backend %s:%d unreachable (no answer within 0.5s (--timeout))' \
        % full_backlog in log
    # The proxy keeps serving.
    assert support.port_open(proxy.port)
