"""The control API (vaurien/webserver.py), against a real proxy and backend."""
import http.client
import socket
import threading
import time

import pytest

import support
from control_support import (api, assert_error, set_back, start_controlled,
                             wait_picks)
from inproc import InProcessVaurien

pytestmark = pytest.mark.timeout(60)

BUILTINS = ['blackout', 'delay', 'dummy', 'error', 'hang']


@pytest.fixture
def own_proxy(vaurien_inproc, http_server):
    """vaurien --http in front of the real HTTP backend, for this test
    alone (connections held across changes, the service down and up)."""
    return start_controlled(vaurien_inproc, http_server.address)


@pytest.fixture(scope='module')
def module_vaurien():
    """One vaurien --http and HTTP backend for the module (per worker)."""
    server = support.HTTPServer()
    proc = start_controlled(InProcessVaurien, server.address)
    proc.backend = server.address
    yield proc
    proc.stop()
    server.close()


@pytest.fixture
def proxy(module_vaurien):
    """vaurien --http in front of the real HTTP backend, one process for
    the module, set back before each test to what a new one shows."""
    return set_back(module_vaurien, module_vaurien.backend)


def _get_through(proxy, path='/'):
    conn = http.client.HTTPConnection(support.HOST, proxy.port, timeout=20)
    try:
        conn.request('GET', path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


# -- reading ---------------------------------------------------------------------

def test_get_handler_is_plain_text(proxy):
    answer = api(proxy.http_port, 'GET', '/handler')
    assert answer.status == 200
    assert answer.text == 'dummy'
    assert answer.headers['content-type'].startswith('text/plain')


def state(port):
    """The behavior and its options, from ``GET /proxy``: what
    ``Client.with_handler`` restores."""
    answer = api(port, 'GET', '/proxy').json
    return {'behavior': answer['behavior'], 'options': answer['options']}


def test_get_handlers_lists_every_handler_behaviors_1x_ones(proxy):
    handlers = api(proxy.http_port, 'GET', '/handlers').json['handlers']
    behaviors = api(proxy.http_port, 'GET', '/behaviors').json['behaviors']
    assert set(BUILTINS) <= set(handlers)
    assert handlers == sorted(handlers)
    assert behaviors == ['blackout', 'delay', 'dummy', 'error', 'hang',
                         'transient']


def test_get_behavior(proxy):
    # Vaurien 1.x's shape; the options are in GET /proxy
    answer = api(proxy.http_port, 'GET', '/behavior')
    assert answer.status == 200
    assert answer.headers['content-type'] == 'application/json'
    assert answer.json == {'behavior': 'dummy'}
    assert state(proxy.http_port) == {'behavior': 'dummy',
                                      'options': {'dummy': {}}}


def test_start_up_behavior_and_options_are_shown(vaurien_inproc, http_server):
    proxy = start_controlled(vaurien_inproc, http_server.address,
                             '--behavior', '30:delay,10:error',
                             '--handlers.delay.sleep', '0.25')
    assert api(proxy.http_port, 'GET', '/handler').text == '30:delay,10:error'
    assert state(proxy.http_port) == {
        'behavior': '30:delay,10:error',
        'options': {'delay': {'sleep': 0.25}, 'error': {}}}


# -- changing the handler -------------------------------------------------------------

def test_post_handler_bare_name(proxy):
    answer = api(proxy.http_port, 'POST', '/handler', 'blackout')
    assert (answer.status, answer.text) == (200, 'ok')
    assert api(proxy.http_port, 'GET', '/handler').text == 'blackout'
    with pytest.raises((ConnectionError, http.client.HTTPException)):
        _get_through(proxy)
    assert api(proxy.http_port, 'POST', '/handler', 'dummy').text == 'ok'
    assert _get_through(proxy) == (200, support.BODY)


def test_post_handler_json_with_options(proxy):
    answer = api(proxy.http_port, 'POST', '/handler',
                 {'name': 'delay', 'sleep': 0.5, 'before': 'false'})
    assert (answer.status, answer.text) == (200, 'ok')
    assert api(proxy.http_port, 'GET', '/handler').text == 'delay'
    assert state(proxy.http_port) == {
        'behavior': 'delay',
        'options': {'delay': {'sleep': 0.5, 'before': False}}}
    started = time.monotonic()
    assert _get_through(proxy) == (200, support.BODY)
    assert time.monotonic() - started >= 0.45


def test_put_behavior(proxy):
    answer = api(proxy.http_port, 'PUT', '/behavior',
                 {'name': 'error', 'inject': True})
    assert answer.status == 200
    assert answer.json == {'status': 'ok'}
    assert state(proxy.http_port) == {
        'behavior': 'error', 'options': {'error': {'inject': True}}}


def test_put_weighted_mix(proxy):
    answer = api(proxy.http_port, 'PUT', '/behavior',
                 {'behavior': '20:delay,10:error',
                  'options': {'delay': {'sleep': 0.1}}})
    assert answer.json == {'status': 'ok'}
    assert api(proxy.http_port, 'GET', '/handler').text == '20:delay,10:error'
    assert state(proxy.http_port) == {
        'behavior': '20:delay,10:error',
        'options': {'delay': {'sleep': 0.1}, 'error': {}}}
    # A mix as a bare body of POST /handler, too.
    assert api(proxy.http_port, 'POST', '/handler', '50:dummy').text == 'ok'
    assert api(proxy.http_port, 'GET', '/handler').text == '50:dummy'
    # 100% of one handler reads as its name.
    assert api(proxy.http_port, 'POST', '/handler', '100:hang').text == 'ok'
    assert api(proxy.http_port, 'GET', '/handler').text == 'hang'


def test_start_up_options_are_the_base_of_a_change(vaurien_inproc,
                                                   http_server):
    proxy = start_controlled(vaurien_inproc, http_server.address,
                             '--handlers.delay.sleep', '0.3')
    api(proxy.http_port, 'POST', '/handler',
        {'name': 'delay', 'before': False})
    assert state(proxy.http_port)['options'] == {
        'delay': {'sleep': 0.3, 'before': False}}


def test_keep_alive_client_sees_a_change_at_once(own_proxy):
    proxy = own_proxy
    conn = http.client.HTTPConnection(support.HOST, proxy.port, timeout=20)
    try:
        for _ in range(3):
            conn.request('GET', '/')
            assert conn.getresponse().read() == support.BODY
        assert api(proxy.http_port, 'POST', '/handler', 'blackout').text == 'ok'
        # Same connection, next request: the blackout applies already.
        with pytest.raises((ConnectionError, http.client.HTTPException)):
            conn.request('GET', '/')
            conn.getresponse().read()
    finally:
        conn.close()


def test_keep_alive_client_sees_error_then_dummy(own_proxy):
    proxy = own_proxy
    conn = http.client.HTTPConnection(support.HOST, proxy.port, timeout=20)
    try:
        conn.request('GET', '/')
        assert conn.getresponse().read() == support.BODY
        api(proxy.http_port, 'POST', '/handler', 'delay')
        api(proxy.http_port, 'POST', '/handler', 'dummy')
        conn.request('GET', '/')
        assert conn.getresponse().read() == support.BODY
    finally:
        conn.close()


def test_sleeping_connection_goes_on_when_switched_away(vaurien_inproc,
                                                        http_server):
    proxy = start_controlled(vaurien_inproc, http_server.address,
                             '--behavior', '100:delay',
                             '--handlers.delay.sleep', '100')
    result = []

    def request():
        result.append(_get_through(proxy))
    thread = threading.Thread(target=request, daemon=True)
    started = time.monotonic()
    thread.start()
    support.wait_until(
        lambda: api(proxy.http_port, 'GET', '/proxy').json['connections'],
        what='the request to be in flight')
    assert api(proxy.http_port, 'POST', '/handler', 'dummy').text == 'ok'
    thread.join(30)
    assert result == [(200, support.BODY)]
    assert time.monotonic() - started < 60   # not the 100 s of the delay


def test_hung_connection_is_closed_when_switched_away(vaurien_inproc,
                                                      echo_server):
    proxy = start_controlled(vaurien_inproc, echo_server.address,
                             '--behavior', '100:hang')
    with proxy.connect(timeout=30) as sock:
        sock.sendall(b'hello')
        support.wait_until(
            lambda: api(proxy.http_port, 'GET', '/proxy').json['connections'],
            what='the connection to be open')
        wait_picks(proxy, 'hang', 1)   # the hang handler has the data
        assert api(proxy.http_port, 'POST', '/handler', 'dummy').text == 'ok'
        try:
            assert sock.recv(10) == b''
        except ConnectionResetError:
            pass
    # New connections are served normally.
    with proxy.connect() as sock:
        sock.sendall(b'ping')
        assert sock.recv(10) == b'ping'


# -- refused changes ---------------------------------------------------------------

@pytest.mark.parametrize('method,path,body,status,name,contains', [
    ('POST', '/handler', 'nope', 400, 'name', "unknown handler 'nope'"),
    ('PUT', '/behavior', {'name': 'nope'}, 400, 'name', 'unknown handler'),
    ('PUT', '/behavior', '{"name": ', 400, 'body', 'not valid JSON'),
    ('POST', '/handler', '{"name": "delay",}', 400, 'body', 'not valid JSON'),
    ('PUT', '/behavior', 'delay', 400, 'body', 'not valid JSON'),
    ('PUT', '/behavior', {'sleep': 1}, 400, 'name', 'missing "name"'),
    ('POST', '/handler', '', 400, 'name', 'empty'),
    ('PUT', '/behavior', '', 400, 'name', 'empty'),
    ('PUT', '/behavior', [1, 2], 400, 'body', 'JSON object'),
    ('PUT', '/behavior', {'name': 3}, 400, 'name', 'string'),
    ('PUT', '/behavior', {'name': 'delay', 'slep': 1}, 400, 'slep',
     "unknown option 'slep'"),
    ('PUT', '/behavior', {'name': 'delay', 'sleep': 'abc'}, 400, 'sleep',
     "option 'sleep' expects a number"),
    ('PUT', '/behavior', {'name': 'delay', 'sleep': -1}, 400, 'sleep',
     'expects a number >= 0'),
    ('PUT', '/behavior', {'name': 'delay', 'before': 'perhaps'}, 400,
     'before', 'expects a boolean'),
    ('PUT', '/behavior', {'name': 'delay', 'direction': 'sideways'}, 400,
     'direction', 'expects one of both'),
    ('PUT', '/behavior', {'behavior': '80:delay,30:error'}, 400, 'behavior',
     'more than 100'),
    ('PUT', '/behavior', {'behavior': '20:'}, 400, 'behavior',
     'PERCENT:NAME'),
    ('PUT', '/behavior', {'behavior': 20}, 400, 'behavior', 'string'),
    ('PUT', '/behavior', {'behavior': '20:delay', 'options': {'error': {}}},
     400, 'error', 'not in the behavior'),
    ('PUT', '/behavior', {'behavior': '20:delay', 'options': 3}, 400,
     'options', 'must map'),
    ('PUT', '/behavior', {'behavior': '20:delay', 'name': 'delay'}, 400,
     'body', 'not both'),
    ('PUT', '/behavior', {'name': 'os.system'}, 400, 'name',
     'unknown handler'),
    ('PUT', '/backend', {'backend': 'nowhere'}, 400, 'backend', 'HOST:PORT'),
    ('PUT', '/backend', {'backend': 'h:99999'}, 400, 'backend', 'HOST:PORT'),
    ('PUT', '/backend', {}, 400, 'backend', 'missing'),
    ('PUT', '/backend', 'x', 400, 'body', 'not valid JSON'),
    ('PUT', '/proxy', {'enabled': 'no'}, 400, 'enabled', 'true or false'),
    ('PUT', '/proxy', {}, 400, 'enabled', 'true or false'),
    ('PUT', '/proxy', b'\xff\xfe', 400, 'body', 'UTF-8'),
    pytest.param('PUT', '/behavior', '[' * 30000, 400, 'body',
                 'nested too deeply', id='deep-array'),
    pytest.param('PUT', '/proxy', '{"a":' * 10000 + '1' + '}' * 10000, 400,
                 'body', 'nested too deeply', id='deep-object'),
    ('POST', '/handler', '{"name": "delay", "sleep": 1e400}', 400, 'sleep',
     'finite'),
])
def test_refused_change(proxy, method, path, body, status, name,
                        contains):
    api(proxy.http_port, 'PUT', '/behavior', {'name': 'delay', 'sleep': 0.3})
    before = state(proxy.http_port)
    answer = api(proxy.http_port, method, path, body)
    assert_error(answer, status, name=name, contains=contains,
                 location='body')
    # Nothing changed.
    assert state(proxy.http_port) == before == {
        'behavior': 'delay', 'options': {'delay': {'sleep': 0.3}}}
    assert api(proxy.http_port, 'GET', '/proxy').json['enabled'] is True
    assert _get_through(proxy) == (200, support.BODY)


def test_refused_option_in_a_mix_changes_nothing(proxy):
    api(proxy.http_port, 'PUT', '/behavior', {'behavior': '10:error'})
    answer = api(proxy.http_port, 'PUT', '/behavior',
                 {'behavior': '20:delay,10:error',
                  'options': {'delay': {'sleep': 0.1},
                              'error': {'warmup': -3}}})
    assert_error(answer, 400, name='warmup', contains="'warmup'")
    assert api(proxy.http_port, 'GET', '/handler').text == '10:error'


def test_unknown_path_is_404(proxy):
    assert_error(api(proxy.http_port, 'GET', '/nope'), 404, name='path',
                 location='url', contains='/handler')
    assert_error(api(proxy.http_port, 'GET', '/handler/nope'), 404)
    # "/" is the dashboard page; other methods on it are refused.
    assert_error(api(proxy.http_port, 'POST', '/', ''), 405)


def test_wrong_method_is_405(proxy):
    for method, path in [('PUT', '/handler'), ('POST', '/behavior'),
                         ('DELETE', '/proxy'), ('POST', '/handlers'),
                         ('PUT', '/behaviors')]:
        answer = api(proxy.http_port, method, path, '')
        assert_error(answer, 405, name='method', location='method',
                     contains=method)
        assert answer.headers['allow']


def test_body_too_large_is_413(proxy):
    answer = api(proxy.http_port, 'POST', '/handler', 'x' * (65 * 1024))
    assert_error(answer, 413, name='body')
    assert api(proxy.http_port, 'GET', '/handler').text == 'dummy'


def test_garbage_does_not_crash_the_server(proxy):
    for junk in [b'\x00\xff' * 500 + b'\r\n\r\n', b'GET\r\n\r\n',
                 b'GET / HTTP/9.9\r\n\r\n', b'POST /handler HTTP/1.1\r\n'
                 b'Content-Length: 99999999999999999999\r\n\r\nx',
                 b'PUT /behavior HTTP/1.1\r\nTransfer-Encoding: chunked\r\n'
                 b'\r\nzz\r\n']:
        with socket.create_connection((support.HOST, proxy.http_port),
                                      timeout=10) as sock:
            sock.sendall(junk)
            sock.shutdown(socket.SHUT_WR)
            support.recv_all(sock)
    answer = api(proxy.http_port, 'PUT', '/behavior',
                 '{"name": "delay", "sleep": {"deep": [1, {"x": null}]}}')
    assert_error(answer, 400, name='sleep')
    assert api(proxy.http_port, 'GET', '/handler').text == 'dummy'
    assert _get_through(proxy) == (200, support.BODY)


# -- backend and service --------------------------------------------------------------

def _banner_server(banner):
    def handler(sock):
        sock.sendall(banner)
        sock.recv(1)
    return support.TCPServer(handler)


def test_get_and_put_backend(vaurien_inproc):
    first, second = _banner_server(b'first'), _banner_server(b'second')
    try:
        proxy = start_controlled(vaurien_inproc, first.address)
        assert api(proxy.http_port, 'GET', '/backend').json == {
            'backend': '127.0.0.1:%d' % first.port}
        with proxy.connect() as kept:
            assert kept.recv(10) == b'first'
            answer = api(proxy.http_port, 'PUT', '/backend',
                         {'backend': '127.0.0.1:%d' % second.port})
            assert answer.json == {'status': 'ok'}
            assert api(proxy.http_port, 'GET', '/backend').json == {
                'backend': '127.0.0.1:%d' % second.port}
            with proxy.connect() as sock:
                assert sock.recv(10) == b'second'
            # The open connection keeps its backend.
            kept.sendall(b'x')
            assert kept.recv(10) == b''
    finally:
        first.close()
        second.close()


def test_proxy_down_and_up(own_proxy):
    proxy = own_proxy
    state = api(proxy.http_port, 'GET', '/proxy').json
    assert state['enabled'] is True
    assert state['address'] == '127.0.0.1:%d' % proxy.port
    assert state['backend'].startswith('127.0.0.1:')
    assert state['behavior'] == 'dummy'
    kept = http.client.HTTPConnection(support.HOST, proxy.port, timeout=20)
    try:
        kept.request('GET', '/')
        assert kept.getresponse().read() == support.BODY
        answer = api(proxy.http_port, 'PUT', '/proxy', {'enabled': False})
        assert answer.json == {'status': 'ok'}
        assert api(proxy.http_port, 'GET', '/proxy').json['enabled'] is False
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(proxy.address, timeout=5)
        # The open connection was cut.
        with pytest.raises((ConnectionError, http.client.HTTPException)):
            kept.request('GET', '/')
            kept.getresponse().read()
        # Twice is harmless.
        assert api(proxy.http_port, 'PUT', '/proxy',
                   {'enabled': False}).status == 200
    finally:
        kept.close()
    answer = api(proxy.http_port, 'PUT', '/proxy', {'enabled': True})
    assert answer.json == {'status': 'ok'}
    assert api(proxy.http_port, 'GET', '/proxy').json['enabled'] is True
    assert _get_through(proxy) == (200, support.BODY)
    assert api(proxy.http_port, 'PUT', '/proxy',
               {'enabled': True}).status == 200


def test_proxy_up_fails_when_the_port_was_taken(own_proxy):
    proxy = own_proxy
    api(proxy.http_port, 'PUT', '/proxy', {'enabled': False})
    thief = socket.socket()
    try:
        thief.bind(proxy.address)
        thief.listen(1)
        answer = api(proxy.http_port, 'PUT', '/proxy', {'enabled': True})
        assert_error(answer, 409, name='enabled',
                     contains='address already in use')
        assert api(proxy.http_port, 'GET', '/proxy').json['enabled'] is False
    finally:
        thief.close()
    assert api(proxy.http_port, 'PUT', '/proxy', {'enabled': True}).status \
        == 200
    assert _get_through(proxy) == (200, support.BODY)


# -- security ---------------------------------------------------------------------

def test_token(vaurien_inproc, http_server):
    proxy = start_controlled(vaurien_inproc, http_server.address,
                             '--http-token', 's3cret')
    for headers in [{}, {'Authorization': 'Bearer wrong'},
                    {'Authorization': 's3cret'},
                    {'Authorization': 'Basic s3cret'}]:
        for method, path, body in [('GET', '/handler', None),
                                   ('POST', '/handler', 'blackout'),
                                   ('GET', '/nope', None)]:
            answer = api(proxy.http_port, method, path, body, headers)
            assert_error(answer, 401, name='Authorization',
                         location='header')
            assert answer.headers['www-authenticate'] == 'Bearer'
    good = {'Authorization': 'Bearer s3cret'}
    assert api(proxy.http_port, 'GET', '/handler', headers=good).text \
        == 'dummy'
    assert api(proxy.http_port, 'POST', '/handler', 'delay',
               headers=good).text == 'ok'
    assert api(proxy.http_port, 'GET', '/handler', headers=good).text \
        == 'delay'


def test_token_from_the_ini_file(vaurien_inproc, http_server, tmp_path,
                                 monkeypatch):
    config = tmp_path / 'vaurien.ini'
    config.write_text('[vaurien]\nhttp = true\nhttp_host = 127.0.0.1\n'
                      'http_port = 0\nhttp_token = ${CTL_TOKEN}\n')
    monkeypatch.setenv('CTL_TOKEN', 'from-env')
    proxy = vaurien_inproc('--config', str(config),
                           backend=http_server.address)
    import re
    port = int(re.search(r'control API on http://\S+:(\d+)',
                         proxy.log()).group(1))
    assert api(port, 'GET', '/handler').status == 401
    assert api(port, 'GET', '/handler',
               headers={'Authorization': 'Bearer from-env'}).text == 'dummy'


@pytest.mark.parametrize('host', ['evil.example', 'evil.example:8080',
                                  'localhost.evil.example', '127.0.0.1.nip.io'])
def test_foreign_host_header_is_403(proxy, host):
    answer = api(proxy.http_port, 'POST', '/handler', 'blackout',
                 {'Host': host})
    assert_error(answer, 403, name='Host', location='header')
    assert api(proxy.http_port, 'GET', '/handler').text == 'dummy'


@pytest.mark.parametrize('host', ['localhost', 'LOCALHOST:%d', '127.0.0.1:%d',
                                  '[::1]:%d', '10.1.2.3'])
def test_local_host_headers_are_fine(proxy, host):
    if '%d' in host:
        host = host % proxy.http_port
    assert api(proxy.http_port, 'GET', '/handler', None,
               {'Host': host}).text == 'dummy'


@pytest.mark.parametrize('origin', ['http://evil.example', 'null',
                                    'https://127.0.0.1:%d',
                                    'http://127.0.0.1:1',
                                    'http://localhost', 'file://',
                                    'http://[bad'])
def test_foreign_origin_is_403(proxy, origin):
    if '%d' in origin:
        origin = origin % proxy.http_port
    for method, body in [('GET', None), ('POST', 'blackout')]:
        answer = api(proxy.http_port, method, '/handler', body,
                     {'Origin': origin})
        assert_error(answer, 403, name='Origin', location='header')
    assert api(proxy.http_port, 'GET', '/handler').text == 'dummy'


def test_own_origin_is_fine(proxy):
    for origin in ['http://127.0.0.1:%d', 'http://localhost:%d']:
        answer = api(proxy.http_port, 'POST', '/handler', 'delay',
                     {'Origin': origin % proxy.http_port})
        assert answer.text == 'ok'


def test_loud_warning_without_token_on_a_public_address(vaurien_inproc,
                                                        echo_server):
    proxy = vaurien_inproc('--http', '--http-host', '0.0.0.0',
                           '--http-port', '0',
                           backend=echo_server.address)
    assert 'WITHOUT A TOKEN' in proxy.log()
    proxy = vaurien_inproc('--http', '--http-host', '0.0.0.0',
                           '--http-port', '0',
                           '--http-token', 'x', backend=echo_server.address)
    assert 'WITHOUT A TOKEN' not in proxy.log()
    proxy = start_controlled(vaurien_inproc, echo_server.address)
    assert 'WITHOUT A TOKEN' not in proxy.log()


# -- start-up ----------------------------------------------------------------------

def test_http_is_off_by_default(vaurien_inproc, echo_server):
    proxy = vaurien_inproc(backend=echo_server.address)
    assert 'control API' not in proxy.log()


@pytest.mark.parametrize('args,message', [
    (['--http', 'maybe'], '--http expects a boolean'),
    (['--http', '--http-port', 'abc'], '--http-port expects a port number'),
    (['--http', '--http-port', '70000'], '--http-port expects a port number'),
    (['--http', '--http-host', 'no-such-host.invalid'],
     'cannot serve the control API on no-such-host.invalid:8080'),
])
def test_start_up_mistakes(args, message):
    result = support.run_cli('--local', '127.0.0.1:0', *args)
    assert result.returncode == 2
    assert result.stderr.startswith('vaurien: error: ')
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert 'Traceback' not in result.stderr


def test_http_port_in_use_is_exit_2():
    with socket.socket() as taken:
        taken.bind((support.HOST, 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = support.run_cli('--local', '127.0.0.1:0', '--http',
                                 '--http-host', support.HOST,
                                 '--http-port', str(port))
    assert result.returncode == 2
    assert result.stderr == ('vaurien: error: cannot serve the control API '
                             'on 127.0.0.1:%d (--http-host, --http-port): '
                             'address already in use\n' % port)


@pytest.mark.parametrize('value', ['yes', 'true', 'on', '1'])
def test_http_flag_values(vaurien_inproc, echo_server, value):
    proxy = vaurien_inproc('--http', value, '--http-host', support.HOST,
                           '--http-port', '0', backend=echo_server.address)
    assert 'control API on http://127.0.0.1:' in proxy.log()


def test_http_off_from_the_command_line_wins(vaurien_inproc, echo_server,
                                             tmp_path):
    config = tmp_path / 'vaurien.ini'
    config.write_text('[vaurien]\nhttp = yes\nhttp_port = 0\n')
    proxy = vaurien_inproc('--config', str(config), '--http', 'no',
                           backend=echo_server.address)
    assert 'control API' not in proxy.log()


@pytest.mark.parametrize('behavior,shown,options', [
    ('100:delay,0:error', 'delay', {'delay': {}}),
    ('0:delay', 'dummy', {'dummy': {}}),
    ('0:delay,30:error', '0:delay,30:error', {'delay': {}, 'error': {}}),
])
def test_what_get_proxy_shows_can_be_put_back(proxy, behavior, shown,
                                                 options):
    assert api(proxy.http_port, 'PUT', '/behavior',
               {'behavior': behavior}).status == 200
    shown_state = state(proxy.http_port)
    assert shown_state == {'behavior': shown, 'options': options}
    api(proxy.http_port, 'PUT', '/behavior', {'name': 'hang'})
    assert api(proxy.http_port, 'PUT', '/behavior',
               shown_state).status == 200
    assert state(proxy.http_port) == shown_state


def test_stops_cleanly_while_down(vaurien, echo_server):
    proxy = start_controlled(vaurien, echo_server.address)
    assert api(proxy.http_port, 'PUT', '/proxy',
               {'enabled': False}).status == 200
    proxy.proc.terminate()
    assert proxy.proc.wait(20) == 0, proxy.output()
    assert 'Traceback' not in proxy.output()
    assert 'stopping' in proxy.log()
