"""Toxiproxy's HTTP API, served by Vaurien: every Toxiproxy client works.

The routes, JSON shapes, status codes and error messages are Toxiproxy's
(v2.12), so that its clients (Go, Ruby, Python, Node, Java...), its CLI
and Testcontainers' module drive Vaurien unchanged:

==============================  ==================  =====================
route                           methods             answer
==============================  ==================  =====================
``/proxies``                    GET, POST           200 ``{NAME: proxy}``,
                                                    201 proxy
``/populate``                   POST                201 ``{"proxies": [...]}``
``/proxies/{proxy}``            GET, POST/PATCH,    200 proxy, 204
                                DELETE
``/proxies/{proxy}/toxics``     GET, POST           200 ``[toxic]``,
                                                    200 toxic
``/proxies/{proxy}/toxics/{t}`` GET, POST/PATCH,    200 toxic, 204
                                DELETE
``/reset``                      POST                204
``/version``                    GET                 ``{"version": "2.12.0"}``
``/metrics``                    GET                 Prometheus text
==============================  ==================  =====================

A proxy is ``{"name", "listen", "upstream", "enabled", "toxics": [...]}``;
a toxic ``{"attributes": {...}, "name", "type", "stream", "toxicity"}``.
Errors are ``{"error": MESSAGE, "status": CODE}`` with the messages of
:data:`ERRORS`. Every answer has an ``X-Toxiproxy-Request-Id`` header. Requests whose User-Agent starts with ``Mozilla/`` get 403
("User agent not allowed"), as in Toxiproxy, on top of Vaurien's Host,
Origin and token checks.

The app works on a :class:`vaurien.proxies.ProxyGroup` ("a set of named
proxies"); nothing here knows how a proxy relays.
"""
import json
import logging
import os
from collections import namedtuple

from vaurien.stats import snapshot
from vaurien.proxies import (BadAddress, ListenError, ProxyExists,
                             ProxyNotFound)
from vaurien.toxics import ToxicError
from vaurien.webserver import App as _VaurienApp
from vaurien.webserver import APIError as _VaurienError

__all__ = ['ToxiproxyApp', 'ERRORS', 'ToxiproxyError', 'VERSION']

log = logging.getLogger('vaurien')

#: What ``GET /version`` reports: the Toxiproxy release whose API this is.
VERSION = '2.12.0'

# Largest request body read, in bytes (a populate of many proxies).
MAX_BODY = 1 << 20

Spec = namedtuple('Spec', 'status message')

#: Every error of the API: name -> (status, Toxiproxy's message).
ERRORS = {
    'bad_body': Spec(400, 'bad request body'),
    'missing_field': Spec(400, 'missing required field'),
    'proxy_not_found': Spec(404, 'proxy not found'),
    'proxy_exists': Spec(409, 'proxy already exists'),
    'invalid_stream': Spec(400, 'stream was invalid, can be either upstream '
                                'or downstream'),
    'invalid_type': Spec(400, 'invalid toxic type'),
    'toxic_exists': Spec(409, 'toxic already exists'),
    'toxic_not_found': Spec(404, 'toxic not found'),
    'listen_failed': Spec(500, ''),
    'forbidden': Spec(403, ''),
    'unauthorized': Spec(401, ''),
    'body_too_large': Spec(413, 'bad request body'),
}

_TEXT = 'text/plain; charset=utf-8'

_TOXIC_CODES = {'bad_body': 'bad_body', 'invalid_stream': 'invalid_stream',
                'invalid_type': 'invalid_type', 'exists': 'toxic_exists',
                'not_found': 'toxic_not_found'}

_REASONS = {200: 'OK', 201: 'Created', 204: 'No Content',
            400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden',
            404: 'Not Found', 405: 'Method Not Allowed', 409: 'Conflict',
            413: 'Payload Too Large', 500: 'Internal Server Error'}


