"""A real TLS backend: redis-server's TLS port, behind ``--distant-tls``.

redis-cli and redis-py speak plain Redis to the proxy, which speaks TLS to
redis-server (verifying its certificate); with ``--local-tls-cert`` too,
they speak TLS to the proxy (``redis-cli --tls``), and ``--protocol redis``
errors come back inside TLS.
"""
import subprocess

import pytest

import support
import tls_support
from conftest import need_binary, start_on_reserved_port


@pytest.fixture(scope='module')
def pki(tmp_path_factory):
    return tls_support.make_pki(str(tmp_path_factory.mktemp('pki')))


@pytest.fixture(scope='module')
def redis_tls(pki, tmp_path_factory):
    """redis-server listening only on a TLS port (no client certificate
    required)."""
    binary = need_binary('redis-server')
    workdir = str(tmp_path_factory.mktemp('redis-tls'))
    proc, port = start_on_reserved_port(
        lambda port: [binary, '--port', '0', '--tls-port', str(port),
                      '--bind', support.HOST, '--tls-cert-file', pki.cert,
                      '--tls-key-file', pki.key, '--tls-ca-cert-file', pki.ca,
                      '--tls-auth-clients', 'no', '--save', '',
                      '--appendonly', 'no', '--dir', workdir],
        'redis-server (TLS)', support.port_open)
    proc.address = (support.HOST, port)
    yield proc
    proc.stop()


def _cli(*args):
    done = subprocess.run([need_binary('redis-cli')] + list(args),
                          capture_output=True, text=True, timeout=30)
    return done.returncode, done.stdout.strip(), done.stderr.strip()


def test_plain_clients_to_a_tls_redis(vaurien_inproc, redis_tls, pki):
    proxy = vaurien_inproc('--distant', 'localhost:%d' % redis_tls.address[1],
                           '--distant-tls', '--distant-tls-ca', pki.ca,
                           '--protocol', 'redis')
    port = str(proxy.port)
    assert _cli('-p', port, 'PING')[1] == 'PONG'
    assert _cli('-p', port, 'SET', 'through', 'tls')[1] == 'OK'
    assert _cli('-p', port, 'GET', 'through')[1] == 'tls'
    redis = pytest.importorskip('redis')
    client = redis.Redis(host=support.HOST, port=proxy.port, socket_timeout=10)
    try:
        assert client.set('big', b'x' * 300000)
        assert client.get('big') == b'x' * 300000
    finally:
        client.close()


def test_redis_errors_inside_tls_on_both_sides(vaurien_inproc, redis_tls, pki):
    proxy = vaurien_inproc('--distant', 'localhost:%d' % redis_tls.address[1],
                           '--distant-tls', '--distant-tls-ca', pki.ca,
                           '--local-tls-cert', pki.cert,
                           '--local-tls-key', pki.key,
                           '--protocol', 'redis', '--behavior', '100:error')
    status, out, err = _cli('--tls', '--cacert', pki.ca, '-h', 'localhost',
                            '-p', str(proxy.port), 'PING')
    assert out.startswith('ERR') or out.startswith('(error) ERR'), (out, err)
    redis = pytest.importorskip('redis')
    client = redis.Redis(host='localhost', port=proxy.port, ssl=True,
                         ssl_ca_certs=pki.ca, socket_timeout=10)
    try:
        with pytest.raises(redis.exceptions.ResponseError):
            client.ping()
    finally:
        client.close()
    # The same proxy without faults: TLS to it, TLS from it, real answers.
    clean = vaurien_inproc('--distant', 'localhost:%d' % redis_tls.address[1],
                           '--distant-tls', '--distant-tls-ca', pki.ca,
                           '--local-tls-cert', pki.cert,
                           '--local-tls-key', pki.key,
                           '--protocol', 'redis')
    assert _cli('--tls', '--cacert', pki.ca, '-h', 'localhost', '-p',
                str(clean.port), 'PING')[1] == 'PONG'
