"""--protocol redis against a real redis-server, with redis-py."""
import socket
import warnings

import pytest

from conftest import HERE, Timer

redis = pytest.importorskip('redis')

pytestmark = pytest.mark.timeout(90)


def client(proxy, **kwargs):
    # lib_name=None (no CLIENT SETINFO on connect) is deprecated in newer
    # redis-py in favour of driver_info; both spellings mean the same here.
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', DeprecationWarning)
        return redis.Redis(host=proxy.address[0], port=proxy.address[1],
                           socket_timeout=30, **kwargs)


def quiet_client(proxy, **kwargs):
    """A client that sends only the commands it is asked to: no CLIENT
    SETINFO on connect (driver_info=None in redis-py 7.1+, lib_name=None
    before), so that each command is one exchange of the test's own."""
    try:
        return client(proxy, protocol=2, driver_info=None, **kwargs)
    except TypeError:
        return client(proxy, protocol=2, lib_name=None, lib_version=None,
                      **kwargs)


def start(factory, backend, *args):
    return factory('--protocol', 'redis', *args, backend=backend.address,
                   extra_paths=[HERE])


NESTED = "return {1, {2, {3, {'deep', {}}}}, 'x', {'a', {'b'}}}"


def test_dummy_is_transparent(vaurien_inproc, redis_backend):
    proxy = start(vaurien_inproc, redis_backend)
    r = client(proxy)
    assert r.ping()
    big = bytes(range(256)) * (20 * 4096)           # 20 MiB, every byte value
    r.set('big', big)
    assert r.get('big') == big
    pipe = r.pipeline(transaction=False)
    for i in range(200):
        pipe.set('k%d' % i, i)
        pipe.incr('k%d' % i)
    assert pipe.execute() == [x for i in range(200) for x in (True, i + 1)]
    with r.pipeline(transaction=True) as tx:       # MULTI ... EXEC
        tx.set('a', 1).incr('a').lrange('nothing', 0, -1)
        assert tx.execute() == [True, 2, []]
    assert r.eval(NESTED, 0) == [1, [2, [3, [b'deep', []]]], b'x', [b'a', [b'b']]]
    assert r.get('missing') is None
    r.rpush('list', *range(1000))
    assert len(r.lrange('list', 0, -1)) == 1000
    with pytest.raises(redis.exceptions.ResponseError):
        r.execute_command('NOSUCHCOMMAND')
    assert r.ping()


def test_resp3_and_inline(vaurien_inproc, redis_backend):
    proxy = start(vaurien_inproc, redis_backend)
    r = client(proxy, protocol=3)
    r.hset('h', mapping={'f1': 'v1', 'f2': 'v2'})
    assert r.hgetall('h') == {b'f1': b'v1', b'f2': b'v2'}   # a RESP3 map
    r.sadd('s', 'a', 'b')
    assert r.smembers('s') == {b'a', b'b'}                  # a RESP3 set
    assert r.execute_command('HELLO', 3)[b'proto'] == 3
    # Inline commands, several in one write, answered in order.
    with socket.create_connection(proxy.address, timeout=10) as sock:
        sock.sendall(b'PING\r\nECHO hi\r\nSET inl 5\r\nGET inl\r\n')
        got = b''
        while got.count(b'\r\n') < 5:
            got += sock.recv(4096)
    assert got == b'+PONG\r\n$2\r\nhi\r\n+OK\r\n$1\r\n5\r\n'


def test_each_call_gets_one_whole_message(vaurien_inproc, redis_backend,
                                          recorder):
    args, records = recorder
    proxy = start(vaurien_inproc, redis_backend, *args, '--max-message', '8M')
    r = client(proxy)
    value = b'v' * (3 << 20)
    pipe = r.pipeline(transaction=False)
    pipe.set('one', value).get('one').eval(NESTED, 0)
    pipe.execute()
    r.close()
    got = records()
    up = [data for kind, data in got if kind == 'up']
    down = [data for kind, data in got if kind == 'down']
    commands = up[-3:]          # after the client's own HELLO / CLIENT
    assert commands[0].startswith(b'*3\r\n$3\r\nSET\r\n$3\r\none\r\n')
    assert commands[0].endswith(value + b'\r\n')
    assert commands[1] == b'*2\r\n$3\r\nGET\r\n$3\r\none\r\n'
    assert commands[2].startswith(b'*3\r\n$4\r\nEVAL')
    assert down[-3:] == [b'+OK\r\n', b'$%d\r\n%s\r\n' % (len(value), value),
                         b'*4\r\n:1\r\n*2\r\n:2\r\n*2\r\n:3\r\n*2\r\n'
                         b'$4\r\ndeep\r\n*0\r\n$1\r\nx\r\n*2\r\n$1\r\na\r\n'
                         b'*1\r\n$1\r\nb\r\n']


