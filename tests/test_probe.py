"""Start-up says what it will do (vaurien/probe.py and its use by the
``vaurien`` command): the default backend named, one warning when the
backend cannot be reached, and the proxy serving anyway."""
import socket
import threading

import pytest

import support
from fault_support import Recorder
from observe_support import finish
from vaurien.probe import listening, probe_backend

pytestmark = pytest.mark.timeout(60)

DEFAULT_LINE = ('[INFO] no --distant given: relaying every client to the '
                'default backend localhost:80')


def warnings(log):
    return [line for line in log.splitlines() if '[WARNING]' in line]


def bound_not_listening():
    """A socket bound to a loopback port nobody listens on (refused)."""
    holder = socket.socket()
    holder.bind((support.HOST, 0))
    return holder


def test_no_distant_names_the_default_backend(vaurien_inproc):
    proxy = vaurien_inproc()
    log = finish(proxy)
    assert log.count(DEFAULT_LINE) == 1, log
    # Said before the line that says the proxy listens.
    assert log.index(DEFAULT_LINE) < log.index('proxying ')


def test_distant_given_no_default_line(vaurien_inproc, echo_server, tmp_path):
    proxy = vaurien_inproc(backend=echo_server.address)
    assert 'no --distant given' not in finish(proxy)
    ini = tmp_path / 'v.ini'
    ini.write_text('[vaurien]\ndistant = %s:%d\n' % echo_server.address)
    proxy = vaurien_inproc('--config', str(ini))
    assert 'no --distant given' not in finish(proxy)


def test_unreachable_backend_is_one_warning_and_the_proxy_serves(
        vaurien_inproc):
    holder = bound_not_listening()
    port = holder.getsockname()[1]
    try:
        proxy = vaurien_inproc(backend=(support.HOST, port))
        line = support.wait_until(
            lambda: (warnings(proxy.log()) or [None])[0],
            what='the start-up warning')
        assert line.endswith('backend 127.0.0.1:%d cannot be reached '
                             '(nothing listens there): the proxy starts '
                             'anyway, and its clients are cut until the '
                             'backend is up' % port), line
        # The backend comes up: the same proxy relays.
        holder.listen(5)
        accepted = []

        def answer():
            conn, _ = holder.accept()
            accepted.append(conn)
            conn.sendall(conn.recv(100))
        thread = threading.Thread(target=answer, daemon=True)
        thread.start()
        with proxy.connect() as sock:
            assert support.exchange(sock, b'ping') == b'ping'
        thread.join(10)
        log = finish(proxy)
        assert len(warnings(log)) == 1, log
    finally:
        holder.close()
        for conn in accepted:
            conn.close()


def test_unresolvable_backend_is_one_warning(vaurien_inproc):
    proxy = vaurien_inproc('--distant', 'nonexistent.invalid:80')
    line = support.wait_until(lambda: (warnings(proxy.log()) or [None])[0],
                              what='the start-up warning')
    assert "backend nonexistent.invalid:80 cannot be reached (cannot " \
        "resolve 'nonexistent.invalid': " in line


def test_reachable_backend_no_warning_and_no_extra_connection(vaurien_inproc):
    # A loopback backend is checked without a connection of its own: the
    # backend sees exactly the clients' connections.
    recorder = Recorder()
    try:
        proxy = vaurien_inproc(backend=recorder.address)
        with proxy.connect() as sock:
            assert support.exchange(sock, b'hello') == b'hello'
        log = finish(proxy)
        assert warnings(log) == [], log
        assert [bytes(got) for got in recorder.received] == [b'hello']
    finally:
        recorder.close()


def test_workers_warn_once(vaurien):
    holder = bound_not_listening()
    try:
        proxy = vaurien('--workers', '2',
                        backend=holder.getsockname()[:2])
        support.wait_until(lambda: warnings(proxy.log()),
                           what='the start-up warning')
        # Both workers are up (each logs that it listens) before stopping.
        support.wait_until(lambda: proxy.log().count('proxying ') >= 2,
                           what='both workers')
        log = finish(proxy)
        assert len([w for w in warnings(log)
                    if 'cannot be reached' in w]) == 1, log
    finally:
        holder.close()


def test_listening_reads_the_system_table():
    server = socket.socket()
    server.bind((support.HOST, 0))
    port = server.getsockname()[1]
    try:
        assert listening(socket.AF_INET, support.HOST, port) is False
        server.listen(1)
        assert listening(socket.AF_INET, support.HOST, port) is True
        assert probe_backend((support.HOST, port), 1) is None
    finally:
        server.close()
    # A wildcard IPv6 listener takes IPv4 clients too (dual stack).
    six = socket.socket(socket.AF_INET6)
    try:
        six.bind(('::', 0))
    except OSError:
        six.close()
        pytest.skip('no IPv6 on this machine')
    try:
        six.listen(1)
        port = six.getsockname()[1]
        assert listening(socket.AF_INET, support.HOST, port) is True
        assert probe_backend(('::1', port), 1) is None
    finally:
        six.close()


def _outward_address():
    """A non-loopback address of this machine, or None."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect(('192.0.2.1', 9))     # no packet is sent
        address = probe.getsockname()[0]
    except OSError:
        return None
    finally:
        probe.close()
    return None if address.startswith('127.') else address


def test_other_backends_get_one_connection():
    address = _outward_address()
    if address is None:
        pytest.skip('this machine has no non-loopback IPv4 address')
    server = socket.socket()
    server.bind((address, 0))
    port = server.getsockname()[1]
    try:
        reason = probe_backend((address, port), 1)
        assert reason == 'connection refused'
        server.listen(1)
        assert probe_backend((address, port), 1) is None
        server.settimeout(5)
        conn, _ = server.accept()       # the probe's, already closed
        conn.settimeout(5)
        assert conn.recv(10) == b''
        conn.close()
    finally:
        server.close()


def test_unix_socket_backends(vaurien_inproc, tmp_path):
    path = str(tmp_path / 'backend.sock')
    assert probe_backend(path, 1) == 'no such file or directory'
    plain = tmp_path / 'plain'
    plain.write_text('')
    assert probe_backend(str(plain), 1) == 'not a socket'
    server = socket.socket(socket.AF_UNIX)
    try:
        server.bind(path)
        assert probe_backend(path, 1) == 'nothing listens there'
        server.listen(1)
        assert probe_backend(path, 1) is None
        # Checked without a connection: nothing waits to be accepted.
        server.settimeout(0.2)
        with pytest.raises(socket.timeout):
            server.accept()
    finally:
        server.close()
    proxy = vaurien_inproc('--distant', 'unix:' + str(tmp_path / 'gone.sock'))
    line = support.wait_until(lambda: (warnings(proxy.log()) or [None])[0],
                              what='the start-up warning')
    assert ('backend unix:%s cannot be reached (no such file or directory)'
            % (tmp_path / 'gone.sock')) in line
