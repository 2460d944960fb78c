"""Real servers for the protocol tests, started and stopped by fixtures.

Each server listens on 127.0.0.1 on a kernel-chosen port held for it by
``support.reserved_port`` until it listens, and is awaited by polling.
Session-scoped: each starts once per pytest process (once per xdist
worker that runs a test needing it), not once per test.
A test skips only when a server binary or client library is really not
installable here; under CI (``CI=true``, set by ``.ci/run``) every such
skip in this directory is turned into a failure, so a CI run cannot pass
without exercising every protocol.
"""
import http.server
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import support  # noqa: E402  (tests/ is on sys.path via tests/conftest.py)

HOST = support.HOST


def in_ci():
    """True when running under CI, where no protocol test may be skipped."""
    return os.environ.get('CI', '').strip().lower() in ('1', 'true', 'yes')


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Under CI, a skipped protocol test is a failed one."""
    outcome = yield
    report = outcome.get_result()
    if report.skipped and in_ci() and not hasattr(report, 'wasxfail'):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) \
            else str(report.longrepr)
        report.outcome = 'failed'
        report.longrepr = ('protocol test skipped under CI (CI=true), which '
                           'is not allowed: %s' % reason)


# Servers costly to start (MariaDB makes a fresh datadir): the tests using
# them share one xdist group, so that one worker starts the server once.
SERVER_GROUPS = {'mysql_backend': 'mariadb'}


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """Put each test using a server of SERVER_GROUPS in that server's
    xdist group, unless it is in a group already (``fixed_ports``).

    First, so that xdist's ``--dist loadgroup`` sees the mark.
    """
    for item in items:
        if item.get_closest_marker('xdist_group') is not None:
            continue
        for fixture, group in SERVER_GROUPS.items():
            if fixture in item.fixturenames:
                item.add_marker(pytest.mark.xdist_group(group))
                break


def need_binary(*names):
    """The path of the first of *names* found, else skip (fail under CI).

    ``VAURIEN_TESTS_MISSING`` (comma-separated names) makes binaries look
    missing, to test the CI gate itself.
    """
    hidden = set(os.environ.get('VAURIEN_TESTS_MISSING', '').split(','))
    for name in names:
        if name in hidden:
            continue
        path = shutil.which(name) or next(
            (p for p in ('/usr/sbin/' + name, '/usr/bin/' + name)
             if os.path.exists(p)), None)
        if path:
            return path
    pytest.skip('%s not installed (Debian: see .ci/debian-packages.txt)'
                % ' or '.join(names))


class Process:
    """A server subprocess, stopped with SIGTERM then SIGKILL."""

    def __init__(self, argv, what, cwd=None):
        self.what = what
        self.log = tempfile.NamedTemporaryFile(prefix='srv-', suffix='.log',
                                               delete=False)
        self.proc = subprocess.Popen(argv, cwd=cwd, stdin=subprocess.DEVNULL,
                                     stdout=self.log, stderr=subprocess.STDOUT)

    def output(self):
        with open(self.log.name, encoding='utf-8', errors='replace') as fh:
            return fh.read()

    def alive(self):
        if self.proc.poll() is not None:
            raise AssertionError('%s exited with %s: %s'
                                 % (self.what, self.proc.returncode,
                                    self.output()[-2000:]))
        return True

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.log.close()
        os.unlink(self.log.name)


def start_on_reserved_port(make_argv, what, ready, **kwargs):
    """Start a server that needs an explicit port on a reserved one."""
    with support.reserved_port() as port:
        proc = Process(make_argv(port), what, **kwargs)
        try:
            support.wait_until(lambda: proc.alive() and ready(port),
                               timeout=60, what=what)
        except AssertionError:
            proc.stop()
            raise
    return proc, port


# -- HTTP -----------------------------------------------------------------------

class _Handler(http.server.BaseHTTPRequestHandler):
    """Endpoints for every HTTP framing case.

    ``/size/N``: N bytes, Content-Length; ``/chunked/N``: N bytes in chunks;
    ``/close/N``: HTTP/1.0-style body ended by closing; ``/empty``: 204;
    ``/echo`` (POST): the body back; ``/host``: the Host header back.
    """
    protocol_version = 'HTTP/1.1'
    # Headers and body go out in separate writes: without TCP_NODELAY the
    # body would wait for the proxy's delayed ACK (40 ms a response).
    disable_nagle_algorithm = True

    def _payload(self):
        return b''.join(b'%09d\n' % i for i in range(
            int(self.path.rsplit('/', 1)[1]) // 10 + 1))[
            :int(self.path.rsplit('/', 1)[1])]

    def do_HEAD(self):
        self.send_response(200)
        self.send_header('Content-Length', '12345')
        self.end_headers()

    def do_GET(self):
        path = self.path
        if path.startswith('/chunked/'):
            body = self._payload()
            self.send_response(200)
            self.send_header('Transfer-Encoding', 'chunked')
            self.end_headers()
            for i in range(0, len(body), 7000):
                part = body[i:i + 7000]
                self.wfile.write(b'%x\r\n%s\r\n' % (len(part), part))
            self.wfile.write(b'0\r\nX-Trailer: yes\r\n\r\n')
            return
        if path.startswith('/close/'):
            body = self._payload()
            self.send_response(200)
            self.send_header('Connection', 'close')
            self.end_headers()
            self.wfile.write(body)
            self.close_connection = True
            return
        if path == '/empty':
            self.send_response(204)
            self.end_headers()
            return
        if path == '/host':
            body = (self.headers.get('Host') or '').encode()
        elif path.startswith('/size/'):
            body = self._payload()
        else:
            body = b'hello from the backend\n'
        self.send_response(200)
        self.send_header('Content-Type', 'text/plain')
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        if self.headers.get('Transfer-Encoding', '').lower() == 'chunked':
            body = b''
            while True:
                size = int(self.rfile.readline().split(b';')[0], 16)
                if not size:
                    self.rfile.readline()
                    break
                body += self.rfile.read(size)
                self.rfile.readline()
        else:
            body = self.rfile.read(int(self.headers.get('Content-Length', 0)))
        self.send_response(200)
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def payload(size):
    """What ``/size/N`` (and the other sized endpoints) return."""
    return b''.join(b'%09d\n' % i for i in range(size // 10 + 1))[:size]


@pytest.fixture(scope='session')
def http_backend():
    """A real threaded HTTP/1.1 server (http.server) on 127.0.0.1:0."""
    server = http.server.ThreadingHTTPServer((HOST, 0), _Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever,
                              kwargs={'poll_interval': 0.05}, daemon=True)
    thread.start()
    server.address = (HOST, server.server_address[1])
    yield server
    server.shutdown()
    server.server_close()


# -- Redis ----------------------------------------------------------------------

@pytest.fixture(scope='session')
def redis_backend(tmp_path_factory):
    """A real ``redis-server`` (no persistence) on a reserved port."""
    binary = need_binary('redis-server')
    pytest.importorskip('redis')
    workdir = str(tmp_path_factory.mktemp('redis'))
    proc, port = start_on_reserved_port(
        lambda port: [binary, '--port', str(port), '--bind', HOST,
                      '--save', '', '--appendonly', 'no', '--dir', workdir,
                      '--proto-max-bulk-len', '512mb'],
        'redis-server', support.port_open)
    proc.address = (HOST, port)
    yield proc
    proc.stop()


# -- memcached -------------------------------------------------------------------

@pytest.fixture(scope='session')
def memcached_backend():
    """A real ``memcached`` (items up to 32 MB) on a reserved port."""
    binary = need_binary('memcached')
    pytest.importorskip('pymemcache')
    argv = [binary, '-l', HOST, '-U', '0', '-m', '256', '-I', '32m']
    if os.geteuid() == 0:
        argv += ['-u', 'root']
    proc, port = start_on_reserved_port(
        lambda port: argv + ['-p', str(port)], 'memcached',
        support.port_open)
    proc.address = (HOST, port)
    yield proc
    proc.stop()


# -- TLS -----------------------------------------------------------------------------

@pytest.fixture(scope='session')
def tls_cert(tmp_path_factory):
    """``(cert, key)`` paths of a self-signed certificate for localhost."""
    openssl = need_binary('openssl')
    base = tmp_path_factory.mktemp('tls')
    cert, key = str(base / 'cert.pem'), str(base / 'key.pem')
    subprocess.run([openssl, 'req', '-x509', '-newkey', 'rsa:2048',
                    '-nodes', '-keyout', key, '-out', cert, '-days', '2',
                    '-subj', '/CN=localhost'], check=True,
                   capture_output=True, timeout=60)
    return cert, key


# -- MariaDB ---------------------------------------------------------------------

MYSQL_USER, MYSQL_PASSWORD = 'vaurien', 'chaos-secret'


@pytest.fixture(scope='session')
def mysql_backend(tmp_path_factory, tls_cert):
    """A real MariaDB server: a fresh datadir, a user with a password.

    ``.address`` is its TCP address, ``.socket`` its Unix socket; the tests
    log in as ``MYSQL_USER``.
    """
    install = need_binary('mariadb-install-db', 'mysql_install_db')
    server = need_binary('mariadbd', 'mysqld')
    pymysql = pytest.importorskip('pymysql')
    base = str(tmp_path_factory.mktemp('mariadb'))
    datadir = os.path.join(base, 'data')
    user = ['--user=root'] if os.geteuid() == 0 else []
    done = subprocess.run(
        [install, '--no-defaults', '--datadir=' + datadir,
         '--auth-root-authentication-method=normal', '--skip-test-db']
        + user, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise AssertionError('mariadb-install-db failed: %s'
                             % (done.stdout + done.stderr)[-2000:])
    sock = os.path.join(base, 'mysqld.sock')
    proc, port = start_on_reserved_port(
        lambda port: [server, '--no-defaults', '--datadir=' + datadir,
                      '--socket=' + sock, '--port=%d' % port,
                      '--bind-address=' + HOST, '--skip-log-bin',
                      '--innodb-buffer-pool-size=32M',
                      '--max-allowed-packet=64M',
                      '--ssl-cert=' + tls_cert[0], '--ssl-key=' + tls_cert[1],
                      '--pid-file=' + os.path.join(base, 'mysqld.pid'),
                      '--log-error=' + os.path.join(base, 'error.log')]
        + user, 'mariadbd', support.port_open, cwd=base)
    admin = pymysql.connect(unix_socket=sock, user='root', password='')
    with admin.cursor() as cur:
        cur.execute("CREATE USER '%s'@'%%' IDENTIFIED BY '%s'"
                    % (MYSQL_USER, MYSQL_PASSWORD))
        cur.execute("GRANT ALL ON *.* TO '%s'@'%%'" % MYSQL_USER)
        cur.execute('CREATE DATABASE chaos')
    admin.close()
    proc.address = (HOST, port)
    proc.socket = sock      # its Unix socket
    yield proc
    proc.stop()


# -- SMTP -------------------------------------------------------------------------

class SMTPBackend:
    """An aiosmtpd server in a thread, keeping every message it accepts."""

    def __init__(self, tls_context=None):
        from aiosmtpd.controller import Controller
        self.messages = []
        outer = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):
                outer.messages.append(envelope)
                return '250 Message accepted for delivery'

        with support.reserved_port() as port:
            self.controller = Controller(Handler(), hostname=HOST, port=port,
                                         data_size_limit=64 << 20,
                                         ready_timeout=30,
                                         tls_context=tls_context)
            self.controller.start()
        self.address = (HOST, port)

    def close(self):
        self.controller.stop()


@pytest.fixture(scope='session')
def smtp_backend():
    """A real SMTP server (aiosmtpd) on a reserved port."""
    pytest.importorskip('aiosmtpd')
    server = SMTPBackend()
    yield server
    server.close()


@pytest.fixture(scope='session')
def smtp_tls_backend(tls_cert):
    """A real SMTP server (aiosmtpd) that offers STARTTLS."""
    pytest.importorskip('aiosmtpd')
    import ssl
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*tls_cert)
    server = SMTPBackend(tls_context=context)
    yield server
    server.close()


# -- helpers for the tests -----------------------------------------------------------

class Timer:
    """``with Timer() as t: ...``; then ``t.elapsed`` in seconds."""

    def __enter__(self):
        self.start = time.monotonic()
        return self

    def __exit__(self, *exc):
        self.elapsed = time.monotonic() - self.start


RECORDER = 'recorder.Recorder'


@pytest.fixture
def recorder(tmp_path):
    """``(args, read)``: vaurien arguments for the recording handler, and a
    function returning its records ``[(direction, bytes), ...]``."""
    path = str(tmp_path / 'records')

    def read():
        import recorder as module
        return module.load(path)
    args = ['--behavior', '100:' + RECORDER,
            '--handlers.%s.path' % RECORDER, path]
    return args, read
