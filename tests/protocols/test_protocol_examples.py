"""The examples of docs/protocols.rst, run as a user runs them.

Each example is an INI file for ``vaurien --config`` and a client script
that must survive the chaos it configures; the real server is started by a
fixture, the proxy and the script are subprocesses.
"""
import os
import subprocess
import sys

import pytest

import support
from conftest import MYSQL_PASSWORD, MYSQL_USER

pytestmark = pytest.mark.timeout(120)

EXAMPLES = os.path.join(support.ROOT, 'examples')


def run_example(factory, name, backend, *script_args):
    proxy = factory('--config', os.path.join(EXAMPLES, name + '.ini'),
                    '--seed', '2024', backend=backend.address)
    done = subprocess.run(
        [sys.executable, os.path.join(EXAMPLES, name + '.py'),
         proxy.address[0], str(proxy.address[1])] + list(script_args),
        capture_output=True, text=True, timeout=100, cwd=EXAMPLES,
        env=support.env_with_root())
    assert done.returncode == 0, done.stdout + done.stderr + proxy.log()
    return done.stdout, proxy


def test_redis_outage_drill(vaurien_inproc, redis_backend):
    out, _ = run_example(vaurien_inproc, 'redis_outage_drill', redis_backend)
    assert out.startswith('drill passed: 100 writes, 100 reads, ')
    assert ', 0 server errors' not in out       # the chaos did happen


def test_flaky_http_api(vaurien_inproc, http_backend):
    out, _ = run_example(vaurien_inproc, 'flaky_http_api', http_backend)
    assert out.startswith('client passed: 50 requests, ')
    assert ', 0 retried' not in out


def test_memcache_degraded(vaurien_inproc, memcached_backend):
    out, _ = run_example(vaurien_inproc, 'memcache_degraded',
                         memcached_backend)
    assert out.startswith('cache passed: 300 lookups, ')
    assert ', 0 server errors' not in out


def test_mysql_deadlocks(vaurien_inproc, mysql_backend):
    out, _ = run_example(vaurien_inproc, 'mysql_deadlocks', mysql_backend,
                         MYSQL_USER, MYSQL_PASSWORD, 'chaos')
    assert out.startswith('bank passed: 40 transfers, ')
    assert ', 0 retried' not in out


def test_smtp_retry(vaurien_inproc, smtp_backend):
    before = len(smtp_backend.messages)
    out, _ = run_example(vaurien_inproc, 'smtp_retry', smtp_backend)
    assert out.startswith('mailer passed: 20 mails, ')
    assert ', 0 retries' not in out
    subjects = {m.original_content.split(b'Subject: ')[1].split(b'\r\n')[0]
                for m in smtp_backend.messages[before:]}
    assert subjects >= {b'drill %d' % i for i in range(20)}


def docs_commands():
    """The ``$ vaurien ...`` commands shown in docs/protocols.rst."""
    with open(os.path.join(support.ROOT, 'docs', 'protocols.rst'),
              encoding='utf-8') as fh:
        text = fh.read().replace('\\\n', ' ')
    return [line.strip()[2:].split() for line in text.splitlines()
            if line.strip().startswith('$ vaurien ')]


def test_the_command_in_the_docs(vaurien_inproc, redis_backend):
    import redis
    (argv,) = docs_commands()
    args = argv[1:]
    # Same command, with the test's backend and a free port.
    args[args.index('--distant') + 1] = '%s:%d' % redis_backend.address
    args[args.index('--local') + 1] = '127.0.0.1:0'
    proxy = vaurien_inproc(*args + ['--seed', '1'])
    r = redis.Redis(*proxy.address, socket_timeout=10)
    results = set()
    for i in range(30):
        try:
            results.add(r.set('docs', i))
        except redis.exceptions.ResponseError:
            results.add('error')
    assert results == {True, 'error'}
