"""Unix sockets on both sides, with real servers and their own clients.

``--local unix:PATH`` and ``--distant unix:PATH`` (vaurien/endpoints.py):
redis-server on a Unix socket reached with ``redis-cli -s`` and redis-py,
MariaDB's socket reached with the ``mariadb`` client, the stale-file
replacement at start, the removal at stop and ``--local-mode``.
"""
import os
import socket
import stat
import subprocess

import pytest

import support
from conftest import MYSQL_PASSWORD, MYSQL_USER, Process, need_binary


@pytest.fixture
def redis_unix(tmp_path):
    """A real redis-server listening only on a Unix socket."""
    binary = need_binary('redis-server')
    path = str(tmp_path / 'redis.sock')
    proc = Process([binary, '--port', '0', '--unixsocket', path,
                    '--unixsocketperm', '700', '--save', '', '--appendonly',
                    'no', '--dir', str(tmp_path)], 'redis-server')

    def ready():
        proc.alive()
        try:
            with socket.socket(socket.AF_UNIX) as sock:
                sock.connect(path)
            return True
        except OSError:
            return False
    support.wait_until(ready, timeout=30, what='redis-server')
    proc.path = path
    yield proc
    proc.stop()


def _cli(path, *args):
    binary = need_binary('redis-cli')
    done = subprocess.run([binary, '-s', path] + list(args),
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_redis_over_unix_sockets_both_sides(vaurien_inproc, redis_unix,
                                            tmp_path):
    local = str(tmp_path / 'proxy.sock')
    proxy = vaurien_inproc('--local', 'unix:' + local, '--distant',
                           'unix:' + redis_unix.path, '--local-mode', '0660',
                           '--protocol', 'redis')
    assert proxy.address == local
    assert stat.S_IMODE(os.stat(local).st_mode) == 0o660
    assert 'proxying unix:%s -> unix:%s' % (local, redis_unix.path) \
        in proxy.log()
    assert _cli(local, 'PING') == 'PONG'
    assert _cli(local, 'SET', 'chaos', 'monkey') == 'OK'
    assert _cli(local, 'GET', 'chaos') == 'monkey'
    redis = pytest.importorskip('redis')
    client = redis.Redis(unix_socket_path=local, socket_timeout=10)
    try:
        value = os.urandom(1 << 20)
        assert client.set('big', value)
        assert client.get('big') == value
        assert client.incr('counter') == 1
    finally:
        client.close()
    proxy.stop()
    assert not os.path.exists(local), 'the socket file outlived the proxy'


def test_faults_apply_over_unix_sockets(vaurien_inproc, redis_unix, tmp_path):
    local = str(tmp_path / 'proxy.sock')
    vaurien_inproc('--local', 'unix:' + local, '--distant',
                   'unix:' + redis_unix.path, '--protocol', 'redis',
                   '--behavior', '100:error')
    redis = pytest.importorskip('redis')
    client = redis.Redis(unix_socket_path=local, socket_timeout=10)
    try:
        with pytest.raises(redis.exceptions.ResponseError):
            client.ping()
    finally:
        client.close()


def test_stale_socket_file_is_replaced(vaurien_inproc, redis_unix, tmp_path):
    local = str(tmp_path / 'proxy.sock')
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(local)        # a socket file nobody listens on: a dead run's
    stale.close()
    assert os.path.exists(local)
    proxy = vaurien_inproc('--local', 'unix:' + local, '--distant',
                           'unix:' + redis_unix.path)
    assert 'removing the stale socket file %s' % local in proxy.log()
    assert _cli(local, 'PING') == 'PONG'


def test_live_socket_and_plain_file_are_refused(redis_unix, tmp_path):
    done = support.run_cli('--local', 'unix:' + redis_unix.path, '--distant',
                           '127.0.0.1:9')
    assert done.returncode == 2
    assert done.stderr.strip() == (
        'vaurien: error: cannot listen on unix:%s: address already in use '
        '(a process listens on it)' % redis_unix.path)
    plain = tmp_path / 'plain'
    plain.write_text('data')
    done = support.run_cli('--local', 'unix:%s' % plain, '--distant',
                           '127.0.0.1:9')
    assert done.returncode == 2
    assert done.stderr.strip() == (
        'vaurien: error: cannot listen on unix:%s: %s exists and is not a '
        'socket' % (plain, plain))
    assert plain.read_text() == 'data'
    done = support.run_cli('--local', 'unix:/x', '--local-mode', '999',
                           '--distant', '127.0.0.1:9')
    assert done.returncode == 2
    assert done.stderr.strip() == ("vaurien: error: --local-mode expects "
                                   "permissions in octal, like 0660, got "
                                   "'999'")


def test_mariadb_client_over_a_unix_socket(vaurien_inproc, mysql_backend,
                                           tmp_path):
    client = need_binary('mariadb', 'mysql')
    local = str(tmp_path / 'mysql.sock')
    vaurien_inproc('--local', 'unix:' + local, '--distant',
                   'unix:' + mysql_backend.socket, '--protocol', 'mysql')

    def query(sql):
        return subprocess.run(
            [client, '--no-defaults', '--protocol=socket', '-S', local,
             '-u', MYSQL_USER, '-p' + MYSQL_PASSWORD, '-N', '-B', '-e', sql],
            capture_output=True, text=True, timeout=30)
    done = query('SELECT 6 * 7')
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == '42'
    pymysql = pytest.importorskip('pymysql')
    conn = pymysql.connect(unix_socket=local, user=MYSQL_USER,
                           password=MYSQL_PASSWORD, database='chaos')
    try:
        with conn.cursor() as cur:
            cur.execute('SELECT REPEAT("x", 100000)')
            assert cur.fetchone()[0] == 'x' * 100000
    finally:
        conn.close()


def test_mariadb_errors_over_a_unix_socket(vaurien_inproc, mysql_backend,
                                           tmp_path):
    client = need_binary('mariadb', 'mysql')
    local = str(tmp_path / 'mysql.sock')
    vaurien_inproc('--local', 'unix:' + local, '--distant',
                   'unix:' + mysql_backend.socket, '--protocol', 'mysql',
                   '--behavior', '100:error', '--handlers.error.direction',
                   'downstream')
    done = subprocess.run(
        [client, '--no-defaults', '--protocol=socket', '-S', local,
         '-u', MYSQL_USER, '-p' + MYSQL_PASSWORD, '-e', 'SELECT 1'],
        capture_output=True, text=True, timeout=30)
    assert done.returncode != 0
    assert 'ERROR' in done.stderr, done.stderr
