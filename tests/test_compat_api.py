"""The control API answers 1.x's and the seed era's clients in their shapes.

The assertions of 1.9's ``vaurien/tests/test_http_server.py`` (which drove
a fake proxy through webtest) and of the seed era's routes, made against a
real proxy.
"""
import pytest

import support
from control_support import api, start_controlled

pytestmark = pytest.mark.timeout(60)

V1_BEHAVIORS = ['blackout', 'delay', 'dummy', 'error', 'hang', 'transient']


@pytest.fixture
def proxy(vaurien_inproc, echo_server):
    return start_controlled(vaurien_inproc, echo_server.address)


def test_behaviors_are_returned(proxy):
    # the behaviors should be returned as a list of behaviors, in json.
    res = api(proxy.http_port, 'GET', '/behaviors')
    assert res.json == {'behaviors': V1_BEHAVIORS}


def test_get_behavior(proxy):
    # test that we can know what is the behavior currently used
    res = api(proxy.http_port, 'GET', '/behavior')
    assert res.json == {'behavior': 'dummy'}


def test_set_unknown_behavior(proxy):
    # we should get errors back from the server if we try to set a behavior
    # which doesn't exist
    res = api(proxy.http_port, 'PUT', '/behavior', {'name': 'doesnt_exist'})
    assert res.status == 400
    errors = res.json
    assert errors['status'] == 'error'
    assert len(errors['errors']) == 1
    assert errors['errors'][0]['location'] == 'body'
    assert errors['errors'][0]['name'] == 'name'


def test_set_valid_behavior_name(proxy):
    # it's possible to only set a behavior with its name
    res = api(proxy.http_port, 'PUT', '/behavior', {'name': 'blackout'})
    assert res.json == {'status': 'ok'}
    assert api(proxy.http_port, 'GET', '/behavior').json == {
        'behavior': 'blackout'}


def test_set_valid_behavior_with_options(proxy):
    # it's possible to pass options with the behavior (1.x took any; they
    # are checked here, so the options are error's own)
    behavior = {'name': 'error', 'inject': True, 'warmup': 2}
    res = api(proxy.http_port, 'PUT', '/behavior', behavior)
    assert res.json == {'status': 'ok'}
    assert api(proxy.http_port, 'GET', '/behavior').json == {
        'behavior': 'error'}
    # what only Vaurien 2 tells: the options, on a route 1.x never read
    assert api(proxy.http_port, 'GET', '/proxy').json['options'] == {
        'error': {'inject': True, 'warmup': 2}}


def test_get_backend_name(proxy, echo_server):
    # it is possible to get the configured backend
    res = api(proxy.http_port, 'GET', '/backend')
    assert res.json == {'backend': '%s:%d' % echo_server.address}


def test_set_backend_name(proxy):
    # it is possible to reconfigure the backend
    new_backend = 'example.com:80'
    res = api(proxy.http_port, 'PUT', '/backend', {'backend': new_backend})
    assert res.json == {'status': 'ok'}
    res = api(proxy.http_port, 'GET', '/backend')
    assert res.json == {'backend': new_backend}


def test_behaviors_list_what_the_user_added(vaurien_inproc, echo_server,
                                            tmp_path):
    # 1.x listed every behavior it knew, its own and the user's: the user's
    # handlers are behaviors too; every handler is in /handlers
    support.write_module(tmp_path, 'mine', 'from vaurien.handlers import '
                         'BaseHandler\n\nclass Mine(BaseHandler):\n'
                         '    name = "mine"\n\n'
                         '    def __call__(self, c, b, to_backend):\n'
                         '        return True\n')
    ini = tmp_path / 'v.ini'
    ini.write_text('[handler:shouty]\ncallable = mine.Mine\n')
    proxy = start_controlled(vaurien_inproc, echo_server.address, '--config',
                             str(ini), extra_paths=[str(tmp_path)])
    assert api(proxy.http_port, 'GET', '/behaviors').json == {
        'behaviors': sorted(V1_BEHAVIORS + ['shouty'])}
    handlers = api(proxy.http_port, 'GET', '/handlers').json['handlers']
    assert {'shouty', 'bandwidth', 'abort'} <= set(handlers)


def test_seed_era_routes(proxy):
    # the seed era's routes: text, "ok" and {"handlers": [...]}
    res = api(proxy.http_port, 'GET', '/handler')
    assert (res.status, res.text) == (200, 'dummy')
    res = api(proxy.http_port, 'POST', '/handler', {'name': 'blackout'})
    assert (res.status, res.text) == (200, 'ok')
    assert api(proxy.http_port, 'GET', '/handler').text == 'blackout'
    handlers = api(proxy.http_port, 'GET', '/handlers').json
    assert list(handlers) == ['handlers']
    assert set(V1_BEHAVIORS) <= set(handlers['handlers'])
