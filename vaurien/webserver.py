"""The control API (``--http``): drive a running proxy over HTTP.

Served in the proxy's own process, next to the proxy, by the bounded server
of :mod:`vaurien.httpserver` (limits on heads and bodies, deadlines, a cap
on connections, 4xx for every malformed request). This module only speaks
HTTP: it parses requests, checks who asks (Host, Origin,
token) and maps each route to an operation of :class:`vaurien.control.Control`
(one proxy, or every ``--workers`` process). Routes:

=======  ============  =====================================================
method   path          what it does
=======  ============  =====================================================
GET      /handler      the handler's name as text (a mix: its behavior string)
POST     /handler      set it: a bare name, or ``{"name": N, OPTION: VALUE}``
GET      /handlers     ``{"handlers": [every name usable]}``
GET      /behavior     ``{"behavior": N}`` (as Vaurien 1.x answered)
PUT      /behavior     like POST /handler, or ``{"behavior": "20:delay"}``
GET      /behaviors    ``{"behaviors": [...]}``: 1.9's and the user's
GET/PUT  /backend      ``{"backend": "host:port"}`` for new connections
GET/PUT  /proxy        ``{"enabled": true|false}``: take the service down/up
GET      /metrics      Prometheus metrics, text format (:mod:`vaurien.metrics`)
=======  ============  =====================================================

A change is validated completely (names, options, the handlers' own
construction) before it is swapped in, so a refused change leaves the
previous handler and options in place. Every error answer comes from the
table :data:`ERRORS` (a refusal of the control, a
:class:`~vaurien.control.ControlError`, by its name) and has the body
``{"status": "error", "errors": [{"location", "name", "description"}]}``.

Security: requests whose ``Host`` names neither the bind address, a
loopback name, an IP address nor this machine, or that carry an ``Origin``
that is not this server's own, get 403, so that a web page in a browser
cannot drive the proxy (cross-site requests, DNS rebinding). With a token,
every request needs ``Authorization: Bearer TOKEN``.
"""
import hmac
import ipaddress
import json
import logging
import re
import socket as _socket
from collections import namedtuple
from urllib.parse import urlsplit

from vaurien.config import BadValue, format_hostport, parse_behavior
from vaurien.control import ControlError, one_line
from vaurien.dashboard import CONTENT_TYPE as CONTENT_TYPE_HTML
from vaurien.dashboard import HEADERS, PAGE
from vaurien.httpserver import ClientError, HTTPServer
from vaurien.metrics import CONTENT_TYPE, render_snapshot
from vaurien.proxy import bind

__all__ = ['ERRORS', 'APIError', 'App', 'ControlServer']

log = logging.getLogger('vaurien')

#: The control API's listen backlog: room for a burst of clients (500
#: slowloris connections at once) without the kernel dropping the
#: handshake of the next one, which would then wait a second for its
#: retransmission.
API_BACKLOG = 1024

# Largest request body read, in bytes: a change is a few hundred bytes.
MAX_BODY = 64 * 1024
# Connections the API holds at once (the slowest waiting one is closed to
# make room for a new one), and seconds a request may take to arrive.
MAX_CONNECTIONS = 32
TIMEOUT = 5.0

ErrorSpec = namedtuple('ErrorSpec', 'status location field')

#: Every error the API answers: name -> (HTTP status, location, the default
#: "name" field of the error entry, i.e. what was wrong).
ERRORS = {
    'bad_json': ErrorSpec(400, 'body', 'body'),
    'bad_body': ErrorSpec(400, 'body', 'body'),
    'missing_name': ErrorSpec(400, 'body', 'name'),
    'unknown_handler': ErrorSpec(400, 'body', 'name'),
    'unknown_option': ErrorSpec(400, 'body', 'options'),
    'bad_option': ErrorSpec(400, 'body', 'options'),
    'bad_behavior': ErrorSpec(400, 'body', 'behavior'),
    'handler_failed': ErrorSpec(400, 'body', 'name'),
    'bad_backend': ErrorSpec(400, 'body', 'backend'),
    'bad_enabled': ErrorSpec(400, 'body', 'enabled'),
    'unauthorized': ErrorSpec(401, 'header', 'Authorization'),
    'forbidden_host': ErrorSpec(403, 'header', 'Host'),
    'forbidden_origin': ErrorSpec(403, 'header', 'Origin'),
    'not_found': ErrorSpec(404, 'url', 'path'),
    'method_not_allowed': ErrorSpec(405, 'method', 'method'),
    'listen_failed': ErrorSpec(409, 'body', 'enabled'),
    'body_too_large': ErrorSpec(413, 'body', 'body'),
    'bad_request': ErrorSpec(400, 'request', 'request'),
    'request_timeout': ErrorSpec(408, 'request', 'request'),
    'headers_too_large': ErrorSpec(431, 'header', 'headers'),
    'internal_error': ErrorSpec(500, 'body', 'body'),
    'workers_unavailable': ErrorSpec(503, 'server', 'workers'),
}

