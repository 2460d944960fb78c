"""Toxiproxy's HTTP API (vaurien/toxiproxy_api.py): shapes, status codes
and error messages as Toxiproxy 2.12 answers them, against a real
``vaurien-toxiproxy`` process."""
import json
import re

import pytest

import support
from toxiproxy_support import (ToxiproxyServer, address, connect, exchange,
                               read_until_end)

UPSTREAM = '127.0.0.1:20001'


def post(server, path, body):
    return server.request('POST', path, body)


def error_of(answer):
    return answer.status_code, answer.json()


@pytest.fixture
def echo():
    server = support.TCPServer(support.echo)
    yield server
    server.close()


# -- proxies ------------------------------------------------------------------

def test_create_reports_the_port_really_bound(toxiproxy):
    answer = post(toxiproxy, '/proxies', {'name': 'one', 'listen':
                                          'localhost:0', 'upstream': UPSTREAM})
    assert answer.status_code == 201
    proxy = answer.json()
    assert list(proxy) == ['name', 'listen', 'upstream', 'enabled', 'toxics']
    host, port = address(proxy['listen'])
    assert host == '127.0.0.1' and port > 0
    assert proxy['upstream'] == UPSTREAM and proxy['enabled'] is True
    assert proxy['toxics'] == []
    assert support.port_open(port)
    assert toxiproxy.request('GET', '/proxies').json() == {'one': proxy}
    assert toxiproxy.request('GET', '/proxies/one').json() == proxy


def test_missing_fields(toxiproxy):
    assert error_of(post(toxiproxy, '/proxies', {})) == (
        400, {'error': 'missing required field: name', 'status': 400})
    assert error_of(post(toxiproxy, '/proxies', {'name': 'x'})) == (
        400, {'error': 'missing required field: upstream', 'status': 400})
    status, body = error_of(toxiproxy.request('POST', '/proxies',
                                              data=b'{nope'))
    assert status == 400 and body['error'].startswith('bad request body: ')


def test_name_and_port_conflicts(toxiproxy):
    first = post(toxiproxy, '/proxies', {'name': 'mysql', 'listen':
                                         '127.0.0.1:0', 'upstream': UPSTREAM})
    listen = first.json()['listen']
    assert error_of(post(toxiproxy, '/proxies', {
        'name': 'mysql', 'listen': '127.0.0.1:0', 'upstream': UPSTREAM})) == (
        409, {'error': 'proxy already exists', 'status': 409})
    port = address(listen)[1]
    assert error_of(post(toxiproxy, '/proxies', {
        'name': 'other', 'listen': 'localhost:%d' % port,
        'upstream': UPSTREAM})) == (
        500, {'error': 'listen tcp 127.0.0.1:%d: bind: address already in '
                       'use' % port, 'status': 500})
    assert 'other' not in toxiproxy.request('GET', '/proxies').json()


def test_unknown_proxy(toxiproxy):
    for method in ('GET', 'DELETE', 'PATCH'):
        answer = toxiproxy.request(method, '/proxies/nope', {})
        assert error_of(answer) == (404, {'error': 'proxy not found',
                                          'status': 404})


def test_disabled_proxy_keeps_its_address_as_given(toxiproxy, echo):
    listen = 'localhost:0'
    created = post(toxiproxy, '/proxies', {
        'name': 'db', 'listen': listen, 'upstream': '%s:%d' % echo.address,
        'enabled': False}).json()
    assert created['listen'] == listen and created['enabled'] is False
    enabled = toxiproxy.request('POST', '/proxies/db', {'enabled': True})
    host, port = address(enabled.json()['listen'])
    assert host == '127.0.0.1' and port > 0
    with connect(('127.0.0.1', port)) as sock:
        assert exchange(sock, b'hi')[0] == b'hi'
        disabled = toxiproxy.request('PATCH', '/proxies/db',
                                     {'enabled': False})
        assert disabled.json()['enabled'] is False
        # as Toxiproxy: the address once bound is kept
        assert disabled.json()['listen'] == '127.0.0.1:%d' % port
        sock.settimeout(5)
        try:
            assert sock.recv(10) == b''
        except ConnectionResetError:
            pass
    assert not support.port_open(port)


