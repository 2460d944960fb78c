"""Every example of docs/choosing.rst, run against a real backend.

Each example in the page is preceded by an RST comment ``.. check: NAME
[ARG]`` naming what it must do; the command (or INI file) is run as
written, with only ``--local`` and ``--distant`` (``local``/``distant``)
pointed at the test's own addresses, the certificate files of TLS examples
(``cert.pem``, ``key.pem``) replaced by ones the test makes with
``openssl`` (tls_support.py), and ``--seed 1`` added when it has none, so
that the shares of traffic are the same from run to run.
"""
import os
import re
import shlex
import socket
import ssl
import threading
import time

import pytest

import support
import tls_support
from fault_support import Recorder, answer_and_close, read_exactly, \
    read_to_end, sender_of, wait_for

PAGE = os.path.join(support.ROOT, 'docs', 'choosing.rst')


def examples():
    """``[(check words, 'console'|'ini', text)]`` from the page."""
    found = []
    lines = open(PAGE, encoding='utf-8').read().splitlines()
    check = None
    i = 0
    while i < len(lines):
        line = lines[i]
        match = re.match(r'^\.\. check: (.+)$', line)
        if match:
            check = match.group(1).split()
        match = re.match(r'^\.\. code-block:: (\w+)$', line)
        if match:
            i += 1
            body = []
            while i < len(lines) and (not lines[i].strip()
                                      or lines[i].startswith(' ')):
                body.append(lines[i][3:])
                i += 1
            assert check, 'example without a ".. check:" above it: %r' % body
            found.append((check, match.group(1), '\n'.join(body).strip()))
            check = None
            continue
        i += 1
    return found


EXAMPLES = examples()


def console_args(text, backend, pki=None):
    """The argv of a ``$ vaurien ...`` example, aimed at *backend*, with
    the certificates of *pki* (a :class:`tls_support.PKI`) for
    ``cert.pem`` and ``key.pem``."""
    assert text.startswith('$ vaurien '), text
    args = shlex.split(text[2:].replace('\\\n', ' '))[1:]
    if pki is not None:
        files = {'cert.pem': pki.cert, 'key.pem': pki.key}
        args = [files.get(arg, arg) for arg in args]
    for flag, value in (('--local', '%s:0' % support.HOST),
                        ('--distant', '%s:%d' % tuple(backend))):
        args[args.index(flag) + 1] = value
    if '--seed' not in args:
        args += ['--seed', '1']
    return args


def ini_args(text, backend, tmp_path):
    text = re.sub(r'(?m)^local = .*$', 'local = %s:0' % support.HOST, text)
    text = re.sub(r'(?m)^distant = .*$',
                  'distant = %s:%d' % tuple(backend), text)
    path = tmp_path / 'example.ini'
    path.write_text(text + '\n')
    return ['--config', str(path), '--seed', '1']


def ask(sock, payload):
    sock.sendall(payload)
    return read_exactly(sock, len(payload))


# -- what each example must do ------------------------------------------------

def check_slow(proxy, at_least):
    times = []
    with proxy.connect() as sock:
        for n in range(10):
            start = time.monotonic()
            assert ask(sock, b'query %d' % n) == b'query %d' % n
            times.append(time.monotonic() - start)
    assert max(times) >= float(at_least), times


def check_reset(proxy):
    resets = 0
    for _ in range(40):
        with proxy.connect() as sock:
            try:
                sock.sendall(b'PING')
                data, how, _ = read_to_end(sock, limit=4)
            except (ConnectionResetError, BrokenPipeError):
                how = 'reset'
            if how == 'reset':
                resets += 1
            else:
                assert (data, how) == (b'PING', 'limit')
    assert 1 <= resets < 40


def check_reset_after_request(proxy, recorder):
    with proxy.connect() as sock:
        sock.sendall(b'SET k v')
        assert read_to_end(sock)[:2] == (b'', 'reset')
    wait_for(lambda: recorder.total() == 7, what='the request')


def check_silent_then_closed(proxy, seconds):
    with proxy.connect() as sock:
        start = time.monotonic()
        sock.sendall(b'GET / HTTP/1.0\r\n\r\n')
        assert read_to_end(sock, timeout=30)[:2] == (b'', 'eof')
        assert time.monotonic() - start >= float(seconds)