_REASONS = {200: 'OK', 400: 'Bad Request', 401: 'Unauthorized',
            403: 'Forbidden', 404: 'Not Found', 405: 'Method Not Allowed',
            408: 'Request Timeout', 409: 'Conflict',
            413: 'Payload Too Large', 431: 'Request Header Fields Too Large',
            500: 'Internal Server Error', 503: 'Service Unavailable'}


class APIError(Exception):
    """One named error of :data:`ERRORS`, with its description.

    *field* overrides the table's default for the entry's ``name`` (the
    option that was wrong, for instance).
    """

    def __init__(self, error, description, field=None, headers=()):
        super().__init__(description)
        spec = ERRORS[error]
        self.error = error
        self.status = spec.status
        self.location = spec.location
        self.field = field or spec.field
        self.description = description
        self.headers = list(headers)

    def body(self):
        """The JSON body of the answer."""
        return {'status': 'error',
                'errors': [{'location': self.location, 'name': self.field,
                            'description': self.description}]}

    @classmethod
    def refused(cls, exc):
        """The answer to a :class:`~vaurien.control.ControlError`."""
        return cls(exc.error, exc.description, exc.field)


_MIX = re.compile(r'\s*[0-9]+\s*:')


def parse_spec(text):
    """A handler name or a behavior string -> ``[(percent, name), ...]``.

    A mix starts with a percent (``20:delay,10:error``); anything else is
    one handler name, used for all the traffic.
    """
    if _MIX.match(text):
        try:
            return parse_behavior(text)
        except (BadValue, ValueError) as exc:
            raise APIError('bad_behavior', str(exc)) from None
    name = text.strip()
    if not name:
        raise APIError('missing_name', 'the handler name is empty')
    return [(100, name)]


def parse_change(body, allow_text):
    """A request body -> ``(pairs, {name: {option: value}})``.

    Accepted: ``{"name": N, OPTION: VALUE, ...}``;
    ``{"behavior": "20:delay,10:error", "options": {N: {...}}}`` (a single
    name may be given as the behavior too, with flat options); with
    *allow_text*, a bare name or behavior string, or a JSON string.
    """
    try:
        text = body.decode('utf-8')
    except UnicodeDecodeError:
        raise APIError('bad_body', 'the body is not UTF-8 text') from None
    stripped = text.strip()
    if allow_text and not stripped.startswith(('{', '[', '"')):
        if not stripped:
            raise APIError('missing_name', 'the body is empty: send a '
                           'handler name, or {"name": NAME, ...}')
        return parse_spec(stripped), {}
    if not stripped:
        raise APIError('missing_name', 'the body is empty: send '
                       '{"name": NAME, OPTION: VALUE, ...}')
    data = _loads(text)
    if allow_text and isinstance(data, str):
        return parse_spec(data), {}
    if not isinstance(data, dict):
        raise APIError('bad_body', 'expected a JSON object like {"name": '
                       '"delay", "sleep": 2}, got a JSON %s'
                       % _json_kind(data))
    data = dict(data)
    name = data.pop('name', None)
    behavior = data.pop('behavior', None)
    if name is not None and behavior is not None:
        raise APIError('bad_body', 'give either "name" or "behavior", not '
                       'both')
    if behavior is not None:
        if not isinstance(behavior, str):
            raise APIError('bad_behavior', '"behavior" must be a string like '
                           '"20:delay,10:error", got a JSON %s'
                           % _json_kind(behavior))
        pairs = parse_spec(behavior)
        options = data.pop('options', None)
        if options is None:
            options = {}
        if not isinstance(options, dict) or not all(
                isinstance(v, dict) for v in options.values()):
            raise APIError('bad_option', '"options" must map handler names '
                           'to objects of options, like {"delay": {"sleep": '
                           '2}}')
        options = {key: dict(value) for key, value in options.items()}
        if data:
            if len(pairs) != 1:
                raise APIError('bad_body', 'unknown key(s) %s: options of a '
                               'mix go in "options": {NAME: {...}}'
                               % ', '.join(sorted(map(repr, data))))
            options.setdefault(pairs[0][1], {}).update(data)
        return pairs, options
    if name is None:
        raise APIError('missing_name', 'missing "name": send {"name": NAME, '
                       'OPTION: VALUE, ...}')
    if not isinstance(name, str):
        raise APIError('missing_name', '"name" must be a string, got a JSON '
                       '%s' % _json_kind(name))
    pairs = parse_spec(name)
    if len(pairs) != 1:
        if data:
            raise APIError('bad_body', 'options of a mix go in "options": '
                           '{NAME: {...}}, with "behavior"')
        return pairs, {}
    return pairs, {pairs[0][1]: data}


