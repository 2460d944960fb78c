"""--protocol http against a real HTTP/1.1 server, with http.client,
urllib.request and urllib3."""
import http.client
import os
import socket
import urllib.error
import urllib.request

import pytest

import support
from conftest import HERE, Timer, payload

urllib3 = pytest.importorskip('urllib3')

pytestmark = pytest.mark.timeout(90)


def start(factory, backend, *args, **kwargs):
    """*factory*: the vaurien_inproc fixture (or vaurien for a process)."""
    return factory('--protocol', 'http', *args, backend=backend.address,
                   extra_paths=[HERE], **kwargs)


def conn(proxy):
    return http.client.HTTPConnection(*proxy.address, timeout=30)


def get(c, path, method='GET', body=None, headers=None):
    c.request(method, path, body=body, headers=headers or {})
    response = c.getresponse()
    return response.status, response.read(), response


class _Response(http.client.HTTPResponse):
    """An HTTPResponse that leaves the shared file open for the next one."""

    def _close_conn(self):
        self.fp = None


def read_responses(sock, count, methods):
    """Parse *count* pipelined responses off a raw socket with http.client."""
    out = []
    fh = sock.makefile('rb')
    for method in methods[:count]:
        response = _Response(sock, method=method)
        response.fp = fh
        response.begin()
        out.append((response.status, response.read()))
    return out


def test_dummy_is_transparent(vaurien_inproc, http_backend):
    proxy = start(vaurien_inproc, http_backend)
    c = conn(proxy)
    # Keep-alive: every request below goes over this one connection.
    assert get(c, '/')[:2] == (200, b'hello from the backend\n')
    assert get(c, '/chunked/100000')[1] == payload(100000)
    status, body, response = get(c, '/', method='HEAD')
    assert (status, body) == (200, b'')
    assert response.getheader('Content-Length') == '12345'
    assert get(c, '/empty')[:2] == (204, b'')
    data = os.urandom(3 << 20)
    assert get(c, '/echo', 'POST', data)[1] == data
    c.request('POST', '/echo', body=iter([b'abc', b'def' * 5000]),
              encode_chunked=True)
    assert c.getresponse().read() == b'abc' + b'def' * 5000
    assert get(c, '/size/%d' % (20 << 20))[1] == payload(20 << 20)
    # Close-delimited body, then the client reconnects by itself.
    assert get(c, '/close/70000')[1] == payload(70000)
    assert get(c, '/')[0] == 200
    pool = urllib3.PoolManager(retries=False)
    base = 'http://%s:%d' % proxy.address
    for i in range(50):
        response = pool.request('GET', base + '/size/%d' % (i * 37))
        assert response.status == 200 and response.data == payload(i * 37)


def test_pipelined_requests_are_separate_messages(vaurien_inproc,
                                                  http_backend, recorder):
    args, records = recorder
    proxy = start(vaurien_inproc, http_backend, *args)
    requests = [b'GET /size/10 HTTP/1.1\r\nHost: x\r\n\r\n',
                b'HEAD / HTTP/1.1\r\nHost: x\r\n\r\n',
                b'POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n'
                b'\r\nping',
                b'GET /chunked/20000 HTTP/1.1\r\nHost: x\r\n\r\n']
    with socket.create_connection(proxy.address, timeout=30) as sock:
        sock.sendall(b''.join(requests))          # one write, four requests
        got = read_responses(sock, 4, ['GET', 'HEAD', 'POST', 'GET'])
    assert got == [(200, payload(10)), (200, b''), (200, b'ping'),
                   (200, payload(20000))]
    ups = [d for k, d in records() if k == 'up']
    downs = [d for k, d in records() if k == 'down']
    assert ups == requests
    assert len(downs) == 4
    assert downs[1].endswith(b'\r\n\r\n')         # HEAD: headers only
    assert downs[3].endswith(b'0\r\nX-Trailer: yes\r\n\r\n')


def test_expect_100_continue(vaurien_inproc, http_backend):
    proxy = start(vaurien_inproc, http_backend)
    with socket.create_connection(proxy.address, timeout=30) as sock:
        sock.sendall(b'POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5'
                     b'\r\nExpect: 100-continue\r\n\r\n')
        interim = b''
        while not interim.endswith(b'\r\n\r\n'):
            interim += sock.recv(1)
        assert interim.startswith(b'HTTP/1.1 100')
        sock.sendall(b'hello')
        assert read_responses(sock, 1, ['POST']) == [(200, b'hello')]


