"""The toxics of a proxy (vaurien/toxics/__init__.py), without sockets:
checking, defaults, order, updates and removals."""
import pytest

from vaurien.handlers import Registry
from vaurien.toxics import ToxicError, ToxicSet, type_names


def changes():
    seen = []
    return seen, ToxicSet(handlers=Registry(entry_points=False),
                          on_change=lambda: seen.append(1))


def code(call, *args):
    with pytest.raises(ToxicError) as info:
        call(*args)
    return info.value.code


def test_defaults():
    _, toxics = changes()
    toxic = toxics.add({'type': 'latency'})
    assert toxic.shown() == {
        'attributes': {'latency': 0, 'jitter': 0}, 'name':
        'latency_downstream', 'type': 'latency', 'stream': 'downstream',
        'toxicity': 1}
    assert toxic.to_backend is False
    up = toxics.add({'type': 'latency', 'stream': 'upstream'})
    assert up.name == 'latency_upstream' and up.to_backend is True


def test_stream_is_case_blind_and_kept_as_given():
    _, toxics = changes()
    toxic = toxics.add({'type': 'slicer', 'stream': 'UpStream'})
    assert toxic.to_backend is True and toxic.stream == 'UpStream'
    assert toxic.name == 'slicer_UpStream'


def test_refusals_change_nothing():
    seen, toxics = changes()
    assert code(toxics.add, {'type': 'latency', 'stream': 'sideways'}) == \
        'invalid_stream'
    assert code(toxics.add, {'type': 'nope'}) == 'invalid_type'
    assert code(toxics.add, {'type': 'pkg.module.Class'}) == 'invalid_type'
    assert code(toxics.add, {'type': 'latency', 'toxicity': 'x'}) == \
        'bad_body'
    assert code(toxics.add, {'type': 'latency',
                             'attributes': {'latency': -1}}) == 'bad_body'
    assert code(toxics.add, {'type': 'latency',
                             'attributes': {'latency': 1.5}}) == 'bad_body'
    assert code(toxics.add, {'type': 'latency', 'attributes': [1]}) == \
        'bad_body'
    assert code(toxics.add, ['latency']) == 'bad_body'
    assert len(toxics) == 0 and seen == []


def test_names_are_unique_across_streams():
    _, toxics = changes()
    toxics.add({'type': 'latency', 'name': 'x'})
    assert code(toxics.add, {'type': 'bandwidth', 'name': 'x',
                             'stream': 'upstream'}) == 'exists'


def test_order_and_listing():
    _, toxics = changes()
    for data in ({'type': 'latency'}, {'type': 'bandwidth'},
                 {'type': 'slicer', 'stream': 'upstream'}):
        toxics.add(data)
    assert [t.name for t in toxics.chain(False)] == [
        'latency_downstream', 'bandwidth_downstream']
    assert [t.name for t in toxics.list()] == [
        'slicer_upstream', 'latency_downstream', 'bandwidth_downstream']
    keys = [t.key for t in toxics.chain(False)]
    assert keys == sorted(keys)


def test_update_keeps_identity_and_other_values():
    seen, toxics = changes()
    toxic = toxics.add({'type': 'latency', 'toxicity': 0.5,
                        'attributes': {'latency': 10, 'jitter': 2}})
    key, old_kind = toxic.key, toxic.kind
    same = toxics.update('latency_downstream',
                         {'attributes': {'latency': 20}})
    assert same is toxic and toxic.key == key and toxic.kind is not old_kind
    assert toxic.kind.values == {'latency': 20, 'jitter': 2}
    assert toxic.toxicity == 0.5
    toxics.update('latency_downstream', {'toxicity': 0})
    assert toxic.toxicity == 0 and toxic.kind.values['latency'] == 20
    assert code(toxics.update, 'latency_downstream',
                {'attributes': {'jitter': 'x'}}) == 'bad_body'
    assert toxic.kind.values == {'latency': 20, 'jitter': 2}
    assert code(toxics.update, 'nope', {}) == 'not_found'
    assert len(seen) == 3


def test_remove_and_reset():
    seen, toxics = changes()
    toxics.add({'type': 'latency'})
    toxics.add({'type': 'timeout', 'stream': 'upstream'})
    toxics.remove('latency_downstream')
    assert [t.name for t in toxics.list()] == ['timeout_upstream']
    assert code(toxics.remove, 'latency_downstream') == 'not_found'
    toxics.reset()
    assert not toxics and toxics.list() == []
    version = toxics.version
    toxics.reset()                         # nothing to remove: no change
    assert toxics.version == version


def test_handlers_are_types_with_their_options():
    _, toxics = changes()
    toxic = toxics.add({'type': 'delay', 'attributes': {'sleep': '0.5'}})
    assert toxic.kind.values['sleep'] == 0.5
    assert code(toxics.add, {'type': 'delay', 'name': 'd2',
                             'attributes': {'sleep': -1}}) == 'bad_body'
    names = type_names(Registry(entry_points=False))
    assert {'latency', 'limit_data', 'error', 'corrupt', 'hang'} <= set(names)