def _json_kind(value):
    if isinstance(value, bool):
        return 'boolean'
    if value is None:
        return 'null'
    return {dict: 'object', list: 'array', str: 'string', int: 'number',
            float: 'number'}.get(type(value), type(value).__name__)


def _loads(text):
    """The JSON value of *text*, or the API's ``bad_json`` error."""
    try:
        return json.loads(text)
    except ValueError as exc:
        raise APIError('bad_json', 'the body is not valid JSON: %s' % exc) \
            from None
    except RecursionError:
        raise APIError('bad_json', 'the body is JSON nested too deeply') \
            from None


def _read_json_object(body):
    try:
        text = body.decode('utf-8')
    except UnicodeDecodeError:
        raise APIError('bad_body', 'the body is not UTF-8 text') from None
    data = _loads(text)
    if not isinstance(data, dict):
        raise APIError('bad_body', 'expected a JSON object, got a JSON %s'
                       % _json_kind(data))
    return data


def _is_page(environ):
    """Is this a request for the dashboard page (``GET /``)?"""
    return (environ.get('PATH_INFO') or '/') == '/' and \
        environ.get('REQUEST_METHOD', 'GET').upper() == 'GET'


_LOOPBACK_NAMES = {'localhost', 'localhost.localdomain', 'ip6-localhost',
                   'ip6-loopback'}


def _split_host(header):
    """``'host:port'`` / ``'[::1]:port'`` / ``'host'`` -> lower-case host."""
    header = header.strip().lower()
    if header.startswith('['):
        return header[1:].partition(']')[0]
    return header.rpartition(':')[0] if ':' in header else header