class ToxiproxyError(Exception):
    """One error of :data:`ERRORS`; *detail* follows the message after
    ``": "`` (Toxiproxy's ``joinError``), or is the message when the
    table has none."""

    def __init__(self, name, detail=None, headers=()):
        spec = ERRORS[name]
        if spec.message and detail:
            message = '%s: %s' % (spec.message, detail)
        else:
            message = spec.message or detail or ''
        super().__init__(message)
        self.status = spec.status
        self.message = message
        self.headers = list(headers)

    def body(self):
        return {'error': self.message, 'status': self.status}


def _toxic_error(exc):
    # Toxiproxy's own words; only a bad body says what was wrong
    detail = str(exc) if exc.code == 'bad_body' else None
    return ToxiproxyError(_TOXIC_CODES[exc.code], detail)


def _lower_keys(data):
    """Go's JSON decoder matches field names without regard to case."""
    return {str(key).lower(): value for key, value in data.items()}


def _string(data, key, default=''):
    value = data.get(key, default)
    if value is None:
        return default
    if not isinstance(value, str):
        raise ToxiproxyError('bad_body', 'field %r expects a string, got %s'
                             % (key, json.dumps(value)))
    return value


def _bool(data, key, default):
    value = data.get(key)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise ToxiproxyError('bad_body', 'field %r expects true or false, '
                             'got %s' % (key, json.dumps(value)))
    return value


def _listen(value):
    # Go listens on every address with a free port for "".
    return value or ':0'


