"""Endpoints (vaurien/endpoints.py): TLS on either side, IPv6, bad input.

Real clients (curl, Python ``ssl``, requests), real TLS servers (Python
``ssl``, ``openssl s_server``) and the real ``vaurien`` command; the
certificates are made by ``openssl`` for the session (tls_support.py).
Unix sockets with real redis and MariaDB are in
tests/protocols/test_unix_sockets.py.
"""
import os
import re
import shutil
import socket
import stat
import subprocess
import threading
import time

import pytest

import support
import tls_support
from vaurien.config import read_ini
from vaurien.stats import snapshot
from control_support import api, assert_error, start_controlled

HOST = support.HOST


@pytest.fixture(scope='module')
def pki(tmp_path_factory):
    return tls_support.make_pki(str(tmp_path_factory.mktemp('pki')))


def local_tls(pki, *extra):
    return ('--local-tls-cert', pki.cert, '--local-tls-key', pki.key) + extra


def curl(*args, timeout=30):
    """Run curl; ``(exit status, stdout, stderr)``."""
    if shutil.which('curl') is None:
        raise AssertionError('curl is needed (Debian: curl)')
    done = subprocess.run(['curl', '-sS', '--max-time', '20'] + list(args),
                          capture_output=True, timeout=timeout)
    return done.returncode, done.stdout, done.stderr.decode()


def tls_client(pki, address, cert=False, timeout=10):
    raw = socket.create_connection(address, timeout=timeout)
    return tls_support.client_context(pki, cert).wrap_socket(
        raw, server_hostname='localhost')


def exchange(sock, data, chunk=65536):
    """Send *data* and read as many bytes back (an echo), one chunk at a
    time: one thread only ever uses a TLS socket (OpenSSL's objects are not
    for two threads at once)."""
    got = bytearray()
    for start in range(0, len(data), chunk):
        part = data[start:start + chunk]
        sock.sendall(part)
        want = len(got) + len(part)
        while len(got) < want:
            more = sock.recv(65536)
            if not more:
                return bytes(got)
            got += more
    return bytes(got)


# -- termination ------------------------------------------------------------------

def test_curl_and_requests_over_tls_to_plain_backend(vaurien_inproc,
                                                     http_server, pki):
    proxy = vaurien_inproc(*local_tls(pki), backend=http_server.address)
    url = 'https://localhost:%d/' % proxy.port
    status, out, err = curl('--cacert', pki.ca, url, url)
    assert status == 0, err
    assert out == support.BODY * 2
    requests = pytest.importorskip('requests')
    with requests.Session() as session:
        for _ in range(3):      # keep-alive: one TLS connection
            answer = session.get(url, verify=pki.ca, timeout=20)
            assert answer.status_code == 200
            assert answer.content == support.BODY
    # Plain HTTP to the TLS port fails the handshake: logged at INFO.
    status, _, _ = curl('http://127.0.0.1:%d/' % proxy.port)
    assert status != 0
    support.wait_until(lambda: 'TLS handshake with client' in proxy.log(),
                       what='the failed handshake in the log')
    assert re.search(r'\[INFO\] TLS handshake with client 127\.0\.0\.1:\d+ '
                     r'failed: TLS: ', proxy.log()), proxy.log()


def test_bulk_both_ways(vaurien_inproc, echo_server, pki):
    proxy = vaurien_inproc(*local_tls(pki), backend=echo_server.address)
    data = os.urandom(3 << 20)
    with tls_client(pki, proxy.address) as sock:
        assert exchange(sock, data) == data
        assert exchange(sock, b'again') == b'again'
        # Bytes are counted in plaintext, read and written, both ways.
        snap = proxy.call(snapshot, proxy.proxy)
        total = len(data) + len(b'again')
        assert (snap.bytes_up, snap.sent_up, snap.bytes_down,
                snap.sent_down) == (total,) * 4