def test_overwrite_host_header(vaurien_inproc, http_backend, tmp_path):
    expected = ('%s:%d' % http_backend.address).encode()
    plain = start(vaurien_inproc, http_backend)
    c = conn(plain)
    c.request('GET', '/host', headers={'Host': 'public.example.com'})
    assert c.getresponse().read() == b'public.example.com'
    cli = start(vaurien_inproc, http_backend,
                '--protocols.http.overwrite_host_header', 'true')
    c = conn(cli)
    c.request('GET', '/host', headers={'Host': 'public.example.com'})
    assert c.getresponse().read() == expected
    ini = tmp_path / 'vaurien.ini'
    ini.write_text('[vaurien]\nprotocol = http\n\n[protocol:http]\n'
                   'overwrite_host_header = yes\n')
    from_ini = vaurien_inproc('--config', str(ini),
                              backend=http_backend.address)
    c = conn(from_ini)
    c.request('GET', '/host', headers={'Host': 'public.example.com'})
    assert c.getresponse().read() == expected


def test_delay_holds_each_message_once(vaurien_inproc, http_backend):
    slow = start(vaurien_inproc, http_backend, '--behavior', '100:delay',
                 '--handlers.delay.sleep', '0.5', '--handlers.delay.before',
                 'false')
    c = conn(slow)
    with Timer() as t:
        assert get(c, '/size/%d' % (8 << 20))[1] == payload(8 << 20)
    # An 8 MiB response is one message: one delay, not one per read.
    assert 0.5 - 0.05 <= t.elapsed < 20
    before = start(vaurien_inproc, http_backend, '--behavior', '100:delay',
                   '--handlers.delay.sleep', '0.3')
    with socket.create_connection(before.address, timeout=30) as sock:
        with Timer() as t:
            sock.sendall(b'GET / HTTP/1.1\r\nHost: x\r\n\r\n' * 3)
            read_responses(sock, 3, ['GET'] * 3)
    assert t.elapsed >= 3 * 0.3 - 0.05


def test_error_is_a_5xx_and_the_next_request_works(vaurien_inproc,
                                                   http_backend):
    broken = start(vaurien_inproc, http_backend, '--behavior', '100:error')
    base = 'http://%s:%d' % broken.address
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(base + '/', timeout=30)
    assert caught.value.code in (500, 502, 503, 504)
    assert b'vaurien' in caught.value.read()
    c = conn(broken)
    status, body, response = get(c, '/', method='HEAD')
    assert status >= 500 and body == b''
    # Keep-alive survives a replaced Content-Length response ...
    status, body, response = get(c, '/size/1000')
    assert status >= 500 and response.getheader('Connection') is None
    # ... and a replaced close-delimited one says Connection: close.
    status, body, response = get(c, '/close/1000')
    assert status >= 500 and response.getheader('Connection') == 'close'

    flaky = start(vaurien_inproc, http_backend, '--behavior', '50:error',
                  '--handlers.error.direction', 'downstream', '--seed', '5')
    pool = urllib3.PoolManager(retries=False)
    base = 'http://%s:%d' % flaky.address
    statuses = set()
    for i in range(40):
        for path in ('/size/%d' % (i * 101), '/chunked/%d' % (i * 997)):
            response = pool.request('GET', base + path)
            if response.status == 200:
                assert response.data == payload(int(path.rsplit('/', 1)[1]))
            else:
                assert response.status in (500, 502, 503, 504)
                assert b'injected' in response.data
            statuses.add(response.status == 200)
    assert statuses == {True, False}
    retrying = urllib3.PoolManager(retries=urllib3.Retry(
        total=30, status_forcelist=[500, 502, 503, 504], backoff_factor=0))
    assert retrying.request('GET', base + '/').status == 200


def _big_response(sock):
    """Answer one request with a 300 MB body, made on the fly."""
    head = b''
    while b'\r\n\r\n' not in head:
        data = sock.recv(4096)
        if not data:
            return
        head += data
    piece = b'0123456789abcdef' * 65536                 # 1 MiB
    sock.sendall(b'HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n'
                 % (300 * len(piece)))
    for _ in range(300):
        sock.sendall(piece)


def peak_memory(pid):
    """The peak resident memory of process *pid*, in MiB (Linux)."""
    with open('/proc/%d/status' % pid) as fh:
        for line in fh:
            if line.startswith('VmHWM:'):
                return int(line.split()[1]) / 1024.0
    pytest.skip('no VmHWM in /proc (not Linux)')


@pytest.mark.timeout(120)
def test_a_huge_body_streams_through_in_bounded_memory(vaurien):
    # A process of its own: its peak memory is the proxy's alone.
    backend = support.TCPServer(_big_response)
    try:
        proxy = start(vaurien, backend)
        c = conn(proxy)
        c.request('GET', '/huge')
        response = c.getresponse()
        total = 0
        while True:
            data = response.read(1 << 20)
            if not data:
                break
            total += len(data)
        assert total == 300 << 20
        # The proxy never held the 300 MiB message whole.
        assert peak_memory(proxy.proc.pid) < 150
    finally:
        backend.close()