class ToxiproxyApp:
    """The WSGI application of Toxiproxy's API over a ProxyGroup.

    *group* is the :class:`~vaurien.proxies.ProxyGroup`; *token*,
    *bind_host* and *port* drive Vaurien's own access checks (Host and
    Origin headers, ``Authorization: Bearer TOKEN``).
    """

    def __init__(self, group, token=None, bind_host='localhost', port=8474):
        self.group = group
        self.guard = _VaurienApp(None, token, bind_host, port)
        self.routes = [
            (('proxies',), {'GET': self.proxy_index,
                            'POST': self.proxy_create}),
            (('populate',), {'POST': self.populate}),
            (('reset',), {'POST': self.reset}),
            (('version',), {'GET': self.version}),
            (('metrics',), {'GET': self.metrics}),
            (('proxies', None), {'GET': self.proxy_show,
                                 'POST': self.proxy_update,
                                 'PATCH': self.proxy_update,
                                 'DELETE': self.proxy_delete}),
            (('proxies', None, 'toxics'), {'GET': self.toxic_index,
                                           'POST': self.toxic_create}),
            (('proxies', None, 'toxics', None), {
                'GET': self.toxic_show, 'POST': self.toxic_update,
                'PATCH': self.toxic_update, 'DELETE': self.toxic_delete}),
        ]

    # -- WSGI -----------------------------------------------------------------

    def __call__(self, environ, start_response):
        try:
            status, headers, body = self.handle(environ)
        except ToxiproxyError as exc:
            status = exc.status
            headers = [('Content-Type', 'application/json')] + exc.headers
            body = json.dumps(exc.body()).encode('utf-8') + b'\n'
        except Exception as exc:   # never let a request take the server down
            log.error('toxiproxy API: %s %s failed: %s: %s',
                      environ.get('REQUEST_METHOD'), environ.get('PATH_INFO'),
                      type(exc).__name__, exc, exc_info=True)
            status = 500
            headers = [('Content-Type', 'application/json')]
            body = json.dumps({'error': '%s: %s' % (type(exc).__name__, exc),
                               'status': 500}).encode('utf-8') + b'\n'
        if status != 204:
            headers.append(('Content-Length', str(len(body))))
        rid = request_id()
        headers.append(('X-Toxiproxy-Request-Id', rid))
        if log.isEnabledFor(logging.DEBUG):
            # Toxiproxy's access log, at the same level
            log.debug('toxiproxy API: %s %s %d (%s, request %s)',
                      environ.get('REQUEST_METHOD'), environ.get('PATH_INFO'),
                      status, environ.get('HTTP_USER_AGENT', '-'), rid)
        start_response('%d %s' % (status, _REASONS.get(status, '')), headers)
        return [body] if status != 204 else []

    def handle(self, environ):
        """Check, route and run one request: ``(status, headers, body)``."""
        agent = environ.get('HTTP_USER_AGENT', '')
        if agent.startswith('Mozilla/'):
            return 403, [('Content-Type', _TEXT)], \
                b'User agent not allowed\n'
        try:
            self.guard.check_access(environ)
        except _VaurienError as exc:
            raise ToxiproxyError('unauthorized' if exc.status == 401
                                 else 'forbidden', exc.description,
                                 headers=exc.headers) from None
        path = environ.get('PATH_INFO') or '/'
        parts = path.split('/')[1:]
        method = environ.get('REQUEST_METHOD', 'GET').upper()
        for pattern, methods in self.routes:
            args = _match(pattern, parts)
            if args is None:
                continue
            action = methods.get(method)
            if action is None:
                return 405, [('Content-Type', _TEXT)], b''
            body = b''
            if method in ('POST', 'PATCH', 'PUT'):
                body = self.read_body(environ)
            return action(body, *args)
        return 404, [('Content-Type', _TEXT)], \
            b'404 page not found\n'

    @staticmethod
    def read_body(environ):
        length = environ.get('CONTENT_LENGTH') or ''
        if length.strip().isdigit() and int(length) > MAX_BODY:
            raise ToxiproxyError('body_too_large', 'larger than %d bytes'
                                 % MAX_BODY)
        body = environ['wsgi.input'].read(MAX_BODY + 1)
        if len(body) > MAX_BODY:
            raise ToxiproxyError('body_too_large', 'larger than %d bytes'
                                 % MAX_BODY)
        return body

    # -- helpers --------------------------------------------------------------

    @staticmethod
    def decode(body, kind=dict):
        """The JSON value of *body*, of type *kind*; else bad request body."""
        text = body.decode('utf-8', 'replace').strip()
        if not text:
            raise ToxiproxyError('bad_body', 'EOF')
        try:
            value = json.loads(text)
        except ValueError as exc:
            raise ToxiproxyError('bad_body', str(exc)) from None
        except RecursionError:
            raise ToxiproxyError('bad_body', 'nested too deeply') from None
        if not isinstance(value, kind):
            raise ToxiproxyError('bad_body', 'expected a JSON %s'
                                 % ('object' if kind is dict else 'array'))
        return value

    def proxy(self, name):
        try:
            return self.group.get(name)
        except ProxyNotFound:
            raise ToxiproxyError('proxy_not_found') from None

    @staticmethod
    def json(status, value):
        return status, [('Content-Type', 'application/json')], \
            json.dumps(value).encode('utf-8')

    # -- proxies --------------------------------------------------------------

    def proxy_index(self, body):
        return self.json(200, {p.name: p.shown() for p in self.group})

    def new_proxy(self, data, where=''):
        """A NamedProxy from a checked proxy object (not added)."""
        try:
            proxy = self.group.new(data['name'], _listen(data['listen']),
                                   data['upstream'])
        except BadAddress as exc:
            raise ToxiproxyError('bad_body', str(exc) + where) from None
        toxics = data.get('toxics') or []
        if not isinstance(toxics, list):
            raise ToxiproxyError('bad_body', '"toxics" expects an array')
        for toxic in toxics:
            try:
                proxy.toxics.add(toxic)
            except ToxicError as exc:
                proxy.close()
                raise _toxic_error(exc) from None
        return proxy

    @staticmethod
    def proxy_fields(data, where=''):
        data = _lower_keys(data)
        fields = {'name': _string(data, 'name'),
                  'listen': _string(data, 'listen'),
                  'upstream': _string(data, 'upstream'),
                  'enabled': data.get('enabled'),
                  'toxics': data.get('toxics')}
        if not fields['name']:
            raise ToxiproxyError('missing_field', 'name' + where)
        if not fields['upstream']:
            raise ToxiproxyError('missing_field', 'upstream' + where)
        fields['enabled'] = _bool(fields, 'enabled', True)
        return fields

    def proxy_create(self, body):
        data = self.proxy_fields(self.decode(body))
        if data['name'] in self.group:
            raise ToxiproxyError('proxy_exists')
        proxy = self.new_proxy(data)
        try:
            self.group.add(proxy, data['enabled'])
        except ProxyExists:
            proxy.close()
            raise ToxiproxyError('proxy_exists') from None
        except ListenError as exc:
            proxy.close()
            raise ToxiproxyError('listen_failed', str(exc)) from None
        log.info('toxiproxy API: proxy %s created (%s -> %s)', proxy.name,
                 proxy.listen, proxy.upstream)
        return self.json(201, proxy.shown())

    def populate(self, body):
        try:
            items = self.decode(body, list)
        except ToxiproxyError as exc:
            return self.json(exc.status, {**exc.body(), 'proxies': None})
        checked = []
        try:
            for index, item in enumerate(items):
                where = ' at proxy %d' % (index + 1)
                if not isinstance(item, dict):
                    raise ToxiproxyError('bad_body', 'expected an object%s'
                                         % where)
                checked.append(self.proxy_fields(item, where))
        except ToxiproxyError as exc:
            return self.json(exc.status, {**exc.body(), 'proxies': None})
        done = []
        try:
            for data in checked:
                existing = None
                if data['name'] in self.group:
                    existing = self.group.get(data['name'])
                    if existing.differs(_listen(data['listen']),
                                        data['upstream']):
                        existing = None
                if existing is not None:
                    if data['toxics'] is not None:
                        self.replace_toxics(existing, data['toxics'])
                    done.append(existing)
                    continue
                proxy = self.new_proxy(data)
                try:
                    self.group.replace(proxy, data['enabled'])
                except ListenError as exc:
                    raise ToxiproxyError('listen_failed', str(exc)) from None
                done.append(proxy)
        except ToxiproxyError as exc:
            return self.json(exc.status, {**exc.body(), 'proxies':
                                          [p.shown() for p in done]})
        log.info('toxiproxy API: populated %d proxies', len(done))
        return self.json(201, {'proxies': [p.shown() for p in done]})

    def replace_toxics(self, proxy, toxics):
        if not isinstance(toxics, list):
            raise ToxiproxyError('bad_body', '"toxics" expects an array')
        built = []
        for toxic in toxics:     # all checked before any is swapped in
            try:
                built.append(proxy.toxics.build(toxic))
            except ToxicError as exc:
                raise _toxic_error(exc) from None
        proxy.toxics.reset()
        for toxic in toxics:
            proxy.toxics.add(toxic)

    def proxy_show(self, body, name):
        return self.json(200, self.proxy(name).shown())

    def proxy_update(self, body, name):
        proxy = self.proxy(name)
        data = _lower_keys(self.decode(body))
        listen = _string(data, 'listen', proxy.listen) or proxy.listen
        upstream = _string(data, 'upstream', proxy.upstream) or proxy.upstream
        enabled = _bool(data, 'enabled', proxy.enabled)
        try:
            proxy.update(listen, upstream, enabled)
        except BadAddress as exc:
            raise ToxiproxyError('bad_body', str(exc)) from None
        except ListenError as exc:
            raise ToxiproxyError('listen_failed', str(exc)) from None
        log.info('toxiproxy API: proxy %s updated (%s -> %s, %s)', name,
                 proxy.listen, proxy.upstream,
                 'enabled' if proxy.enabled else 'disabled')
        return self.json(200, proxy.shown())

    def proxy_delete(self, body, name):
        try:
            self.group.remove(name)
        except ProxyNotFound:
            raise ToxiproxyError('proxy_not_found') from None
        log.info('toxiproxy API: proxy %s removed', name)
        return 204, [], b''

    def reset(self, body):
        for proxy in self.group:
            try:
                proxy.start()
            except ListenError as exc:
                raise ToxiproxyError('listen_failed', str(exc)) from None
            proxy.toxics.reset()
        log.info('toxiproxy API: reset')
        return 204, [], b''

    # -- toxics ---------------------------------------------------------------

    def toxic_index(self, body, name):
        proxy = self.proxy(name)
        return self.json(200, [t.shown() for t in proxy.toxics.list()])

    def toxic_create(self, body, name):
        proxy = self.proxy(name)
        data = self.decode(body)
        try:
            toxic = proxy.toxics.add(data)
        except ToxicError as exc:
            raise _toxic_error(exc) from None
        log.info('toxiproxy API: proxy %s: toxic %s added', name, toxic.name)
        return self.json(200, toxic.shown())

    def toxic_show(self, body, name, toxic_name):
        toxic = self.proxy(name).toxics.get(toxic_name)
        if toxic is None:
            raise ToxiproxyError('toxic_not_found')
        return self.json(200, toxic.shown())

    def toxic_update(self, body, name, toxic_name):
        proxy = self.proxy(name)
        if proxy.toxics.get(toxic_name) is None:
            raise ToxiproxyError('toxic_not_found')
        data = self.decode(body)
        try:
            toxic = proxy.toxics.update(toxic_name, data)
        except ToxicError as exc:
            raise _toxic_error(exc) from None
        log.info('toxiproxy API: proxy %s: toxic %s updated', name,
                 toxic_name)
        return self.json(200, toxic.shown())

    def toxic_delete(self, body, name, toxic_name):
        proxy = self.proxy(name)
        try:
            proxy.toxics.remove(toxic_name)
        except ToxicError as exc:
            raise _toxic_error(exc) from None
        log.info('toxiproxy API: proxy %s: toxic %s removed', name,
                 toxic_name)
        return 204, [], b''

    # -- version, metrics -----------------------------------------------------

    def version(self, body):
        return 200, [('Content-Type', 'application/json;charset=utf-8')], \
            ('{"version": "%s"}\n' % VERSION).encode('utf-8')

    def metrics(self, body):
        return 200, [('Content-Type', CONTENT_TYPE)], \
            render_group(self.group).encode('utf-8')