def check_share_silent(proxy):
    outcomes = []

    def one():
        with proxy.connect() as sock:
            sock.sendall(b'ping')
            # (4 s: an answer can be slow on a loaded machine; the silent
            # ones are waited out, in parallel.)
            data, how, _ = read_to_end(sock, timeout=4.0, limit=4)
            outcomes.append('answered' if data == b'ping' else how)
    threads = [threading.Thread(target=one) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(outcomes) == 20
    assert set(outcomes) == {'answered', 'timeout'}, outcomes
    assert 1 <= outcomes.count('timeout') <= 12, outcomes


def check_throttled(proxy, rate_kb):
    size = 100 * 1024
    with proxy.connect() as sock:
        start = time.monotonic()
        sock.sendall(b'GET')
        assert read_exactly(sock, size, timeout=30) == b'd' * size
        elapsed = time.monotonic() - start
    assert elapsed >= size / (1.1 * float(rate_kb) * 1024)


def check_sliced(proxy):
    payload = os.urandom(300)
    with proxy.connect() as sock:
        sock.sendall(payload)
        sock.shutdown(socket.SHUT_WR)
        data, how, stamps = read_to_end(sock)
    assert data == payload
    assert len(stamps) >= 5


def check_cut(proxy, count):
    with proxy.connect() as sock:
        sock.sendall(b'GET')
        data, how, _ = read_to_end(sock)
    assert data == b'd' * int(count)


def check_corrupted(proxy):
    payload = os.urandom(20_000)
    with proxy.connect() as sock:
        sock.sendall(payload)
        got = read_exactly(sock, len(payload))
    assert got != payload


def check_transient(proxy, count):
    with proxy.connect() as sock:
        for _ in range(int(count)):
            assert ask(sock, b'request') != b'request'
        for _ in range(3):
            assert ask(sock, b'request') == b'request'


def check_slow_close(proxy, seconds):
    with proxy.connect() as sock:
        # Timed from before the request: the backend's close, which the
        # delay follows, can only come after it (reading 'bye' first would
        # start the clock late on a busy machine).
        start = time.monotonic()
        sock.sendall(b'hi')
        assert read_exactly(sock, 3) == b'bye'
        assert read_to_end(sock, timeout=30)[:2] == (b'', 'eof')
        assert time.monotonic() - start >= float(seconds)


def check_corrupted_answers(proxy, recorder):
    payload = os.urandom(1000)
    answers = []
    with proxy.connect() as sock:
        for _ in range(20):
            answers.append(ask(sock, payload))
    wait_for(lambda: recorder.total() == 20 * len(payload))
    assert bytes(recorder.received[0]) == payload * 20   # requests intact
    assert payload in answers
    assert any(answer != payload for answer in answers)


def check_tls_handshake(proxy, pki):
    outcomes = []
    for _ in range(30):
        raw = socket.create_connection(proxy.address, timeout=10)
        try:
            with tls_support.client_context(pki).wrap_socket(
                    raw, server_hostname='localhost') as sock:
                assert ask(sock, b'hello') == b'hello'
                outcomes.append('answered')
        except ssl.SSLError as exc:
            assert 'alert handshake failure' in str(exc), exc
            outcomes.append('alert')
        finally:
            raw.close()
    assert 1 <= outcomes.count('alert') <= 15, outcomes
    assert outcomes.count('answered') >= 15, outcomes


def replay_once(proxy):
    answers = []
    with proxy.connect() as sock:
        for n in range(10):
            answers.append(ask(sock, b'%d' % n * 100))
    return answers


# check name -> (backend kind, function)
CHECKS = {
    'slow': ('echo', check_slow),
    'reset': ('echo', check_reset),
    'reset-after-request': ('recorder', check_reset_after_request),
    'silent-then-closed': ('echo', check_silent_then_closed),
    'share-silent': ('echo', check_share_silent),
    'throttled': ('download', check_throttled),
    'sliced': ('echo', check_sliced),
    'cut': ('download', check_cut),
    'corrupted': ('echo', check_corrupted),
    'transient': ('echo', check_transient),
    'slow-close': ('closing', check_slow_close),
    'corrupted-answers': ('recorder', check_corrupted_answers),
    'tls-handshake': ('echo', check_tls_handshake),
}


def test_every_example_has_a_known_check():
    assert len(EXAMPLES) >= 10
    for check, kind, text in EXAMPLES:
        name = check[1] if check[0] == 'ini' else check[0]
        assert name in CHECKS or name == 'replay', check


@pytest.fixture
def backends():
    started = {}

    def get(kind):
        if kind not in started:
            if kind == 'echo':
                started[kind] = support.TCPServer(support.echo)
            elif kind == 'download':
                started[kind] = support.TCPServer(sender_of(100 * 1024))
            elif kind == 'closing':
                started[kind] = support.TCPServer(answer_and_close)
            else:
                started[kind] = Recorder()
        return started[kind]
    yield get
    for server in started.values():
        server.close()


@pytest.mark.timeout(90)
@pytest.mark.parametrize('check, kind, text', [
    pytest.param(*example, id='-'.join(example[0])) for example in EXAMPLES
    if example[0][0] != 'replay'])
def test_example(vaurien_inproc, backends, tmp_path, check, kind, text):
    if kind == 'ini':
        check = check[1:]
    name, args = check[0], check[1:]
    backend_kind, function = CHECKS[name]
    backend = backends(backend_kind)
    if kind == 'ini':
        argv = ini_args(text, backend.address, tmp_path)
        pki = None
    else:
        pki = None
        if '--local-tls-cert' in text:
            pki = tls_support.make_pki(str(tmp_path))
        argv = console_args(text, backend.address, pki)
    proxy = vaurien_inproc(*argv)
    if backend_kind == 'recorder':
        function(proxy, backend, *args)
    elif pki is not None:
        function(proxy, pki, *args)
    else:
        function(proxy, *args)


@pytest.mark.timeout(90)
def test_replay_example(vaurien_inproc, echo_server):
    [text] = [text for check, kind, text in EXAMPLES if check == ['replay']]
    argv = console_args(text, echo_server.address)
    first = replay_once(vaurien_inproc(*argv))
    again = replay_once(vaurien_inproc(*argv))
    assert first == again
    assert any(answer != b'%d' % n * 100 for n, answer in enumerate(first))
