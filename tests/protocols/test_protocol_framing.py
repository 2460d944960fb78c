"""Framing of every built-in protocol, without sockets (see harness.py).

Each conversation is fed in one piece, byte by byte and in odd-sized
chunks: the messages must come out the same whatever the reads were.
"""
import logging
import struct

import pytest

from harness import messages, pair, split, whole

from vaurien.protocols import build_protocol

pytestmark = pytest.mark.timeout(30)

CHUNKS = (1, 7, 1 << 20)


def frames(name, client=(), backend=(), chunk=1 << 20, **options):
    """The client and backend messages of a conversation, read in *chunk*s.

    The backend side is read after the client side, as a server answers
    only once it has the requests.
    """
    protocol = build_protocol(name, {name: options} if options else None)
    _, up, down = pair(protocol, split(b''.join(client), chunk),
                       split(b''.join(backend), chunk))
    return messages(up), messages(down)


def check(name, client, backend, **options):
    for chunk in CHUNKS:
        up, down = frames(name, client, backend, chunk, **options)
        assert up == list(client), 'chunk %d' % chunk
        assert down == list(backend), 'chunk %d' % chunk


def test_http():
    check('http', [
        b'GET / HTTP/1.1\r\nHost: a\r\n\r\n',
        b'HEAD /h HTTP/1.1\r\nHost: a\r\n\r\n',
        b'POST /p HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello',
        b'POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n'
        b'3;ext=1\r\nabc\r\n0\r\nTrailer: x\r\n\r\n',
        b'GET /gone HTTP/1.0\r\n\r\n',
    ], [
        b'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok',
        b'HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n',      # HEAD
        b'HTTP/1.1 100 Continue\r\n\r\n',
        b'HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n'
        b'5\r\nhello\r\n0\r\n\r\n',
        b'HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n',
        b'HTTP/1.0 200 OK\r\n\r\nuntil the end',                 # close
    ])


def test_http_204_and_obsolete_folding():
    check('http', [b'GET / HTTP/1.1\r\nX-Long: a\r\n  b\r\n\r\n'],
          [b'HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n'])


def test_http_overwrite_host_header():

    class Proxy:
        distant = ('backend.internal', 8080)
    protocol = build_protocol('http', {'http': {'overwrite_host_header':
                                                'true'}})
    protocol.proxy = Proxy()
    _, up, _ = pair(protocol, [b'GET / HTTP/1.1\r\nhost: public\r\n'
                               b'Accept: */*\r\n\r\nGET /2 HTTP/1.1\r\n\r\n'])
    assert messages(up) == [
        b'GET / HTTP/1.1\r\nHost: backend.internal:8080\r\n'
        b'Accept: */*\r\n\r\n',
        b'GET /2 HTTP/1.1\r\nHost: backend.internal:8080\r\n\r\n']


def test_redis():
    check('redis', [
        b'*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nv\r\nv\r\r\n',
        b'PING\r\n',
        b'*1\r\n$4\r\nPING\r\n',
    ], [
        b'+OK\r\n', b'-ERR no\r\n', b':42\r\n', b'$-1\r\n', b'*-1\r\n',
        b'$6\r\nab\r\ncd\r\n',
        b'*3\r\n*2\r\n:1\r\n*1\r\n*0\r\n$1\r\nx\r\n*1\r\n+y\r\n',
        b'%2\r\n+a\r\n:1\r\n+b\r\n~2\r\n,1.5\r\n#t\r\n',
        b'_\r\n', b'(12345678901234567890\r\n', b'!5\r\nerror\r\n',
        b'=8\r\ntxt:abcd\r\n', b'>2\r\n+push\r\n:1\r\n',
        b'|1\r\n+ttl\r\n:3\r\n$1\r\nv\r\n',              # attribute + value
        b'$?\r\n;4\r\nHell\r\n;1\r\no\r\n;0\r\n',          # streamed string
        b'*?\r\n:1\r\n*?\r\n:2\r\n.\r\n.\r\n',             # streamed arrays
    ])