_BASE32HEX = '0123456789abcdefghijklmnopqrstuv'


def request_id():
    """A fresh id for the ``X-Toxiproxy-Request-Id`` header (20
    characters of base32hex, as Toxiproxy's ids are)."""
    return ''.join(_BASE32HEX[byte & 31] for byte in os.urandom(20))


def _match(pattern, parts):
    """The path arguments when *parts* match *pattern* (None: any one
    non-empty segment), else None."""
    if len(pattern) != len(parts):
        return None
    args = []
    for want, got in zip(pattern, parts):
        if want is None:
            if not got:
                return None
            args.append(got)
        elif want != got:
            return None
    return args


CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8'


def _label(value):
    return (str(value).replace('\\', '\\\\').replace('"', '\\"')
            .replace('\n', '\\n'))


def render_group(group):
    """Prometheus text for every proxy of *group*: Toxiproxy's
    ``toxiproxy_proxy_received_bytes_total`` (bytes read from the source of
    each direction, before handlers and toxics) and
    ``toxiproxy_proxy_sent_bytes_total`` (bytes written to its destination,
    after them) beside Vaurien's connection counters, each labelled with
    the proxy."""
    lines = []
    snaps = [(proxy, snapshot(proxy.proxy)) for proxy in group]
    for metric, text, up, down in (
            ('toxiproxy_proxy_received_bytes_total',
             'Bytes read from the source of each direction.',
             'bytes_up', 'bytes_down'),
            ('toxiproxy_proxy_sent_bytes_total',
             'Bytes written to the destination of each direction.',
             'sent_up', 'sent_down')):
        lines.append('# HELP %s %s' % (metric, text))
        lines.append('# TYPE %s counter' % metric)
        for proxy, snap in snaps:
            for direction, attr in (('upstream', up), ('downstream', down)):
                lines.append('%s{direction="%s",listener="%s",proxy="%s",'
                             'upstream="%s"} %d'
                             % (metric, direction, _label(proxy.listen),
                                _label(proxy.name), _label(proxy.upstream),
                                getattr(snap, attr)))
    for metric, kind, text, attr in (
            ('vaurien_connections_total', 'counter',
             'Client connections accepted.', 'opened'),
            ('vaurien_connections_open', 'gauge',
             'Client connections open now.', 'open')):
        lines.append('# HELP %s %s' % (metric, text))
        lines.append('# TYPE %s %s' % (metric, kind))
        for proxy, snap in snaps:
            lines.append('%s{proxy="%s"} %d' % (metric, _label(proxy.name),
                                                getattr(snap, attr)))
    return '\n'.join(lines) + '\n'


