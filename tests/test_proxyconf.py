"""``[proxy:NAME]`` sections (vaurien/proxyconf.py), without sockets."""
import pytest

from vaurien.config import ConfigError
from vaurien.proxyconf import parse_proxy_section


def parse(items, name='cache'):
    return parse_proxy_section(name, items, 'f.ini')


def error(items, name='cache'):
    with pytest.raises(ConfigError) as info:
        parse(items, name)
    return str(info.value)


def test_every_key():
    spec = parse([('local', 'localhost:0'), ('backend', '127.0.0.1:6379'),
                  ('protocol', 'redis'), ('behavior', '10:error'),
                  ('pick', 'connection'), ('timeout', '2'),
                  ('enabled', 'no'),
                  ('toxics', '[{"type": "latency", "attributes": '
                             '{"latency": 100}}]'),
                  ('handlers.error.warmup', '5'),
                  ('protocols.redis.foo', 'bar')])
    assert spec.name == 'cache' and spec.enabled is False
    assert spec.settings == {'local': ('localhost', 0),
                             'distant': ('127.0.0.1', 6379),
                             'protocol': 'redis', 'behavior': [(10, 'error')],
                             'pick': 'connection', 'timeout': 2.0}
    assert spec.toxics == [{'type': 'latency',
                            'attributes': {'latency': 100}}]
    assert spec.handler_options == {'error': {'warmup': '5'}}
    assert spec.protocol_options == {'redis': {'foo': 'bar'}}


def test_mistakes_name_the_file_section_and_key():
    base = [('local', 'localhost:0'), ('distant', 'localhost:1')]
    assert error(base + [('distant', 'nope')]).startswith(
        'f.ini [proxy:cache] distant expects HOST:PORT')
    assert "unknown key 'http_port' in [proxy:cache]" in error(
        base + [('http_port', '1')])
    assert 'f.ini [proxy:cache] toxics expects a JSON array' in error(
        base + [('toxics', '{"type": "latency"}')])
    assert 'f.ini [proxy:cache] enabled expects a boolean' in error(
        base + [('enabled', 'maybe')])
    assert 'expected handlers.NAME.OPTION' in error(
        base + [('handlers.x', '1')])
    assert '[proxy:cache] needs "distant"' in error(base[:1])
    assert '[proxy:cache] needs "local"' in error(base[1:])
    assert 'not a usable proxy name' in error(base, name='a/b')