def test_toxics_over_tls_both_ways(vaurien_inproc, echo_server, pki):
    """Toxics that let every chunk through where it is read, on a TLS
    client: a read that leaves decrypted bytes in the TLS layer comes back
    for them (no socket event says so), bulk or small, both ways."""
    proxy = vaurien_inproc(*local_tls(pki, '--bufsize', '4096'),
                           backend=echo_server.address)
    for stream in ('upstream', 'downstream'):
        for toxic in ({'type': 'latency', 'attributes': {'latency': 0}},
                      {'type': 'bandwidth', 'attributes': {'rate': 10 ** 6}}):
            proxy.call(proxy.proxy.toxics.add, dict(toxic, stream=stream))
    data = os.urandom(3 << 20)
    with tls_client(pki, proxy.address) as sock:
        assert exchange(sock, data) == data
        for size in (1, 100, 20000):
            small = os.urandom(size)
            assert exchange(sock, small) == small
        snap = proxy.call(snapshot, proxy.proxy)
        total = len(data) + 1 + 100 + 20000
        assert (snap.bytes_up, snap.sent_up, snap.bytes_down,
                snap.sent_down) == (total,) * 4


def test_half_close_is_a_close_notify(vaurien_inproc, pki):
    """The backend ends its side first: the TLS client gets close_notify
    (a clean end of stream), and what it sends after still reaches the
    backend."""
    listener = socket.socket()
    listener.bind((HOST, 0))
    listener.listen(4)
    received = []

    def backend():
        conn, _ = listener.accept()
        with conn:
            conn.sendall(b'bye for now')
            conn.shutdown(socket.SHUT_WR)
            received.append(support.recv_all(conn))
    thread = threading.Thread(target=backend, daemon=True)
    thread.start()
    try:
        proxy = vaurien_inproc(*local_tls(pki), backend=listener.getsockname())
        with tls_client(pki, proxy.address) as sock:
            got = b''
            while True:
                chunk = sock.recv(100)
                if not chunk:
                    break
                got += chunk
            assert got == b'bye for now'
            sock.sendall(b'still heard')
        thread.join(10)
        assert received == [b'still heard']
    finally:
        listener.close()


def test_handshake_timeout_costs_others_nothing(vaurien_inproc, echo_server,
                                                pki):
    proxy = vaurien_inproc(*local_tls(pki, '--local-tls-timeout', '0.5'),
                           backend=echo_server.address)
    silent = [socket.create_connection(proxy.address) for _ in range(5)]
    try:
        with tls_client(pki, proxy.address) as sock:
            assert exchange(sock, b'x' * 1000) == b'x' * 1000
        for sock in silent:
            sock.settimeout(5)
            assert sock.recv(100) == b''     # closed by the proxy
    finally:
        for sock in silent:
            sock.close()
    assert 'no TLS handshake within 0.5s' in proxy.log()


def test_client_certificates(vaurien_inproc, echo_server, pki):
    proxy = vaurien_inproc(*local_tls(pki, '--local-tls-ca', pki.ca),
                           backend=echo_server.address)
    with tls_client(pki, proxy.address, cert=True) as sock:
        assert exchange(sock, b'mtls') == b'mtls'
    status, _, err = curl('--cacert', pki.ca,
                          'https://localhost:%d/' % proxy.port)
    assert status != 0
    support.wait_until(
        lambda: 'peer did not return a certificate' in proxy.log(),
        what='the refused client in the log')


# -- origination -------------------------------------------------------------------

def test_tls_to_the_backend_verified(vaurien_inproc, pki):
    backend = tls_support.TLSEchoServer(tls_support.server_context(pki))
    try:
        proxy = vaurien_inproc('--distant-tls', '--distant-tls-ca', pki.ca,
                               backend=backend.address)
        with proxy.connect() as sock:
            data = os.urandom(1 << 20)
            assert exchange(sock, data) == data
        # The system's CAs do not know our CA: a clear warning, per
        # connection, and the proxy goes on.
        strict = start_controlled(vaurien_inproc, backend.address,
                                  '--distant-tls')
        with strict.connect() as sock:
            sock.sendall(b'hello')
            assert support.ends_soon(sock)
        support.wait_until(lambda: 'unreachable (TLS: ' in strict.log(),
                           what='the verification failure in the log')
        metrics = api(strict.http_port, 'GET', '/metrics').text
        assert 'vaurien_backend_connect_failures_total{reason="tls"} 1' \
            in metrics, metrics
        assert re.search(r'\[WARNING\] backend 127\.0\.0\.1:\d+ unreachable '
                         r'\(TLS: (unable to get local issuer certificate|'
                         r'certificate verify failed)', strict.log()), \
            strict.log()
    finally:
        backend.close()


