"""The in-process harness (tests/inproc.py): a real proxy in a thread of
the test process, that leaves no thread and no descriptor behind."""
import sys
import threading

import gevent
import pytest

from control_support import api
from inproc import InProcessVaurien

import support


def test_relays_and_leaves_nothing_behind(echo_server):
    threads = set(threading.enumerate())
    baseline = support.fd_count(support.os.getpid())
    proxy = InProcessVaurien('--behavior', '100:dummy',
                             backend=echo_server.address)
    assert proxy.pid == support.os.getpid()
    with proxy.connect() as sock:
        assert support.exchange(sock, b'hello') == b'hello'
    held = proxy.connect()
    held.sendall(b'x')
    assert support.recv_exact(held, 1) == b'x'
    assert 'proxying 127.0.0.1:%d -> 127.0.0.1:%d' \
        % (proxy.port, echo_server.port) in proxy.log()
    text = proxy.stop()
    assert support.ends_soon(held)     # open connections are closed
    held.close()
    assert text == proxy.stop() == proxy.log()
    assert not proxy.thread.is_alive()
    support.wait_until(lambda: set(threading.enumerate()) <= threads,
                       what='the threads to end')
    support.wait_fds(support.os.getpid(), baseline)


def test_two_at_once_keep_their_own_logs(echo_server):
    first = InProcessVaurien('--behavior', '100:dummy',
                             backend=echo_server.address)
    second = InProcessVaurien('--behavior', '100:delay',
                              '--handlers.delay.sleep', '0',
                              backend=echo_server.address)
    try:
        assert 'behavior 100:dummy' in first.log()
        assert 'behavior 100:delay' in second.log()
        assert 'delay' not in first.log()
    finally:
        first.stop()
        second.stop()


def test_control_api_and_call(echo_server):
    proxy = InProcessVaurien('--http', '--http-port', '0',
                             '--http-host', support.HOST,
                             backend=echo_server.address)
    try:
        assert api(proxy.http_port, 'GET', '/handler').text.strip() == \
            'dummy'
        assert proxy.call(lambda: proxy.proxy.opened) == 0
        with proxy.connect() as sock:
            assert support.exchange(sock, b'hi') == b'hi'
        support.wait_until(lambda: proxy.call(
            lambda: proxy.proxy.opened) == 1, what='one connection')
    finally:
        proxy.stop()


def test_a_start_error_is_raised_here(echo_server):
    with support.reserved_port() as port:
        holder = support.socket.socket()
        holder.setsockopt(support.socket.SOL_SOCKET,
                          support.socket.SO_REUSEADDR, 1)
        holder.bind((support.HOST, port))
        holder.listen(1)
        with holder:
            with pytest.raises(Exception, match='listen on'):
                InProcessVaurien('--local', '%s:%d' % (support.HOST, port),
                                 backend=echo_server.address)


def test_the_command_itself_is_refused():
    with pytest.raises(ValueError, match='VaurienProcess'):
        InProcessVaurien('--workers', '2', backend=(support.HOST, 9))


def test_a_resolved_backend_leaves_no_resolver_thread(echo_server):
    """A backend by name goes through gevent's resolver (a thread pool of
    the proxy's hub): its threads end with the hub."""
    threads = set(threading.enumerate())
    proxy = InProcessVaurien('--distant', 'localhost:%d' % echo_server.port)
    try:
        with proxy.connect() as sock:
            assert support.exchange(sock, b'by name') == b'by name'
    finally:
        proxy.stop()
    support.wait_until(lambda: set(threading.enumerate()) <= threads,
                       what='the threads to end')


USER_HANDLER = '''
def handler(client_sock, backend_sock, to_backend):
    source, dest = ((client_sock, backend_sock) if to_backend
                    else (backend_sock, client_sock))
    data = source.recv(65536)
    if data:
        dest.sendall(data + %r)
    return bool(data)
'''


@pytest.mark.parametrize('mark', [b'1', b'2'])
def test_user_code_is_imported_afresh_and_taken_away(echo_server, tmp_path,
                                                    mark):
    """``extra_paths``: the user's directory is on ``sys.path`` while the
    proxy runs; ``stop()`` takes it and the modules imported from it off
    again, so that the next test's module of the same name (the second
    parameter: another mark) is its own."""
    (tmp_path / 'inproc_user_mod.py').write_text(USER_HANDLER % mark)
    path = str(tmp_path)
    proxy = InProcessVaurien('--behavior', '100:inproc_user_mod.handler',
                             backend=echo_server.address,
                             extra_paths=[path])
    try:
        assert sys.path[0] == path
        with proxy.connect() as sock:
            sock.sendall(b'x')
            # up and down each add the mark
            assert support.recv_exact(sock, 3) == b'x' + mark * 2
    finally:
        proxy.stop()
    assert path not in sys.path and path not in sys.path_importer_cache
    assert 'inproc_user_mod' not in sys.modules


def test_a_bad_option_takes_the_user_paths_off_too(tmp_path):
    with pytest.raises(Exception, match='no-such-option'):
        InProcessVaurien('--no-such-option', backend=(support.HOST, 9),
                         extra_paths=[str(tmp_path)])
    assert str(tmp_path) not in sys.path


def test_an_uncaught_greenlet_exception_is_in_the_output(echo_server):
    """gevent's hub prints it (on the command's stderr): here in the log."""
    proxy = InProcessVaurien(backend=echo_server.address)
    try:
        def fail():
            raise RuntimeError('printed by the hub')
        proxy.call(gevent.spawn, fail)
        support.wait_until(
            lambda: 'RuntimeError: printed by the hub' in proxy.output(),
            what='the traceback')
        assert 'Traceback' in proxy.output()
        assert proxy.output() == proxy.log()
    finally:
        proxy.stop()