def test_redis_deep_nesting_needs_no_recursion():
    depth = 50000
    reply = b'*1\r\n' * depth + b':1\r\n'
    up, down = frames('redis', [], [reply, b'+OK\r\n'], chunk=1 << 16)
    assert down == [reply, b'+OK\r\n']


def test_memcache():
    check('memcache', [
        b'set k 0 0 5\r\nab\r\nc\r\n', b'cas k 1 0 2 99 noreply\r\nxy\r\n',
        b'get a b c\r\n', b'ms k 3 T0\r\nabc\r\n', b'mg k v\r\n',
        b'incr n 1\r\n',
    ], [
        b'STORED\r\n',
        b'VALUE a 0 3\r\nEND\r\nVALUE c 1 0 7\r\n\r\nEND\r\n',
        b'VA 2 f1\r\nhi\r\n', b'HD\r\n', b'EN\r\n', b'END\r\n', b'5\r\n',
        b'STAT pid 1\r\nSTAT uptime 2\r\nEND\r\n',
        b'SERVER_ERROR out of memory\r\n',
    ])


def test_smtp():
    client = [b'EHLO me\r\n', b'MAIL FROM:<a@b>\r\n', b'RCPT TO:<c@d>\r\n',
              b'DATA\r\n', b'Subject: x\r\n\r\n..dot\r\n.\r\n',
              b'BDAT 5 LAST\r\nab\r\nc', b'QUIT\r\n']
    backend = [b'220 hi\r\n', b'250-me\r\n250-PIPELINING\r\n250 SIZE\r\n',
               b'250 ok\r\n', b'250 ok\r\n', b'354 go\r\n', b'250 queued\r\n',
               b'250 chunk\r\n', b'221 bye\r\n']
    # A dialogue: the client sends the body only after the 354, so each
    # side is read in turn, and no read spans two turns.
    for chunk in CHUNKS:
        protocol = build_protocol('smtp')
        _, up, down = pair(protocol, turns(client, chunk),
                           turns(backend, chunk))
        got_up, got_down = [], [down.read()]      # the greeting first
        for _ in client:
            got_up.append(up.read())
            got_down.append(down.read())
        assert got_up == client
        assert got_down == backend


def turns(messages, chunk):
    """Each message in *chunk*-sized reads, never two messages in one."""
    return [piece for message in messages for piece in split(message, chunk)]


def _packet(seq, payload):
    return struct.pack('<I', len(payload))[:3] + bytes((seq,)) + payload


def test_mysql_result_set_is_one_message():
    greeting = _packet(0, b'\x0a5.5.5-test\x00' + b'\x00' * 40)
    login = _packet(1, struct.pack('<I', 0x000FA685) + b'\x00' * 28 + b'u\x00')
    ok = _packet(2, b'\x00\x00\x00\x02\x00\x00\x00')
    query = _packet(0, b'\x03SELECT 1, 2')
    column = b'\x03def\x00\x00\x00\x011\x00\x0c?\x00\x01\x00\x00\x00\x08\x81'
    result = (_packet(1, b'\x02') + _packet(2, column) + _packet(3, column)
              + _packet(4, b'\xfe\x00\x00\x02\x00')
              + b''.join(_packet(5 + i, b'\x011\x012') for i in range(50))
              + _packet(55, b'\xfe\x00\x00\x02\x00'))
    ping = _packet(0, b'\x0e')
    pong = _packet(1, b'\x00\x00\x00\x02\x00\x00\x00')
    for chunk in CHUNKS:
        protocol = build_protocol('mysql')
        _, up, down = pair(protocol, turns([login, query, ping], chunk),
                           turns([greeting, ok, result, pong], chunk))
        assert down.read() == greeting
        assert up.read() == login
        assert down.read() == ok
        assert messages(up) == [query, ping]
        assert messages(down) == [result, pong]