class CombinedApp:
    """Vaurien's control API and Toxiproxy's on one server.

    *toxiproxy* is the :class:`ToxiproxyApp`; *vaurien_app(name)* returns
    Vaurien's control API (a WSGI app) for proxy *name*, or None when
    there is no such proxy; *default_name()* names the proxy Vaurien's
    top-level routes act on (``default``, or the only proxy), or None;
    *routes* are Vaurien's top-level paths (``/handler``, ``/behavior``...).

    Dispatch, so that both APIs keep every route they document:

    * ``/proxies/NAME/ROUTE...`` for one of Vaurien's routes: Vaurien's API
      of proxy NAME (``toxics`` is not one of them: ``/proxies/NAME/toxics``
      is Toxiproxy's);
    * ``/proxies...``, ``/populate``, ``/reset``, ``/version``: Toxiproxy's;
    * without a default proxy, ``/metrics`` (every proxy, labelled) and any
      path that is not one of Vaurien's routes: Toxiproxy's;
    * ``/group`` (the proxies, for the dashboard), and ``/`` (the
      dashboard) without a default proxy: *shared*, Vaurien's API of the
      whole process;
    * anything else: Vaurien's API of the default proxy (its answers,
      errors included, as without Toxiproxy's routes).
    """

    TOXIPROXY = frozenset(['proxies', 'populate', 'reset', 'version'])

    def __init__(self, toxiproxy, vaurien_app, default_name, routes,
                 shared=None):
        self.toxiproxy = toxiproxy
        # Vaurien's API for the whole process: GET /group, and the
        # dashboard at / when there is no default proxy.
        self.shared = shared
        self.vaurien_app = vaurien_app
        self.default_name = default_name
        self.routes = {route.strip('/') for route in routes}

    def __call__(self, environ, start_response):
        path = environ.get('PATH_INFO') or '/'
        if self.shared is not None and (path == '/group' or (
                path == '/' and self.default_name() is None)):
            return self.shared(environ, start_response)
        parts = path.split('/')
        first = parts[1] if len(parts) > 1 else ''
        if first == 'proxies' and len(parts) >= 4 and parts[3] in self.routes:
            name = parts[2]
            rest = '/' + '/'.join(parts[3:])
            prefix = '/proxies/%s' % name
        elif first in self.TOXIPROXY:
            return self.toxiproxy(environ, start_response)
        else:
            name = self.default_name()
            if name is None and (path == '/metrics'
                                 or first not in self.routes):
                return self.toxiproxy(environ, start_response)
            rest = path
            prefix = ''
        app = self.vaurien_app(name) if name is not None else None
        if app is None:
            what = ('no proxy named %r' % name if name is not None else
                    'no default proxy: name one, /proxies/NAME%s' % path)
            body = json.dumps({'status': 'error', 'errors': [{
                'location': 'url', 'name': 'path',
                'description': what}]}).encode('utf-8') + b'\n'
            start_response('404 Not Found', [
                ('Content-Type', 'application/json'),
                ('Content-Length', str(len(body)))])
            return [body]
        environ = dict(environ)
        environ['PATH_INFO'] = rest
        environ['SCRIPT_NAME'] = environ.get('SCRIPT_NAME', '') + prefix
        return app(environ, start_response)