def test_delay_holds_each_message_once(vaurien_inproc, redis_backend):
    proxy = start(vaurien_inproc, redis_backend, '--behavior', '100:delay',
                  '--handlers.delay.sleep', '0.4')
    r = client(proxy, protocol=2, lib_name=None, lib_version=None)
    r.set('big', b'x' * (8 << 20))
    pipe = r.pipeline(transaction=False)
    pipe.get('a').get('b').get('c')
    with Timer() as t:
        pipe.execute()
    # Three commands sent in one write: three picks, three delays.
    assert t.elapsed >= 3 * 0.4 - 0.05
    slow = start(vaurien_inproc, redis_backend, '--behavior', '100:delay',
                 '--handlers.delay.sleep', '0.5', '--handlers.delay.before',
                 'false')
    # No handshake commands (HELLO, CLIENT SETINFO): only GET is delayed.
    r2 = client(slow, protocol=2, lib_name=None, lib_version=None)
    with Timer() as t:
        assert len(r2.get('big')) == 8 << 20
    # One 8 MiB reply is one message: one delay, not one per read.
    assert 0.5 - 0.05 <= t.elapsed < 20


def test_error_is_a_redis_error_and_the_stream_stays_in_step(
        vaurien_inproc, redis_backend):
    broken = start(vaurien_inproc, redis_backend, '--behavior', '100:error')
    r = client(broken)
    with pytest.raises(redis.exceptions.ResponseError, match='vaurien'):
        r.get('anything')
    flaky = start(vaurien_inproc, redis_backend, '--behavior', '50:error',
                  '--handlers.error.direction', 'downstream', '--seed', '7')
    # (With --pick exchange an error may answer the connection's own
    # set-up commands, which redis-py raises before it sends the SET.)
    r = quiet_client(flaky)
    outcomes = []
    for i in range(40):
        try:
            r.set('key%d' % i, 'value%d' % i)
            outcomes.append(('ok', i))
        except redis.exceptions.ResponseError as exc:
            assert 'vaurien' in str(exc)
            outcomes.append(('error', i))
    assert {o for o, _ in outcomes} == {'ok', 'error'}
    # Every reply matched its own command: the stream never slipped.
    direct = redis.Redis(*redis_backend.address)
    for outcome, i in outcomes:
        assert direct.get('key%d' % i) == b'value%d' % i
    # And a fresh connection through the same proxy works.
    for attempt in range(20):
        fresh = client(flaky)
        try:
            assert fresh.get('key0') == b'value0'
            break
        except redis.exceptions.ResponseError:
            continue
    else:
        pytest.fail('no request succeeded on 20 fresh connections')


def test_pipelined_messages_keep_one_pick_and_one_event_each(
        vaurien_inproc, redis_backend, tmp_path):
    """Messages already whole in the buffer are sent together when they
    pass through, but each still has its own pick and event line, and a
    handler picked between them sees its message in order."""
    import json
    events = tmp_path / 'events.log'
    proxy = start(vaurien_inproc, redis_backend, '--behavior', '50:delay',
                  '--handlers.delay.sleep', '0', '--seed', '7',
                  '--event-log', str(events), '--event-log-flush')
    count = 300
    burst = b''.join(b'ECHO %d\r\n' % i for i in range(count))
    expected = b''.join(b'$%d\r\n%d\r\n' % (len(str(i)), i)
                        for i in range(count))
    with socket.create_connection(proxy.address, timeout=10) as sock:
        sock.sendall(burst)
        got = b''
        while len(got) < len(expected):
            more = sock.recv(65536)
            assert more
            got += more
    assert got == expected
    proxy.stop()
    lines = [json.loads(line) for line in events.read_text().splitlines()]
    data = [e for e in lines if e['event'] == 'data']
    for direction in ('upstream', 'downstream'):
        picked = [e['handler'] for e in data if e['direction'] == direction]
        # One line per message (the end of stream is not a pick).
        assert len(picked) == count
        assert {'delay', 'dummy'} <= set(picked)
    # A pass-through line counts its own message's bytes.
    up = [(i, e['bytes']) for i, e in enumerate(
        e for e in data if e['direction'] == 'upstream')
        if e['handler'] == 'dummy']
    assert up and all(size == len(b'ECHO %d\r\n' % i) for i, size in up)


def test_pipelined_small_messages_then_one_longer_than_max_message(
        vaurien_inproc, redis_backend, tmp_path):
    """A message longer than --max-message behind gathered pass-through
    messages: the gathered ones go first, then the whole long one, in
    order, counted whole in its event."""
    import json
    events = tmp_path / 'events.log'
    proxy = start(vaurien_inproc, redis_backend, '--max-message', '1k',
                  '--event-log', str(events), '--event-log-flush')
    value = b'v' * 20000
    burst = (b'PING\r\n' * 5
             + b'*3\r\n$3\r\nSET\r\n$4\r\nlong\r\n$%d\r\n%s\r\n'
             % (len(value), value)
             + b'PING\r\n' * 5 + b'*2\r\n$3\r\nGET\r\n$4\r\nlong\r\n')
    expected = (b'+PONG\r\n' * 5 + b'+OK\r\n' + b'+PONG\r\n' * 5
                + b'$%d\r\n%s\r\n' % (len(value), value))
    with socket.create_connection(proxy.address, timeout=10) as sock:
        sock.sendall(burst)
        got = b''
        while len(got) < len(expected):
            more = sock.recv(65536)
            assert more
            got += more
    assert got == expected
    proxy.stop()
    lines = [json.loads(line) for line in events.read_text().splitlines()]
    up = [e['bytes'] for e in lines if e['event'] == 'data'
          and e['direction'] == 'upstream']
    assert sum(up) == len(burst)
    assert len(up) == 12
