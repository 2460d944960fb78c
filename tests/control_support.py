"""Helpers for the control API tests: a vaurien with ``--http``, raw HTTP."""
import http.client
import json
import re

import support

_CONTROL = re.compile(r'control API on http://\S+:(\d+)')


def start_controlled(vaurien, backend, *args, **kwargs):
    """Start ``vaurien --http`` (API on 127.0.0.1, free port) via the
    ``vaurien`` fixture (*kwargs* go to it: ``cwd``...); the process gets
    ``.http_port``."""
    proc = vaurien('--http', '--http-host', support.HOST, '--http-port', '0',
                   *args, backend=backend, **kwargs)
    match = _CONTROL.search(proc.log())
    assert match, proc.log()
    proc.http_port = int(match.group(1))
    return proc


class Answer:
    """One HTTP answer: ``status``, ``headers`` (lower-case keys), ``body``
    (bytes), ``text`` and ``json``."""

    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body
        self.text = body.decode('utf-8')

    @property
    def json(self):
        return json.loads(self.text)

    def __repr__(self):
        return '<Answer %d %r>' % (self.status, self.body[:200])


def api(port, method, path, body=None, headers=None, host=support.HOST):
    """One request to the control API on *port*; an :class:`Answer`.

    *body*: bytes/str sent as they are, anything else as JSON.
    """
    if body is not None and not isinstance(body, (bytes, str)):
        body = json.dumps(body)
    if isinstance(body, str):
        body = body.encode('utf-8')
    conn = http.client.HTTPConnection(host, port, timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        data = response.read()
        return Answer(response.status,
                      {k.lower(): v for k, v in response.getheaders()}, data)
    finally:
        conn.close()


def assert_error(answer, status, name=None, contains=None, location=None):
    """*answer* is the documented error body with *status*."""
    assert answer.status == status, answer
    assert answer.headers['content-type'] == 'application/json'
    body = answer.json
    assert body['status'] == 'error'
    assert isinstance(body['errors'], list) and len(body['errors']) == 1
    error = body['errors'][0]
    assert set(error) == {'location', 'name', 'description'}
    if name is not None:
        assert error['name'] == name, error
    if location is not None:
        assert error['location'] == location, error
    if contains is not None:
        assert contains in error['description'], error
    assert '\n' not in error['description']
    return error


def picks(port, handler, direction='upstream'):
    """How many events of *direction* picked *handler* so far, from the
    ``vaurien_handler_picks_total`` counter of ``GET /metrics``."""
    prefix = ('vaurien_handler_picks_total{handler="%s",direction="%s"} '
              % (handler, direction))
    answer = api(port, 'GET', '/metrics')
    assert answer.status == 200, answer
    for line in answer.text.splitlines():
        if line.startswith(prefix):
            return int(float(line[len(prefix):]))
    return 0


def wait_picks(proxy, handler, count, direction='upstream'):
    """Poll until *count* events of *direction* picked *handler*.

    A pick is counted when the event is handed to the handler's greenlet,
    which the proxy runs before it serves a control request made after.
    """
    support.wait_until(
        lambda: picks(proxy.http_port, handler, direction) >= count,
        what='%d %s pick(s) of %s' % (count, direction, handler))


def set_back(proc, backend):
    """Set a ``start_controlled`` proxy back to what a new one in front of
    *backend* shows (enabled, ``dummy`` with no options), and check it: for
    a proxy shared by the tests of a module."""
    port = proc.http_port
    assert api(port, 'POST', '/handler', 'dummy').text == 'ok'
    assert api(port, 'PUT', '/proxy', {'enabled': True}).status == 200
    assert api(port, 'PUT', '/backend',
               {'backend': '%s:%d' % tuple(backend)}).status == 200
    assert api(port, 'GET', '/behavior').json == {'behavior': 'dummy'}
    state = api(port, 'GET', '/proxy').json
    assert (state['enabled'], state['backend'], state['options']) == (
        True, '%s:%d' % tuple(backend), {'dummy': {}}), state
    return proc
