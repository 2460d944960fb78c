"""Handlers as toxics on a proxy with a protocol: they act on whole
messages, and ``error`` answers with the protocol's own error (a real
redis-server and redis-py)."""
import textwrap
import time

import pytest
import redis

from named_support import InProcessNamedVaurien


def section(backend, toxics):
    return textwrap.dedent('''\
        [proxy:cache]
        local = 127.0.0.1:0
        distant = {}:{}
        protocol = redis
        toxics = {}
        ''').format(backend[0], backend[1], toxics)


@pytest.mark.timeout(60)
def test_error_toxic_is_a_redis_error(redis_backend):
    proc = InProcessNamedVaurien(section(redis_backend.address,
                                         '[{"type": "error", '
                                         '"name": "flaky"}]'),
                                 names=('cache',))
    try:
        client = redis.Redis(*proc.address('cache'), socket_timeout=10)
        with pytest.raises(redis.ResponseError):
            client.set('k', 'v')
        # the toxic removed, the same connection answers again, in step
        assert proc.request('DELETE', '/proxies/cache/toxics/flaky'
                            ).status_code == 204
        assert client.set('k', 'v') is True
        assert client.get('k') == b'v'
    finally:
        proc.stop()


@pytest.mark.timeout(60)
def test_toxics_act_per_message(redis_backend):
    """A latency toxic on a redis proxy holds each answer (one whole
    message, here 300 kB) its time."""
    proc = InProcessNamedVaurien(section(redis_backend.address,
                                         '[{"type": "latency", "attributes": '
                                         '{"latency": 200}}]'),
                                 names=('cache',))
    try:
        client = redis.Redis(*proc.address('cache'), socket_timeout=10)
        client.set('big', b'x' * 300000)
        start = time.monotonic()
        assert len(client.get('big')) == 300000
        took = time.monotonic() - start
        assert 0.2 <= took < 1.0
    finally:
        proc.stop()