def test_update_upstream_leaves_other_proxies_alone(toxiproxy, echo):
    other = support.TCPServer(support.echo)
    try:
        a = toxiproxy.create('a', echo.address)
        b = toxiproxy.create('b', echo.address)
        with connect(b) as kept:
            assert exchange(kept, b'1')[0] == b'1'
            answer = toxiproxy.request('PATCH', '/proxies/a', {
                'upstream': '%s:%d' % other.address})
            assert answer.status_code == 200
            assert answer.json()['upstream'] == '%s:%d' % other.address
            assert exchange(kept, b'2')[0] == b'2'
            with connect(address(answer.json()['listen'])) as sock:
                assert exchange(sock, b'3')[0] == b'3'
        assert other.connections == 1 and a
    finally:
        other.close()


def test_delete(toxiproxy):
    port = toxiproxy.create('gone', ('127.0.0.1', 20001))[1]
    answer = toxiproxy.request('DELETE', '/proxies/gone')
    assert answer.status_code == 204 and answer.content == b''
    assert not support.port_open(port)
    assert error_of(toxiproxy.request('DELETE', '/proxies/gone')) == (
        404, {'error': 'proxy not found', 'status': 404})


# -- toxics -------------------------------------------------------------------

def test_toxic_defaults_and_shape(toxiproxy):
    toxiproxy.create('p', ('127.0.0.1', 20001))
    answer = post(toxiproxy, '/proxies/p/toxics', {'type': 'latency'})
    assert answer.status_code == 200
    toxic = answer.json()
    assert toxic == {'attributes': {'latency': 0, 'jitter': 0},
                     'name': 'latency_downstream', 'type': 'latency',
                     'stream': 'downstream', 'toxicity': 1}
    assert list(toxic) == ['attributes', 'name', 'type', 'stream',
                           'toxicity']
    assert toxiproxy.request('GET', '/proxies/p/toxics').json() == [toxic]
    assert toxiproxy.request(
        'GET', '/proxies/p/toxics/latency_downstream').json() == toxic
    assert toxiproxy.request('GET', '/proxies/p').json()['toxics'] == [toxic]


def test_toxic_list_is_upstream_first(toxiproxy):
    toxiproxy.create('p', ('127.0.0.1', 20001))
    toxiproxy.add_toxic('p', 'latency', 'downstream')
    toxiproxy.add_toxic('p', 'slicer', 'upstream')
    toxiproxy.add_toxic('p', 'bandwidth', 'downstream')
    names = [t['name'] for t in
             toxiproxy.request('GET', '/proxies/p/toxics').json()]
    assert names == ['slicer_upstream', 'latency_downstream',
                     'bandwidth_downstream']


def test_toxic_errors(toxiproxy):
    toxiproxy.create('p', ('127.0.0.1', 20001))
    assert error_of(post(toxiproxy, '/proxies/p/toxics', {
        'type': 'latency', 'stream': 'walrustream'})) == (
        400, {'error': 'stream was invalid, can be either upstream or '
                       'downstream', 'status': 400})
    assert error_of(post(toxiproxy, '/proxies/p/toxics', {
        'type': 'walrus'})) == (400, {'error': 'invalid toxic type',
                                      'status': 400})
    post(toxiproxy, '/proxies/p/toxics', {'type': 'latency'})
    assert error_of(post(toxiproxy, '/proxies/p/toxics', {
        'type': 'latency'})) == (409, {'error': 'toxic already exists',
                                      'status': 409})
    for method in ('GET', 'PATCH', 'DELETE'):
        assert error_of(toxiproxy.request(
            method, '/proxies/p/toxics/nope', {})) == (
            404, {'error': 'toxic not found', 'status': 404})
    status, body = error_of(post(toxiproxy, '/proxies/p/toxics', {
        'type': 'latency', 'name': 'x', 'attributes': {'latency': 'soon'}}))
    assert status == 400 and body['error'].startswith('bad request body: ')
    assert error_of(post(toxiproxy, '/proxies/nope/toxics', {
        'type': 'latency'})) == (404, {'error': 'proxy not found',
                                      'status': 404})


def test_toxic_update_keeps_what_is_not_given(toxiproxy):
    toxiproxy.create('p', ('127.0.0.1', 20001))
    post(toxiproxy, '/proxies/p/toxics', {
        'type': 'latency', 'name': 'lat', 'stream': 'upstream',
        'toxicity': 0.5, 'attributes': {'latency': 100, 'jitter': 10}})
    for method in ('PATCH', 'POST'):
        answer = toxiproxy.request(method, '/proxies/p/toxics/lat', {
            'attributes': {'jitter': 20}})
        assert answer.json() == {
            'attributes': {'latency': 100, 'jitter': 20}, 'name': 'lat',
            'type': 'latency', 'stream': 'upstream', 'toxicity': 0.5}
    answer = toxiproxy.request('DELETE', '/proxies/p/toxics/lat')
    assert answer.status_code == 204


