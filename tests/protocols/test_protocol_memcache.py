"""--protocol memcache against a real memcached, with pymemcache."""
import socket

import pytest

from conftest import HERE, Timer

pymemcache = pytest.importorskip('pymemcache')
from pymemcache.client.base import Client  # noqa: E402
from pymemcache.exceptions import MemcacheServerError  # noqa: E402

pytestmark = pytest.mark.timeout(90)


def start(factory, backend, *args):
    return factory('--protocol', 'memcache', *args, backend=backend.address,
                   extra_paths=[HERE])


def client(proxy):
    return Client(proxy.address, connect_timeout=10, timeout=30,
                  default_noreply=False)


def test_dummy_is_transparent(vaurien_inproc, memcached_backend):
    proxy = start(vaurien_inproc, memcached_backend)
    mc = client(proxy)
    assert mc.set('a', b'1')
    assert mc.add('b', b'2')
    assert not mc.add('b', b'3')
    assert mc.replace('b', b'22')
    assert mc.append('b', b'x') and mc.prepend('b', b'y')
    assert mc.get('b') == b'y22x'
    value, cas = mc.gets('b')
    assert mc.cas('b', b'new', cas)
    assert not mc.cas('b', b'newer', cas)       # EXISTS
    big = bytes(range(256)) * (16 * 4096)        # 16 MiB
    assert mc.set('big', big)
    keys = ['k%d' % i for i in range(300)]
    mc.set_many({k: k.encode() * 10 for k in keys})
    got = mc.get_many(keys + ['missing', 'big'])
    assert len(got) == 301 and got['big'] == big and 'missing' not in got
    assert mc.incr('a', 5) == 6
    assert mc.delete('a') and mc.get('a') is None
    mc.set('quiet', b'q', noreply=True)
    assert mc.get('quiet') == b'q'
    assert b'pid' in mc.stats()
    assert mc.version()


def test_each_call_gets_one_whole_message(vaurien_inproc, memcached_backend,
                                          recorder):
    args, records = recorder
    # Messages up to --max-message are whole; 1.4 MB is above the default.
    proxy = start(vaurien_inproc, memcached_backend, *args,
                  '--max-message', '4M')
    value = b'\r\nEND\r\n' * 200000               # tricky bytes, 1.4 MB
    with socket.create_connection(proxy.address, timeout=10) as sock:
        sock.sendall(b'set t 0 0 %d\r\n%s\r\nget t nothing t\r\n'
                     b'mn\r\n' % (len(value), value))
        expected = (b'STORED\r\n' + (b'VALUE t 0 %d\r\n%s\r\n'
                                     % (len(value), value)) * 2
                    + b'END\r\nMN\r\n')
        got = b''
        while len(got) < len(expected):
            data = sock.recv(1 << 20)
            assert data
            got += data
    assert got == expected
    ups = [d for k, d in records() if k == 'up']
    downs = [d for k, d in records() if k == 'down']
    assert ups == [b'set t 0 0 %d\r\n%s\r\n' % (len(value), value),
                   b'get t nothing t\r\n', b'mn\r\n']
    assert downs == [b'STORED\r\n', expected[8:-4], b'MN\r\n']


def test_delay_holds_each_message_once(vaurien_inproc, memcached_backend):
    mc_direct = Client(memcached_backend.address)
    mc_direct.set('big', b'z' * (8 << 20))
    proxy = start(vaurien_inproc, memcached_backend, '--behavior', '100:delay',
                  '--handlers.delay.sleep', '0.5', '--handlers.delay.before',
                  'false')
    mc = client(proxy)
    with Timer() as t:
        assert len(mc.get('big')) == 8 << 20
    assert 0.5 - 0.05 <= t.elapsed < 20
    before = start(vaurien_inproc, memcached_backend, '--behavior',
                   '100:delay', '--handlers.delay.sleep', '0.3')
    with socket.create_connection(before.address, timeout=10) as sock:
        with Timer() as t:
            sock.sendall(b'version\r\nversion\r\nversion\r\n')
            got = b''
            while got.count(b'\r\n') < 3:
                got += sock.recv(4096)
    assert t.elapsed >= 3 * 0.3 - 0.05


def test_error_is_a_server_error_and_the_stream_stays_in_step(
        vaurien_inproc, memcached_backend):
    broken = start(vaurien_inproc, memcached_backend, '--behavior',
                   '100:error')
    with pytest.raises(MemcacheServerError, match='vaurien'):
        client(broken).get('x')
    flaky = start(vaurien_inproc, memcached_backend, '--behavior', '50:error',
                  '--handlers.error.direction', 'downstream', '--seed', '3')
    mc = client(flaky)
    outcomes = set()
    for i in range(40):
        try:
            mc.set('key%d' % i, b'value%d' % i)
            assert mc.get('key%d' % i) == b'value%d' % i
            outcomes.add('ok')
        except MemcacheServerError:
            outcomes.add('error')
    assert outcomes == {'ok', 'error'}
    for attempt in range(20):
        try:
            assert client(flaky).get('key0') == b'value0'
            break
        except MemcacheServerError:
            continue
    else:
        pytest.fail('no request succeeded on 20 fresh connections')
