"""toxiproxy-python (PyPI), Toxiproxy's Python client, drives
``vaurien-toxiproxy`` unchanged: proxies, every toxic type measured on
real traffic, populate, reset, disable and enable."""
import time

import pytest

import support
from toxiproxy_support import (Sender, ToxiproxyServer, address, connect,
                               exchange, read_until_end)

import toxiproxy   # toxiproxy-python, in TESTS_REQUIRE
from toxiproxy.api import APIConsumer
from toxiproxy.exceptions import InvalidToxic, NotFound, ProxyExists


@pytest.fixture
def toxiproxy_python():
    server = ToxiproxyServer()
    host, port = address(server.url[len('http://'):])
    APIConsumer.host, APIConsumer.port = host, port
    yield toxiproxy.Toxiproxy()
    server.stop()


@pytest.fixture
def echo():
    server = support.TCPServer(support.echo)
    yield server
    server.close()


@pytest.fixture
def sender():
    server = Sender([b's' * 60000], hold=True)
    yield server
    server.close()


def upstream(backend):
    return '%s:%d' % tuple(backend)


def test_server_proxies_and_version(toxiproxy_python, echo):
    server = toxiproxy_python
    assert server.running()
    assert b'2.12.0' in server.version()
    proxy = server.create(upstream=upstream(echo.address), name='echo')
    assert proxy.enabled is True
    assert address(proxy.listen)[1] > 0
    assert list(server.proxies()) == ['echo']
    with pytest.raises(ProxyExists):
        server.create(upstream=upstream(echo.address), name='echo')
    with connect(address(proxy.listen)) as sock:
        assert exchange(sock, b'hello')[0] == b'hello'
    proxy.destroy()
    assert server.proxies() == {}
    with pytest.raises(NotFound):
        proxy.destroy()


def test_latency_added_then_removed(toxiproxy_python, echo):
    server = toxiproxy_python
    proxy = server.create(upstream=upstream(echo.address), name='echo')
    addr = address(proxy.listen)
    with connect(addr) as sock:
        proxy.add_toxic(type='latency', attributes={'latency': 300})
        assert list(proxy.toxics()) == ['latency_downstream']
        assert exchange(sock, b'x')[1] >= 0.3
        proxy.add_toxic(type='latency', stream='upstream', name='up',
                        attributes={'latency': 200})
        assert exchange(sock, b'x')[1] >= 0.5
        proxy.destroy_toxic('latency_downstream')
        proxy.destroy_toxic('up')
        assert exchange(sock, b'x')[1] < 0.3
    with pytest.raises(InvalidToxic):
        proxy.add_toxic(type='walrus')


def test_bandwidth(toxiproxy_python, sender):
    server = toxiproxy_python
    proxy = server.create(upstream=upstream(sender.address), name='s')
    proxy.add_toxic(type='bandwidth', attributes={'rate': 60})   # 60 KB/s
    with connect(address(proxy.listen)) as sock:
        start = time.monotonic()
        sock.sendall(b'go')
        data = support.recv_exact(sock, 60000)
        took = time.monotonic() - start
    assert len(data) == 60000 and 0.8 <= took < 1.6


def test_slicer(toxiproxy_python, sender):
    server = toxiproxy_python
    proxy = server.create(upstream=upstream(sender.address), name='s')
    proxy.add_toxic(type='slicer', attributes={
        'average_size': 1000, 'size_variation': 100, 'delay': 2000})
    with connect(address(proxy.listen)) as sock:
        sock.sendall(b'go')
        sock.settimeout(10)
        reads, total = 0, 0
        while total < 60000:
            data = sock.recv(1 << 16)
            assert data
            reads += 1
            total += len(data)
    assert reads >= 20


def test_limit_data_and_slow_close(toxiproxy_python):
    server = toxiproxy_python
    closing = Sender([b'c' * 5000])
    try:
        proxy = server.create(upstream=upstream(closing.address), name='c')
        proxy.add_toxic(type='limit_data', attributes={'bytes': 100})
        with connect(address(proxy.listen)) as sock:
            sock.sendall(b'go')
            data, how, _ = read_until_end(sock)
        assert (len(data), how) == (100, 'eof')
        proxy.destroy_toxic('limit_data_downstream')
        proxy.add_toxic(type='slow_close', attributes={'delay': 500})
        with connect(address(proxy.listen)) as sock:
            sock.sendall(b'go')
            data, how, took = read_until_end(sock)
        assert (len(data), how) == (5000, 'eof') and took >= 0.5
    finally:
        closing.close()


def test_timeout_and_reset_peer(toxiproxy_python, sender):
    server = toxiproxy_python
    proxy = server.create(upstream=upstream(sender.address), name='s')
    proxy.add_toxic(type='timeout', attributes={'timeout': 400})
    with connect(address(proxy.listen)) as sock:
        sock.sendall(b'go')
        data, how, took = read_until_end(sock)
    assert (data, how) == (b'', 'eof') and 0.3 <= took < 2
    proxy.destroy_toxic('timeout_downstream')
    proxy.add_toxic(type='reset_peer', attributes={'timeout': 100})
    with connect(address(proxy.listen)) as sock:
        sock.sendall(b'go')
        data, how, took = read_until_end(sock)
    assert how == 'reset'


def test_disable_enable_and_down(toxiproxy_python, echo):
    server = toxiproxy_python
    proxy = server.create(upstream=upstream(echo.address), name='echo')
    port = address(proxy.listen)[1]
    proxy.disable()
    assert not support.port_open(port)
    proxy.enable()
    assert support.port_open(port)
    with proxy.down():
        assert not support.port_open(port)
    with connect(('127.0.0.1', port)) as sock:
        assert exchange(sock, b'up')[0] == b'up'


def test_populate_and_reset(toxiproxy_python, echo):
    server = toxiproxy_python
    created = server.populate([{'name': 'p', 'upstream':
                                upstream(echo.address),
                                'listen': '127.0.0.1:0'}])
    assert [p.name for p in created] == ['p']
    listen = created[0].listen
    port = address(listen)[1]
    assert server.populate([{'name': 'p', 'upstream':
                             upstream(echo.address), 'listen': listen}]) == []
    proxy = server.get_proxy('p')
    proxy.add_toxic(type='timeout', attributes={'timeout': 0})
    proxy.disable()
    assert server.reset()
    proxy = server.get_proxy('p')
    assert proxy.enabled is True and proxy.toxics() == {}
    with connect(('127.0.0.1', port)) as sock:
        assert exchange(sock, b'ok')[0] == b'ok'
    server.destroy_all()
    assert server.proxies() == {}