# -- populate, reset ----------------------------------------------------------

def test_populate_is_idempotent_and_keeps_toxics(toxiproxy):
    body = [{'name': 'one', 'listen': '127.0.0.1:0', 'upstream': UPSTREAM},
            {'name': 'two', 'listen': '127.0.0.1:0', 'upstream': UPSTREAM,
             'enabled': False}]
    answer = post(toxiproxy, '/populate', body)
    assert answer.status_code == 201
    proxies = answer.json()['proxies']
    assert [p['name'] for p in proxies] == ['one', 'two']
    assert [p['enabled'] for p in proxies] == [True, False]
    post(toxiproxy, '/proxies/one/toxics', {'type': 'latency'})
    body[0]['listen'] = proxies[0]['listen']
    again = post(toxiproxy, '/populate', body).json()['proxies']
    assert again[0]['listen'] == proxies[0]['listen']
    assert [t['name'] for t in again[0]['toxics']] == ['latency_downstream']


def test_populate_checks_everything_first(toxiproxy):
    answer = post(toxiproxy, '/populate', [
        {'name': 'one', 'listen': '127.0.0.1:0', 'upstream': UPSTREAM},
        {'name': '', 'listen': ''}])
    assert answer.status_code == 400
    assert answer.json() == {'error': 'missing required field: name at '
                                      'proxy 2', 'status': 400,
                             'proxies': None}
    assert toxiproxy.request('GET', '/proxies').json() == {}


def test_populate_stops_at_the_first_listen_error(toxiproxy):
    port = toxiproxy.create('taken', ('127.0.0.1', 20001))[1]
    answer = post(toxiproxy, '/populate', [
        {'name': 'one', 'listen': '127.0.0.1:0', 'upstream': UPSTREAM},
        {'name': 'two', 'listen': '127.0.0.1:%d' % port,
         'upstream': UPSTREAM},
        {'name': 'three', 'listen': '127.0.0.1:0', 'upstream': UPSTREAM}])
    assert answer.status_code == 500
    body = answer.json()
    assert body['error'] == ('listen tcp 127.0.0.1:%d: bind: address '
                             'already in use' % port)
    assert [p['name'] for p in body['proxies']] == ['one']
    assert sorted(toxiproxy.request('GET', '/proxies').json()) == [
        'one', 'taken']


def test_populate_with_toxics(toxiproxy, echo):
    answer = post(toxiproxy, '/populate', [{
        'name': 'slow', 'listen': '127.0.0.1:0',
        'upstream': '%s:%d' % echo.address,
        'toxics': [{'type': 'latency', 'attributes': {'latency': 300}}]}])
    proxy = answer.json()['proxies'][0]
    assert proxy['toxics'][0]['attributes']['latency'] == 300
    with connect(address(proxy['listen'])) as sock:
        assert exchange(sock, b'x')[1] >= 0.3


def test_reset_enables_all_and_removes_toxics(toxiproxy):
    toxiproxy.create('a', ('127.0.0.1', 20001))
    toxiproxy.add_toxic('a', 'latency')
    toxiproxy.request('PATCH', '/proxies/a', {'enabled': False})
    answer = post(toxiproxy, '/reset', None)
    assert answer.status_code == 204
    proxy = toxiproxy.request('GET', '/proxies/a').json()
    assert proxy['enabled'] is True and proxy['toxics'] == []


# -- the rest -----------------------------------------------------------------

def test_version(toxiproxy):
    answer = toxiproxy.request('GET', '/version')
    assert answer.status_code == 200
    assert answer.content == b'{"version": "2.12.0"}\n'
    assert json.loads(answer.content) == {'version': '2.12.0'}


def test_browsers_are_refused(toxiproxy):
    answer = toxiproxy.request('GET', '/proxies', headers={
        'User-Agent': 'Mozilla/5.0 (X11; Linux x86_64)'})
    assert answer.status_code == 403
    assert answer.content == b'User agent not allowed\n'


