"""vaurien/control.py: the operations on a running proxy, without HTTP.

A real proxy served in a thread of this process (observe_support), driven
through :class:`vaurien.control.ProxyControl` in the proxy's own thread.
"""
import pytest

from observe_support import InProcessProxy, talk


@pytest.fixture
def running(echo_server):
    proxy = InProcessProxy(echo_server.address)
    yield proxy
    proxy.close()


def _control(running, handler_options):
    from vaurien.control import ProxyControl
    from vaurien.handlers import Registry
    return running.call(lambda: ProxyControl(
        running.proxy, Registry(entry_points=False), [(100, 'dummy')],
        handler_options))


@pytest.mark.timeout(30)
def test_a_change_starts_from_the_start_up_options(running):
    control = _control(running, {'delay': {'sleep': '0'}})
    assert running.call(control.handler_text) == 'dummy'
    # Pairs may come as JSON lists (from the --workers parent).
    running.call(control.change, [[100, 'delay']],
                 {'delay': {'before': 'yes'}})
    assert running.call(control.handler_text) == 'delay'
    options = running.call(control.options)['delay']
    assert options['sleep'] == 0 and options['before'] is True
    assert running.proxy.behavior.text == '100:delay'
    talk(running.address, [b'still relayed'])


@pytest.mark.timeout(30)
@pytest.mark.parametrize('pairs, options, error, field', [
    ([(100, 'nope')], {}, 'unknown_handler', None),
    ([(100, 'vaurien.handlers.delay.Delay')], {}, 'unknown_handler', None),
    ([(100, 'delay')], {'delay': {'sleep': 'abc'}}, 'bad_option', 'sleep'),
    ([(100, 'delay')], {'delay': {'slep': 1}}, 'unknown_option', 'slep'),
    ([(100, 'delay')], {'error': {}}, 'bad_option', 'error'),
])
def test_a_refused_change_changes_nothing(running, pairs, options, error,
                                          field):
    from vaurien.control import ControlError
    control = _control(running, {})
    before = running.proxy.behavior
    with pytest.raises(ControlError) as info:
        running.call(control.change, pairs, options)
    assert (info.value.error, info.value.field) == (error, field)
    assert running.proxy.behavior is before
    assert running.call(control.handler_text) == 'dummy'
    # What crosses a process boundary comes back the same.
    again = ControlError.from_json(info.value.to_json())
    assert (again.error, again.description, again.field) == \
        (error, info.value.description, field)


@pytest.mark.timeout(30)
def test_backend_state_and_counters(running, echo_server):
    from vaurien.control import ControlError
    control = _control(running, {})
    backend = '127.0.0.1:%d' % echo_server.address[1]
    assert running.call(control.backend) == backend
    with pytest.raises(ControlError) as info:
        running.call(control.set_backend, 'nowhere')
    assert info.value.error == 'bad_backend'
    talk(running.address, [b'one'])
    state = running.call(control.proxy_state)
    assert state['enabled'] is True and state['backend'] == backend
    assert state['address'] == '127.0.0.1:%d' % running.address[1]
    assert state['behavior'] == 'dummy'
    assert running.call(control.snapshot).opened == 1
    # (set_enabled: test_webserver.py, where the API server keeps the event
    # loop alive while the proxy does not listen.)


def test_the_operations_are_the_abstract_methods():
    from vaurien.control import OPERATIONS, Control
    assert OPERATIONS == ('names', 'handler_text', 'options', 'change',
                          'backend', 'set_backend', 'set_enabled',
                          'describe', 'snapshot')
    assert set(OPERATIONS) == Control.__abstractmethods__