def test_mysql_multi_results_and_large_packets():
    big = b'x' * (0xFFFFFF + 10)
    command = (_packet(0, b'\x03' + big[:0xFFFFFE])
               + _packet(1, big[0xFFFFFE:]))
    more = struct.pack('<H', 0x0008 | 0x0002)
    last = struct.pack('<H', 0x0002)
    response = (_packet(1, b'\x00\x01\x00' + more + b'\x00\x00')
                + _packet(2, b'\x00\x02\x00' + last + b'\x00\x00'))
    protocol = build_protocol('mysql')
    _, up, down = pair(protocol, [command],
                       [response, _packet(1, b'\xff\x10\x04#HY000no')])
    up.session.handshake = False
    assert whole(up) == command        # 16 MiB: a head, then the rest
    up.session.commands.append(0x03)
    assert down.read() == response               # chained: one message
    assert down.read() == _packet(1, b'\xff\x10\x04#HY000no')


def test_several_messages_in_one_read_are_pending():
    protocol = build_protocol('redis')
    _, up, _ = pair(protocol, [b'PING\r\nPING\r\nPI'])
    assert up.read() == b'PING\r\n'
    assert up.pending                # complete, buffered: do not wait
    assert up.read() == b'PING\r\n'
    assert not up.pending            # only half a message left
    assert up.read() == b'PI'        # end of stream: handed over as it is
    assert up.read() == b''


@pytest.mark.parametrize('name, client, backend', [
    ('http', b'\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage\r\n\r\n',
     b''),
    ('http', b'GET / HTTP/1.1\r\n\r\n', b'SSH-2.0-OpenSSH\r\n\r\n'),
    ('redis', b'*x\r\n', b''),
    ('memcache', b'\x80\x01\x00\x05binary', b''),
    ('memcache', b'set k 0 0 notanumber\r\n', b''),
    ('smtp', b'', b'hello there\r\n'),
])
def test_malformed_traffic_goes_on_raw_with_one_warning(name, client,
                                                        backend, caplog):
    protocol = build_protocol(name)
    _, up, down = pair(protocol, split(client + b'more', 3),
                       split(backend + b'rest', 3))
    with caplog.at_level(logging.WARNING, logger='vaurien'):
        got_up = b''.join(messages(up))
        got_down = b''.join(messages(down))
    assert got_up == client + b'more'
    assert got_down == backend + b'rest'
    warnings = [r for r in caplog.records if 'raw bytes' in r.getMessage()]
    assert len(warnings) == 1
    assert 'protocol %s' % name in warnings[0].getMessage()


def test_errors_of_each_protocol():
    import random
    rng = random.Random(0)
    cases = {
        'http': ({'status': 200, 'method': b'GET', 'close': False,
                  'interim': False, 'version': b'HTTP/1.1'}, b'HTTP/1.1 5'),
        'redis': (ord('$'), b'-ERR '),
        'memcache': (b'VALUE', b'SERVER_ERROR '),
        'smtp': ({'code': b'250', 'command': b'MAIL'}, b'451 '),
        'mysql': ({'seq': 1, 'handshake': False, 'command': 3, 'kind': 0},
                  b'\xff'),
    }
    for name, (info, start) in cases.items():
        protocol = build_protocol(name)
        _, _, down = pair(protocol)
        down.last = info
        error, close = down.error_reply(rng)
        assert close is False
        if name == 'mysql':
            assert error[3] == 1 and error[4:5] == start     # same seq id
            assert struct.unpack('<I', error[:3] + b'\x00')[0] == \
                len(error) - 4
        else:
            assert error.startswith(start)
    protocol = build_protocol('http')
    _, _, down = pair(protocol)
    down.last = dict(cases['http'][0], close=True)
    error, close = down.error_reply(rng)
    assert close and b'\r\nConnection: close\r\n' in error
    head, body = error.split(b'\r\n\r\n')
    assert b'Content-Length: %d\r\n' % len(body) in head + b'\r\n'


@pytest.mark.parametrize('name', ['http', 'redis', 'memcache', 'mysql',
                                  'smtp'])