class App:
    """The WSGI application: security checks, routing, answers."""

    def __init__(self, control, token=None, bind_host='localhost', port=8080,
                 proxies=None):
        self.control = control
        # proxies() -> [(name, control)]: the proxies of the process, for
        # GET /group (None: only *control*, unnamed).
        self.proxies = proxies
        self.token = token.encode('utf-8') if token else None
        self.port = port
        self.hosts = set(_LOOPBACK_NAMES)
        if bind_host:
            self.hosts.add(bind_host.strip('[]').lower())
        try:
            self.hosts.add(_socket.gethostname().lower())
        except OSError:
            pass
        self.routes = {
            '/handler': {'GET': self.get_handler, 'POST': self.post_handler},
            '/handlers': {'GET': self.get_handlers},
            '/behavior': {'GET': self.get_behavior, 'PUT': self.put_behavior},
            '/behaviors': {'GET': self.get_behaviors},
            '/backend': {'GET': self.get_backend, 'PUT': self.put_backend},
            '/proxy': {'GET': self.get_proxy, 'PUT': self.put_proxy},
            '/metrics': {'GET': self.get_metrics},
            '/stats': {'GET': self.get_stats},
            '/group': {'GET': self.get_group},
            '/': {'GET': self.get_dashboard},
        }

    # -- WSGI ---------------------------------------------------------------

    def __call__(self, environ, start_response):
        try:
            status, headers, body = self.handle(environ)
        except APIError as exc:
            status, headers, body = self._error(exc)
        except ControlError as exc:
            status, headers, body = self._error(APIError.refused(exc))
        except ClientError:
            raise     # a malformed body: the server answers it (a 4xx)
        except Exception as exc:   # never let a request take the server down
            log.error('control API: %s %s failed: %s: %s',
                      environ.get('REQUEST_METHOD'), environ.get('PATH_INFO'),
                      type(exc).__name__, exc, exc_info=True)
            status, headers, body = self._error(APIError(
                'internal_error', 'internal error: %s' % one_line(exc)))
        headers.append(('Content-Length', str(len(body))))
        start_response('%d %s' % (status, _REASONS.get(status, '')), headers)
        return [body]

    def _error(self, exc):
        body = json.dumps(exc.body()).encode('utf-8') + b'\n'
        headers = [('Content-Type', 'application/json')] + exc.headers
        return exc.status, headers, body

    def error_answer(self, error, description):
        """``(status, headers, body)`` of the named error of :data:`ERRORS`
        (for the server's own refusals of malformed requests)."""
        return self._error(APIError(error, description))

    def handle(self, environ):
        """Check, route and run one request: ``(status, headers, body)``."""
        self.check_access(environ)
        path = environ.get('PATH_INFO') or '/'
        if len(path) > 1:
            path = path.rstrip('/')
        methods = self.routes.get(path)
        if methods is None:
            raise APIError('not_found', 'no such path %r (paths: %s)'
                           % (path, ', '.join(sorted(self.routes))))
        method = environ.get('REQUEST_METHOD', 'GET').upper()
        action = methods.get(method)
        if action is None:
            allowed = ', '.join(sorted(methods))
            raise APIError('method_not_allowed', '%s is not allowed on %s '
                           '(allowed: %s)' % (method, path, allowed),
                           headers=[('Allow', allowed)])
        body = self.read_body(environ) if method in ('POST', 'PUT') else b''
        result = action(body)
        if isinstance(result, tuple):   # (content type, text[, headers])
            headers = [('Content-Type', result[0])]
            headers.extend(result[2] if len(result) > 2 else ())
            return 200, headers, result[1].encode('utf-8')
        if isinstance(result, str):
            return 200, [('Content-Type', 'text/plain; charset=utf-8')], \
                result.encode('utf-8')
        return 200, [('Content-Type', 'application/json')], \
            json.dumps(result).encode('utf-8') + b'\n'

    def check_access(self, environ):
        """403 for foreign Host or Origin headers, 401 without the token.

        The dashboard page itself (``GET /``) needs no token: it is static
        and holds no data; everything it shows or changes goes through
        the other routes, with the token (which the page asks for).
        """
        host = environ.get('HTTP_HOST')
        if host is not None and not self.host_allowed(_split_host(host)):
            raise APIError('forbidden_host', 'Host %r is not this server: '
                           'use localhost, an IP address or the --http-host '
                           'name' % host)
        origin = environ.get('HTTP_ORIGIN')
        if origin is not None and not self.origin_allowed(origin):
            raise APIError('forbidden_origin', 'requests from the web page '
                           'at %r are refused' % origin)
        if self.token is not None and not _is_page(environ):
            given = environ.get('HTTP_AUTHORIZATION', '')
            scheme, _, credentials = given.strip().partition(' ')
            if scheme.lower() != 'bearer' or not hmac.compare_digest(
                    # Header values are the bytes sent, decoded as latin-1
                    # (WSGI): compare those bytes with the token's UTF-8.
                    credentials.strip().encode('latin-1', 'replace'),
                    self.token):
                raise APIError('unauthorized',
                               'missing or wrong token: send the header '
                               '"Authorization: Bearer TOKEN"',
                               headers=[('WWW-Authenticate', 'Bearer')])

    def host_allowed(self, host):
        """A loopback name, an IP address, the bind name or this machine."""
        if host in self.hosts:
            return True
        try:
            ipaddress.ip_address(host)
        except ValueError:
            return False
        return True

    def origin_allowed(self, origin):
        """Is *origin* this server's own (a page it could have served)?"""
        try:
            parts = urlsplit(origin.strip())
            port = parts.port or (80 if parts.scheme == 'http' else None)
        except ValueError:
            return False
        return (parts.scheme == 'http' and port == self.port
                and self.host_allowed((parts.hostname or '').lower()))

    def read_body(self, environ):
        """The request body, at most :data:`MAX_BODY` bytes (413 beyond)."""
        length = environ.get('CONTENT_LENGTH') or ''
        if length.strip().isdigit() and int(length) > MAX_BODY:
            raise APIError('body_too_large', 'the body is larger than %d '
                           'bytes' % MAX_BODY)
        body = environ['wsgi.input'].read(MAX_BODY + 1)
        if len(body) > MAX_BODY:
            raise APIError('body_too_large', 'the body is larger than %d '
                           'bytes' % MAX_BODY)
        return body

    # -- the routes ------------------------------------------------------------

    def get_handler(self, body):
        """The handler's name (or the behavior string of a mix), as text."""
        return self.control.handler_text()

    def post_handler(self, body):
        """Set the handler from a bare name or a JSON object; ``ok``."""
        self.control.change(*parse_change(body, allow_text=True))
        return 'ok'

    def get_handlers(self, body):
        """``{"handlers": [...]}``: every name usable through the API."""
        return {'handlers': self.control.names()}

    def get_behavior(self, body):
        """``{"behavior": N}``, as Vaurien 1.x answered; the options are in
        ``GET /proxy``."""
        return {'behavior': self.control.handler_text()}

    def put_behavior(self, body):
        """Set a handler (``name`` + options) or a mix (``behavior``)."""
        self.control.change(*parse_change(body, allow_text=False))
        return {'status': 'ok'}

    def get_behaviors(self, body):
        """``{"behaviors": [...]}``: the behaviors a Vaurien 1.x client
        knows (:meth:`Control.behavior_names`)."""
        return {'behaviors': self.control.behavior_names()}

    def get_backend(self, body):
        """``{"backend": "host:port"}``: where new connections go."""
        return {'backend': self.control.backend()}

    def put_backend(self, body):
        """Send new connections to ``{"backend": "host:port"}``."""
        data = _read_json_object(body)
        if 'backend' not in data:
            raise APIError('bad_backend', 'missing "backend": send '
                           '{"backend": "HOST:PORT"}')
        self.control.set_backend(data['backend'])
        return {'status': 'ok'}

    def get_proxy(self, body):
        """The state of the proxy (see :meth:`Control.proxy_state`)."""
        return self.control.proxy_state()

    def get_stats(self, body):
        """The counters as JSON (:meth:`vaurien.stats.Snapshot.to_json`):
        what the dashboard draws."""
        return self.control.snapshot().to_json()

    def get_group(self, body):
        """The proxies of the process, for the dashboard (browsers are
        refused Toxiproxy's ``GET /proxies``): ``{"proxies": [{"name",
        "listen", "upstream", "enabled", "connections"}]}``, by name;
        ``name`` is null for a process's only, unnamed proxy."""
        items = ([(None, self.control)] if self.proxies is None
                 else self.proxies())
        listed = []
        for name, control in items:
            state = control.proxy_state()
            listed.append({'name': name, 'listen': state['address'],
                           'upstream': state['backend'],
                           'enabled': state['enabled'],
                           'connections': state['connections']})
        return {'proxies': listed}

    def get_dashboard(self, body):
        """The live dashboard (:mod:`vaurien.dashboard`), a static page
        that reads and drives this API."""
        return CONTENT_TYPE_HTML, PAGE, HEADERS

    def get_metrics(self, body):
        """The Prometheus metrics of the proxy (:mod:`vaurien.metrics`)."""
        return CONTENT_TYPE, render_snapshot(self.control.snapshot())

    def put_proxy(self, body):
        """``{"enabled": false}`` takes the service down, ``true`` up."""
        data = _read_json_object(body)
        enabled = data.get('enabled')
        if not isinstance(enabled, bool):
            raise APIError('bad_enabled', '"enabled" must be true or false, '
                           'got %s' % json.dumps(enabled))
        self.control.set_enabled(enabled)
        return {'status': 'ok'}


