"""vaurien/_gevent.py: the private parts of gevent the engine relies on.

A gevent upgrade that renames one of them must fail here, naming it,
rather than deep in the engine at the first connection.
"""
import ast
import os

import pytest
from gevent.socket import socket as GeventSocket

import support
from vaurien import _gevent

pytestmark = pytest.mark.timeout(30)

PRIVATE = {attr for _, attr, _ in _gevent.REQUIRED if attr.startswith('_')}


def test_every_private_name_the_engine_uses_is_still_there():
    problems = _gevent.missing()
    assert not problems, '\n'.join(problems)


def test_a_missing_name_is_reported_with_its_owner_and_purpose():
    (message,) = _gevent.missing(
        ((GeventSocket, '_renamed_in_a_new_release', 'the read watcher'),))
    assert '.socket._renamed_in_a_new_release is gone (the read watcher)' \
        in message
    assert 'vaurien/_gevent.py' in message


def test_no_other_module_touches_them():
    """Only vaurien/_gevent.py reads gevent's private attributes."""
    package = os.path.join(support.ROOT, 'vaurien')
    offenders = []
    for folder, _, files in os.walk(package):
        for filename in files:
            if not filename.endswith('.py') or filename == '_gevent.py':
                continue
            path = os.path.join(folder, filename)
            with open(path, encoding='utf-8') as fh:
                tree = ast.parse(fh.read(), path)
            for node in ast.walk(tree):
                if isinstance(node, ast.Attribute) and node.attr in PRIVATE:
                    offenders.append('%s:%d .%s' % (
                        os.path.relpath(path, support.ROOT), node.lineno,
                        node.attr))
    assert not offenders, offenders