def test_random_bytes_never_raise_and_are_never_lost(name):
    import random
    rng = random.Random(name)
    prefixes = [b'', b'*3\r\n$', b'GET / HTTP/1.1\r\n', b'VALUE k 0 ',
                b'\x05\x00\x00\x00\x03', b'250-', b'HTTP/1.1 200 OK\r\n']
    for _ in range(200):
        up_bytes = rng.choice(prefixes) + rng.randbytes(rng.randint(0, 300))
        down_bytes = rng.choice(prefixes) + rng.randbytes(rng.randint(0, 300))
        protocol = build_protocol(name)
        _, up, down = pair(protocol, split(up_bytes, rng.randint(1, 40)),
                           split(down_bytes, rng.randint(1, 40)))
        assert b''.join(messages(up)) == up_bytes
        assert b''.join(messages(down)) == down_bytes


@pytest.mark.parametrize('name', ['redis', 'memcache'])
def test_fast_paths_agree_with_the_generators(name):
    """Every prefix of a conversation: same message either way."""
    import random
    samples = {
        'redis': [b'*2\r\n$3\r\nGET\r\n$1\r\nk\r\n', b'PING\r\n', b'\r\n',
                  b'*1\r\n*2\r\n%1\r\n+a\r\n|1\r\n+t\r\n:1\r\n:2\r\n',
                  b'$?\r\n;1\r\na\r\n;0\r\n', b'*-1\r\n', b'$-1\r\n',
                  b'+OK\n', b'*1\n$1\r\nx\r\n', b'$3\r\nabcd\r\n'],
        'memcache': [b'set k 0 0 3\r\nabc\r\n', b'get a b\r\n',
                     b'VALUE a 0 1\r\nx\r\nEND\r\n', b'STORED\n',
                     b'ms k 2\r\nab\r\n', b'set k 0 0 x\r\nab\r\n',
                     b'HD\r\n', b'\x80\x01', b'set k 0 0 1\r\nab\r\n'],
    }[name]
    protocol = build_protocol(name)
    rng = random.Random(1)
    for _ in range(300):
        data = b''.join(rng.choice(samples) for _ in range(3))
        data = data[:rng.randint(1, len(data))]
        for fast in (protocol.fast_request, protocol.fast_response):
            found = fast(bytearray(data), None)
            if found is None:
                continue
            # The generator, on the same bytes, ends at the same place.
            from vaurien.protocols.base import Stream
            stream = Stream()
            stream.buf += data
            gen = (protocol.request if fast == protocol.fast_request
                   else protocol.response)(stream, None)
            with pytest.raises(StopIteration) as stop:
                while True:
                    next(gen)
                    raise AssertionError('generator wants more for %r'
                                         % data)
            assert (stream.pos, stop.value.value) == found, data


def test_http_upgrade_and_connect_go_raw_without_a_warning(caplog):
    for request, response in [
            (b'GET /ws HTTP/1.1\r\nUpgrade: websocket\r\n\r\n',
             b'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n'
             b'\r\n'),
            (b'CONNECT db:5432 HTTP/1.1\r\n\r\n',
             b'HTTP/1.1 200 Connection established\r\n\r\n')]:
        protocol = build_protocol('http')
        _, up, down = pair(protocol, [request, b'\x81\x05hello\x00'],
                           [response, b'\x82\x03raw\xff'])
        with caplog.at_level(logging.WARNING, logger='vaurien'):
            assert up.read() == request
            assert down.read() == response
            assert up.read() == b'\x81\x05hello\x00'
            assert down.read() == b'\x82\x03raw\xff'
        assert up.session.raw
        assert not caplog.records


class Sink:
    """A destination socket that keeps what it is sent, piece by piece."""

    def __init__(self):
        self.pieces = []

    def sendall(self, data):
        self.pieces.append(bytes(data))