def test_tls_to_the_backend_insecure_and_mtls(vaurien_inproc, pki):
    context = tls_support.server_context(pki, client_ca=pki.ca)
    backend = tls_support.TLSEchoServer(context)
    try:
        proxy = vaurien_inproc('--distant-tls', '--distant-tls-insecure',
                               '--distant-tls-cert', pki.client_cert,
                               '--distant-tls-key', pki.client_key,
                               backend=backend.address)
        assert re.search(r'\[WARNING\] --distant-tls-insecure: .*NOT '
                         r'verified', proxy.log()), proxy.log()
        with proxy.connect() as sock:
            assert exchange(sock, b'ping') == b'ping'
        assert backend.peers == [{'commonName': 'client'}]
    finally:
        backend.close()


def test_openssl_s_server_backend_and_wrong_name(vaurien_inproc, pki):
    if shutil.which('openssl') is None:
        raise AssertionError('openssl is needed')
    server = subprocess.Popen(
        ['openssl', 's_server', '-accept', '0', '-cert', pki.cert, '-key',
         pki.key, '-www', '-naccept', '10'], stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        line = b''
        deadline = time.monotonic() + 20
        while b'ACCEPT' not in line and time.monotonic() < deadline:
            line = server.stdout.readline()
        port = int(line.rsplit(b':', 1)[1])
        proxy = vaurien_inproc('--distant-tls', '--distant-tls-ca', pki.ca,
                               '--distant', 'localhost:%d' % port)
        status, out, err = curl('http://127.0.0.1:%d/' % proxy.port)
        assert status == 0, err
        assert b's_server' in out and b'TLSv1.3' in out
        # The certificate does not name the host given as the SNI name.
        wrong = vaurien_inproc('--distant-tls', '--distant-tls-ca', pki.ca,
                               '--distant-tls-name', 'example.org',
                               '--distant', 'localhost:%d' % port)
        status, out, err = curl('http://127.0.0.1:%d/' % wrong.port)
        assert status != 0
        support.wait_until(lambda: "Hostname mismatch" in wrong.log()
                           or 'hostname mismatch' in wrong.log(),
                           what='the name mismatch in the log')
    finally:
        server.kill()
        server.wait(5)


def test_http_protocol_errors_inside_tls_both_sides(vaurien_inproc, pki):
    backend = tls_support.HTTPSServer(tls_support.server_context(pki))
    try:
        proxy = vaurien_inproc(*local_tls(pki), '--distant-tls',
                               '--distant-tls-ca', pki.ca, '--protocol',
                               'http', '--behavior', '50:error', '--seed',
                               '7', backend=backend.address)
        url = 'https://localhost:%d/size/100000' % proxy.port
        codes = []
        for _ in range(12):
            status, out, err = curl('--cacert', pki.ca, '-o', '/dev/null',
                                    '-w', '%{http_code}', url)
            assert status == 0, err
            codes.append(int(out))
        assert 200 in codes, codes
        assert any(500 <= code < 600 for code in codes), codes
        assert set(codes) <= {200} | set(range(500, 600))
        requests = pytest.importorskip('requests')
        with requests.Session() as session:
            answers = [session.get(url, verify=pki.ca, timeout=20)
                       for _ in range(10)]
        ok = [a for a in answers if a.status_code == 200]
        assert ok and all(a.content == tls_support.support_payload(100000)
                          for a in ok)
    finally:
        backend.close()


# -- IPv6 ---------------------------------------------------------------------------

def _ipv6():
    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(('::1', 0))
        return True
    except OSError:
        return False


def test_ipv6_local_and_distant(vaurien_inproc):
    assert _ipv6(), 'IPv6 on ::1 is needed for this test'
    server = socket.socket(socket.AF_INET6)
    server.bind(('::1', 0))
    server.listen(8)
    port = server.getsockname()[1]

    def echo():
        conn, _ = server.accept()
        with conn:
            support.echo(conn)
    thread = threading.Thread(target=echo, daemon=True)
    thread.start()
    try:
        proxy = vaurien_inproc('--local', '[::1]:0', '--distant',
                               '[::1]:%d' % port)
        assert proxy.address[0] == '::1'
        assert re.search(r'proxying \[::1\]:\d+ -> \[::1\]:%d' % port,
                         proxy.log())
        with socket.create_connection(proxy.address, timeout=10) as sock:
            assert exchange(sock, b'over v6') == b'over v6'
    finally:
        server.close()


def test_listen_on_every_ipv6_address(vaurien_inproc, echo_server):
    assert _ipv6()
    proxy = vaurien_inproc('--local', '[::]:0', backend=echo_server.address)
    with socket.create_connection(('::1', proxy.port), timeout=10) as sock:
        assert exchange(sock, b'any') == b'any'


class DNSServer:
    """A tiny real DNS server on 127.0.0.1 (UDP, port 0) that knows one
    name, with an IPv6 address (AAAA) and no IPv4 one (an empty answer
    to A): what a host reachable only over IPv6 looks like."""

    def __init__(self, name, address):
        self.name = name.lower().rstrip('.')
        self.packed = socket.inet_pton(socket.AF_INET6, address)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((HOST, 0))
        self.port = self.sock.getsockname()[1]
        self.asked = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                query, peer = self.sock.recvfrom(512)
            except OSError:
                return
            reply = self._answer(query)
            if reply:
                self.sock.sendto(reply, peer)

    def _answer(self, query):
        if len(query) < 12:
            return None
        labels, pos = [], 12
        while pos < len(query) and query[pos]:
            size = query[pos]
            labels.append(query[pos + 1:pos + 1 + size].decode('ascii',
                                                               'replace'))
            pos += 1 + size
        pos += 1
        qtype = int.from_bytes(query[pos:pos + 2], 'big')
        question = query[12:pos + 4]
        name = '.'.join(labels).lower()
        self.asked.append((name, qtype))
        known = name == self.name
        answers = b''
        count = 0
        if known and qtype == 28:       # AAAA
            answers = (b'\xc0\x0c' + (28).to_bytes(2, 'big') + b'\x00\x01'
                       + (60).to_bytes(4, 'big') + b'\x00\x10' + self.packed)
            count = 1
        # Flags: a response, authoritative, recursion available; NXDOMAIN
        # (3) for names it does not know.
        flags = 0x8580 | (0 if known else 3)
        return (query[:2] + flags.to_bytes(2, 'big') + b'\x00\x01'
                + count.to_bytes(2, 'big') + b'\x00\x00\x00\x00' + question
                + answers)

    def close(self):
        self.sock.close()


def test_distant_name_resolving_to_ipv6_only(vaurien):
    """The name is served by a DNS server of the test's own, which gevent's
    c-ares resolver is pointed at (nothing is added to /etc/hosts)."""
    assert _ipv6()
    pytest.importorskip('gevent.resolver.cares')
    dns = DNSServer('v6only.vaurien.test', '::1')
    server = socket.socket(socket.AF_INET6)
    server.bind(('::1', 0))
    server.listen(8)
    port = server.getsockname()[1]
    thread = threading.Thread(target=lambda: support.echo(server.accept()[0]),
                              daemon=True)
    thread.start()
    try:
        proxy = vaurien('--distant', 'v6only.vaurien.test:%d' % port, env={
            'GEVENT_RESOLVER': 'ares', 'GEVENTARES_SERVERS': HOST,
            'GEVENTARES_UDP_PORT': str(dns.port),
            'GEVENTARES_TCP_PORT': str(dns.port)})
        with proxy.connect() as sock:
            assert exchange(sock, b'found') == b'found'
        assert ('v6only.vaurien.test', 28) in dns.asked
    finally:
        server.close()
        dns.close()


# -- the control API -------------------------------------------------------------------

def test_api_backend_change_to_unix_and_ipv6(vaurien_inproc, echo_server,
                                             tmp_path):
    proxy = start_controlled(vaurien_inproc, echo_server.address)
    path = str(tmp_path / 'echo.sock')
    unix = socket.socket(socket.AF_UNIX)
    unix.bind(path)
    unix.listen(8)

    def serve_unix():
        conn, _ = unix.accept()
        with conn:
            conn.sendall(b'unix backend\n')
    threading.Thread(target=serve_unix, daemon=True).start()
    try:
        answer = api(proxy.http_port, 'PUT', '/backend',
                     {'backend': 'unix:' + path})
        assert answer.status == 200, answer.text
        assert api(proxy.http_port, 'GET', '/backend').json == {
            'backend': 'unix:' + path}
        with proxy.connect() as sock:
            assert sock.recv(100) == b'unix backend\n'
        answer = api(proxy.http_port, 'PUT', '/backend',
                     {'backend': '[::1]:%d' % echo_server.address[1]})
        assert answer.status == 200
        assert api(proxy.http_port, 'GET', '/backend').json == {
            'backend': '[::1]:%d' % echo_server.address[1]}
        answer = api(proxy.http_port, 'PUT', '/backend', {'backend': 'unix:'})
        assert_error(answer, 400, 'backend', contains='unix:PATH')
    finally:
        unix.close()


# -- bad input ------------------------------------------------------------------------

def _error(*args, **kwargs):
    done = support.run_cli('--local', '127.0.0.1:0', '--distant',
                           '127.0.0.1:9', *args, **kwargs)
    assert done.returncode == 2, (done.returncode, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('vaurien: error: '), \
        done.stderr
    return lines[0]


def test_missing_and_bad_files_are_one_line_naming_the_file(pki, tmp_path):
    missing = str(tmp_path / 'nope.pem')
    assert _error('--local-tls-cert', missing, '--local-tls-key', pki.key) \
        == 'vaurien: error: --local-tls-cert %s: no such file' % missing
    assert _error('--local-tls-cert', pki.cert, '--local-tls-key',
                  pki.other_key) == (
        'vaurien: error: --local-tls-key %s does not match the certificate '
        'of --local-tls-cert %s' % (pki.other_key, pki.cert))
    not_pem = tmp_path / 'ca.der'
    not_pem.write_bytes(b'\x30\x82\x01\x00' + os.urandom(200))
    line = _error(*local_tls(pki, '--local-tls-ca', str(not_pem)))
    assert line.startswith('vaurien: error: --local-tls-ca %s: not a PEM '
                           'file' % not_pem), line
    line = _error('--distant-tls', '--distant-tls-ca', str(not_pem))
    assert '--distant-tls-ca %s: not a PEM file' % not_pem in line
    line = _error('--local-tls-cert', pki.key, '--local-tls-key', pki.key)
    assert line.startswith('vaurien: error: --local-tls-cert %s: not a PEM '
                           'file with a certificate' % pki.key), line
    assert _error('--local-tls-cert', pki.cert) == \
        'vaurien: error: --local-tls-cert needs --local-tls-key too'
    assert _error('--distant-tls-ca', pki.ca) == \
        'vaurien: error: --distant-tls-ca needs --distant-tls'
    assert _error('--distant', 'unix:').startswith(
        "vaurien: error: --distant expects unix:PATH with a path")


def test_unreadable_certificate(pki, tmp_path):
    prefix = support.unprivileged_prefix()
    if prefix is None:
        pytest.skip('cannot drop the root capabilities here (no setpriv)')
    locked = tmp_path / 'locked.pem'
    shutil.copy(pki.cert, locked)
    os.chmod(locked, 0)
    assert _error('--local-tls-cert', str(locked), '--local-tls-key',
                  pki.key, prefix=prefix) == \
        'vaurien: error: --local-tls-cert %s: permission denied' % locked


@pytest.mark.parametrize('args', [(), ('--behavior', '100:delay',
                                       '--handlers.delay.sleep', '0')],
                         ids=['relayed', 'handler'])
def test_clean_tls_close_both_ways(vaurien_inproc, echo_server, pki, args):
    """The client ends with close_notify and waits for the proxy's (as
    ``unwrap()`` does, the TCP connection still open): it gets it, a clean
    end rather than a bare FIN, whether the engine relays the events or a
    handler reads them."""
    proxy = vaurien_inproc(*local_tls(pki), *args, backend=echo_server.address)
    with tls_client(pki, proxy.address) as sock:
        assert exchange(sock, b'last words') == b'last words'
        raw = sock.unwrap()
        raw.close()


def _doc_commands():
    with open(os.path.join(support.ROOT, 'docs', 'endpoints.rst')) as fh:
        text = fh.read()
    commands = re.findall(r'\n    \$ (vaurien .*?)\n(?=    \$|\n)', text, re.S)
    assert len(commands) == 4, commands
    return [command.replace('\\\n', ' ').split()[1:] for command in commands]


def test_docs_endpoint_commands_start(vaurien_inproc, http_server, pki,
                                      tmp_path):
    """Every ``$ vaurien`` command of docs/endpoints.rst starts, with the
    test's files and free addresses in place of the examples'."""
    files = {'cert.pem': pki.cert, 'key.pem': pki.key, 'ca.pem': pki.ca}
    for args in _doc_commands():
        args = [files.get(arg, arg) for arg in args]
        local = args.index('--local') + 1
        if args[local].startswith('unix:'):
            args[local] = 'unix:' + str(tmp_path / 'doc.sock')
        else:
            args[local] = '127.0.0.1:0'
        terminating = '--local-tls-cert' in args
        if terminating and '--distant-tls' not in args:
            args[args.index('--distant') + 1] = '%s:%d' % http_server.address
        proxy = vaurien_inproc(*args)
        if terminating and '--distant-tls' not in args:
            status, out, err = curl('--cacert', pki.ca,
                                    'https://localhost:%d/' % proxy.port)
            assert (status, out) == (0, support.BODY), err
        proxy.stop()


def test_ini_file_with_unix_sockets_and_tls(vaurien_inproc, pki, tmp_path):
    """The same settings from ``[vaurien]`` in an INI file: a Unix socket
    with TLS toward the clients, a TLS backend on a Unix socket."""
    backend_path = str(tmp_path / 'backend.sock')
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(backend_path)
    listener.listen(4)
    context = tls_support.server_context(pki)

    def backend():
        conn, _ = listener.accept()
        with context.wrap_socket(conn, server_side=True) as tls:
            support.echo(tls)
    threading.Thread(target=backend, daemon=True).start()
    local = str(tmp_path / 'proxy.sock')
    config = tmp_path / 'vaurien.ini'
    config.write_text(
        '[vaurien]\nlocal = unix:%s\nlocal_mode = 0600\ndistant = unix:%s\n'
        'local_tls_cert = %s\nlocal_tls_key = %s\ndistant_tls = yes\n'
        'distant_tls_ca = %s\ndistant_tls_name = localhost\n'
        % (local, backend_path, pki.cert, pki.key, pki.ca))
    settings = read_ini(str(config)).settings
    assert (settings['local'], settings['distant'], settings['local_mode']) \
        == (local, backend_path, 0o600)
    try:
        # (The test harness names --local itself: the INI file's value.)
        proxy = vaurien_inproc('--config', str(config), '--local',
                               'unix:' + local)
        assert stat.S_IMODE(os.stat(local).st_mode) == 0o600
        assert proxy.address == local
        raw = socket.socket(socket.AF_UNIX)
        raw.settimeout(10)
        raw.connect(local)
        with tls_support.client_context(pki).wrap_socket(
                raw, server_hostname='localhost') as sock:
            assert exchange(sock, b'both ends') == b'both ends'
    finally:
        listener.close()


def test_local_mode_needs_a_unix_socket():
    assert _error('--local-mode', '0660') == (
        'vaurien: error: --local-mode is for a Unix socket (--local '
        'unix:PATH)')


def test_check_finds_a_bad_certificate_without_starting(pki, tmp_path):
    """``vaurien --check`` loads the certificates too."""
    missing = str(tmp_path / 'gone.pem')
    done = support.run_cli('--check', '--local', 'unix:%s' % (tmp_path / 's'),
                           '--distant', '127.0.0.1:9', '--distant-tls',
                           '--distant-tls-ca', missing)
    assert done.returncode == 2
    assert done.stderr.strip() == ('vaurien: error: --distant-tls-ca %s: no '
                                   'such file' % missing)
    done = support.run_cli('--check', '--local', 'unix:%s' % (tmp_path / 's'),
                           '--distant', '127.0.0.1:9', *local_tls(pki))
    assert done.returncode == 0, done.stderr
    assert not os.path.exists(tmp_path / 's')


def test_workers_terminate_tls_too(vaurien, http_server, pki):
    proxy = vaurien('--workers', '2', *local_tls(pki),
                    backend=http_server.address)
    for _ in range(4):
        status, out, err = curl('--cacert', pki.ca,
                                'https://localhost:%d/' % proxy.port)
        assert (status, out) == (0, support.BODY), err


def test_workers_need_a_tcp_local(tmp_path):
    assert _error('--workers', '2', '--local', 'unix:%s' % (tmp_path / 's')) \
        == ('vaurien: error: --workers needs a TCP --local: processes cannot '
            'share a Unix socket with SO_REUSEPORT')


def test_abrupt_ends_are_quiet_and_leak_nothing(vaurien, echo_server, pki):
    """Clients that vanish mid-handshake, mid-stream without close_notify,
    or with a reset: no error in the log, and every socket is closed."""
    backend = tls_support.TLSEchoServer(tls_support.server_context(pki))
    try:
        _abrupt_ends(vaurien, backend, pki)
    finally:
        backend.close()


def _abrupt_ends(vaurien, backend, pki):
    proxy = vaurien(*local_tls(pki), '--distant-tls', '--distant-tls-ca',
                    pki.ca, '--local-tls-timeout', '2',
                    backend=backend.address)
    baseline = support.fd_count(proxy.proc.pid)
    for _ in range(5):
        # Half a hello, then gone.
        with socket.create_connection(proxy.address) as sock:
            sock.sendall(b'\x16\x03\x01\x00\xff\x01')
        # Data, then a bare FIN (no close_notify).
        raw = socket.create_connection(proxy.address, timeout=10)
        sock = tls_support.client_context(pki).wrap_socket(
            raw, server_hostname='localhost')
        assert exchange(sock, b'x' * 70000) == b'x' * 70000
        sock.sendall(b'more')
        sock.shutdown(socket.SHUT_RDWR)     # (Python's: no close_notify)
        sock.close()
        # A reset in the middle of a stream.
        raw = socket.create_connection(proxy.address, timeout=10)
        sock = tls_support.client_context(pki).wrap_socket(
            raw, server_hostname='localhost')
        sock.sendall(b'y' * 200000)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                        b'\x01\x00\x00\x00\x00\x00\x00\x00')
        sock.close()
    support.wait_fds(proxy.proc.pid, baseline)
    log = proxy.log()
    assert '[ERROR]' not in log and 'Traceback' not in log, log


def test_service_down_and_up_on_a_unix_socket(vaurien_inproc, echo_server,
                                              tmp_path):
    """``PUT /proxy`` down: the socket file stays and clients are refused,
    as by a real server that is down; up: served again on the same path."""
    path = str(tmp_path / 'svc.sock')
    proxy = start_controlled(vaurien_inproc, echo_server.address, '--local',
                             'unix:' + path)
    with proxy.connect() as sock:
        assert exchange(sock, b'up') == b'up'
    assert api(proxy.http_port, 'PUT', '/proxy',
               {'enabled': False}).status == 200
    assert os.path.exists(path)
    with pytest.raises(ConnectionRefusedError):
        proxy.connect()
    assert api(proxy.http_port, 'PUT', '/proxy',
               {'enabled': True}).status == 200
    with proxy.connect() as sock:
        assert exchange(sock, b'again') == b'again'
    assert api(proxy.http_port, 'GET', '/proxy').json['address'] == \
        'unix:' + path
    proxy.stop()
    assert not os.path.exists(path)