def test_foreign_host_and_origin_are_refused(toxiproxy):
    answer = toxiproxy.request('GET', '/proxies',
                               headers={'Host': 'evil.example'})
    assert answer.status_code == 403 and answer.json()['status'] == 403
    answer = toxiproxy.request('GET', '/proxies',
                               headers={'Origin': 'http://evil.example'})
    assert answer.status_code == 403


def test_token():
    server = ToxiproxyServer('--http-token', 's3cret')
    try:
        assert server.request('GET', '/proxies').status_code == 401
        answer = server.request('GET', '/proxies', headers={
            'Authorization': 'Bearer s3cret'})
        assert answer.status_code == 200
    finally:
        server.stop()


def test_unknown_routes_and_methods(toxiproxy):
    answer = toxiproxy.request('GET', '/nope')
    assert (answer.status_code, answer.content) == (404,
                                                    b'404 page not found\n')
    assert toxiproxy.request('PUT', '/proxies').status_code == 405
    assert toxiproxy.request('GET', '/reset').status_code == 405


def test_metrics_name_each_proxy(toxiproxy, echo):
    addr = toxiproxy.create('m', echo.address)
    with connect(addr) as sock:
        exchange(sock, b'12345')
    text = toxiproxy.request('GET', '/metrics').text
    assert 'toxiproxy_proxy_received_bytes_total{direction="upstream",' \
           'listener="%s:%d",proxy="m",upstream="%s:%d"} 5' % (
               addr + echo.address) in text
    assert 'vaurien_connections_total{proxy="m"} 1' in text


def _byte_counts(server, proxy):
    """``{(metric, direction): value}`` of Toxiproxy's byte counters of
    *proxy*, read from ``GET /metrics``."""
    text = server.request('GET', '/metrics').text
    counts = {}
    for metric, direction, value in re.findall(
            r'^toxiproxy_proxy_(received|sent)_bytes_total\{direction="'
            r'(upstream|downstream)",listener="[^"]*",proxy="%s",'
            r'upstream="[^"]*"\} (\d+)$' % re.escape(proxy), text, re.M):
        counts[metric, direction] = int(value)
    return counts


def test_metrics_count_sent_bytes_after_the_toxics(toxiproxy, echo):
    # limit_data lets 5 of the 10 echoed bytes through: as in Toxiproxy,
    # "received" counts what the source gave, "sent" what the destination
    # was given once the toxics had acted.
    addr = toxiproxy.create('cut', echo.address)
    toxiproxy.add_toxic('cut', 'limit_data', bytes=5)
    with connect(addr) as sock:
        sock.sendall(b'0123456789')
        got, how, _ = read_until_end(sock)
    assert (got, how) == (b'01234', 'eof')
    expected = {('received', 'upstream'): 10, ('sent', 'upstream'): 10,
                ('received', 'downstream'): 10, ('sent', 'downstream'): 5}
    support.wait_until(lambda: _byte_counts(toxiproxy, 'cut') == expected,
                       what='the byte counts %s' % expected)
    # A proxy without toxics: what is read is what is written.
    plain = toxiproxy.create('plain', echo.address)
    with connect(plain) as sock:
        assert exchange(sock, b'x' * 1000)[0] == b'x' * 1000
        assert _byte_counts(toxiproxy, 'plain') == {
            (metric, direction): 1000 for metric in ('received', 'sent')
            for direction in ('upstream', 'downstream')}


def test_changing_one_proxy_leaves_the_others_connections(toxiproxy, echo):
    keep = toxiproxy.create('keep', echo.address)
    other = toxiproxy.create('other', echo.address)
    with connect(keep) as kept, connect(other) as cut:
        assert exchange(kept, b'1')[0] == b'1'
        assert exchange(cut, b'1')[0] == b'1'
        # a new listen address: the listener restarts, its clients are cut
        moved = toxiproxy.request('PATCH', '/proxies/other',
                                  {'listen': '127.0.0.1:0'}).json()
        assert moved['enabled'] is True and moved['listen'] != (
            '127.0.0.1:%d' % other[1])
        with connect(address(moved['listen'])) as sock:
            assert exchange(sock, b'2')[0] == b'2'
        cut.settimeout(5)
        try:
            assert cut.recv(10) == b''
        except ConnectionResetError:
            pass
        assert exchange(kept, b'3')[0] == b'3'
        toxiproxy.request('POST', '/proxies/other', {'enabled': False})
        assert exchange(kept, b'4')[0] == b'4'
        toxiproxy.request('DELETE', '/proxies/other')
        assert exchange(kept, b'5')[0] == b'5'