@pytest.mark.parametrize('name, head, tail', [
    ('http', b'HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n', b''),
    ('http', b'HTTP/1.0 200 OK\r\n\r\n', b''),                 # close
    ('redis', b'$%d\r\n', b'\r\n'),
    ('memcache', b'VALUE k 0 %d\r\n', b'\r\nEND\r\n'),
    ('chunked', b'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n',
     b'0\r\n\r\n'),
    ('smtp', b'', b'\r\n.\r\n'),
])
def test_pass_through_streams_big_messages(name, head, tail):
    from vaurien.protocols.base import STREAM_OVER
    body = bytes(range(256)) * (40 * 1024)              # 10 MiB
    if name == 'chunked':       # small chunks: streamed between them too
        body = b''.join(b'%x\r\n%s\r\n' % (len(body[i:i + 3000]),
                                           body[i:i + 3000])
                        for i in range(0, len(body), 3000))
    if name == 'smtp':
        body = body.replace(b'\r\n.', b'\r\n..')
    message = (head % len(body) if b'%d' in head else head) + body + tail
    protocol = build_protocol('http' if name == 'chunked' else name)
    _, up, down = pair(protocol, [b'GET / HTTP/1.1\r\n\r\n'],
                       split(message + b'+OK\r\n' * (name == 'redis'),
                             65536))
    if name in ('http', 'chunked'):
        up.read()                       # the request the response answers
    if name == 'smtp':          # the body comes after a 354
        down.session.in_data = True
        down, up = up, down
        down.sock.chunks = split(message, 65536)
    sink = Sink()
    assert down.relay(sink)
    assert b''.join(sink.pieces) == message
    assert len(sink.pieces) > 2                      # it did stream
    assert max(len(p) for p in sink.pieces) < STREAM_OVER + (1 << 16) + 1
    if name == 'redis':
        assert down.relay(sink) and sink.pieces[-1] == b'+OK\r\n'


def test_mysql_prepared_statements_and_cursors():
    column = b'\x03def\x00\x00\x00\x011\x00\x0c?\x00\x01\x00\x00\x00\x08\x81'
    eof = b'\xfe\x00\x00\x02\x00'
    cursor_eof = b'\xfe\x00\x00\x42\x00'         # SERVER_STATUS_CURSOR_EXISTS
    prepare = _packet(0, b'\x16SELECT ?, ?')
    prepared = (_packet(1, b'\x00\x01\x00\x00\x00\x01\x00\x02\x00\x00\x00'
                        b'\x00') + _packet(2, column) + _packet(3, column)
                + _packet(4, eof) + _packet(5, column) + _packet(6, eof))
    execute = _packet(0, b'\x17\x01\x00\x00\x00\x01\x01\x00\x00\x00')
    described = (_packet(1, b'\x01') + _packet(2, column)
                 + _packet(3, cursor_eof))
    fetch = _packet(0, b'\x1c\x01\x00\x00\x00\x05\x00\x00\x00')
    rows = (_packet(1, b'\x00\x00\x01\x00\x00\x00')
            + _packet(2, b'\xfe\x00\x00\x82\x00'))
    for chunk in CHUNKS:
        protocol = build_protocol('mysql')
        _, up, down = pair(protocol, turns([prepare, execute, fetch], chunk),
                           turns([prepared, described, rows], chunk))
        up.session.handshake = False
        for request, response in ((prepare, prepared), (execute, described),
                                  (fetch, rows)):
            assert up.read() == request
            assert down.read() == response


def test_mysql_deprecate_eof():
    """With CLIENT_DEPRECATE_EOF, no EOF after the columns; rows end with
    an OK packet whose header is 0xFE."""
    greeting = _packet(0, b'\x0a5.5.5-test\x00' + b'\x00' * 40)
    caps = 0x000FA685 | 0x01000000
    login = _packet(1, struct.pack('<I', caps) + b'\x00' * 28 + b'u\x00')
    ok = _packet(2, b'\x00\x00\x00\x02\x00\x00\x00')
    query = _packet(0, b'\x03SELECT 1')
    column = b'\x03def\x00\x00\x00\x011\x00\x0c?\x00\x01\x00\x00\x00\x08\x81'
    result = (_packet(1, b'\x01') + _packet(2, column)
              + b''.join(_packet(3 + i, b'\x011') for i in range(20))
              + _packet(23, b'\xfe\x00\x00\x02\x00\x00\x00'))
    for chunk in CHUNKS:
        protocol = build_protocol('mysql')
        _, up, down = pair(protocol, turns([login, query], chunk),
                           turns([greeting, ok, result], chunk))
        assert down.read() == greeting
        assert up.read() == login
        assert down.read() == ok
        assert up.read() == query
        assert down.read() == result