class ControlServer:
    """The HTTP server of the control API, in the proxy's process.

    ``start()`` binds (ConfigError when it cannot) and returns the address;
    ``stop()`` closes it.
    """

    def __init__(self, control, host='localhost', port=8080, token=None,
                 make_app=None):
        self.control = control
        self.host = host
        self.port = port
        self.token = token
        # make_app(port) -> (WSGI app, render_error, max_body) served
        # instead of control's App (Vaurien's and Toxiproxy's APIs)
        self.make_app = make_app
        self.server = None
        self.address = None

    def start(self):
        """Bind and serve; the address bound. ConfigError if it cannot."""
        listener = bind((self.host, self.port),
                        'serve the control API on %s (--http-host, '
                        '--http-port)' % format_hostport((self.host,
                                                          self.port)),
                        API_BACKLOG)
        self.address = listener.getsockname()[:2]
        if self.make_app is not None:
            app, render_error, max_body = self.make_app(self.address[1])
        else:
            app = App(self.control, self.token, self.host, self.address[1])
            render_error, max_body = app.error_answer, MAX_BODY
        self.server = HTTPServer(listener, app, render_error,
                                 max_body=max_body,
                                 max_connections=MAX_CONNECTIONS,
                                 timeout=TIMEOUT)
        self.server.start()
        if not self.token and not _is_loopback(self.address[0]):
            log.warning('*** the control API listens on %s WITHOUT A TOKEN: '
                        'anyone who can reach it can change this proxy; set '
                        '--http-token ***', format_hostport(self.address))
        return self.address

    def url(self):
        """``http://HOST:PORT`` of the running server (the port bound)."""
        host = self.host or self.address[0]
        return 'http://%s' % format_hostport((host, self.address[1]))

    def stop(self):
        """Stop serving: the listener and every connection are closed."""
        if self.server is not None:
            self.server.stop()


def _is_loopback(host):
    try:
        return ipaddress.ip_address(host.split('%')[0]).is_loopback
    except ValueError:
        return False
