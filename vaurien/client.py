"""A Python client of the control API: ``from vaurien import Client``.

Standard library only, so that a test suite can drive a proxy without
pulling anything in::

    from vaurien import Client

    client = Client()                      # http://localhost:8080
    with client.with_handler('blackout'):
        ...                                # every request fails here
    # back to the previous handler, with its options

A refusal by the server raises :class:`Refused`, a ValueError with the
server's own message; an unreachable server raises :class:`Unreachable`
(a ConnectionError).
"""
import http.client
import json
import re
from contextlib import contextmanager
from urllib.parse import quote, urlsplit

from vaurien.config import format_hostport

__all__ = ['Client', 'Unreachable', 'Refused', 'MIX']

#: How a behavior string (a mix, ``20:delay,10:error``) starts.
MIX = re.compile(r'\s*[0-9]+\s*:')


class Unreachable(ConnectionError):
    """The control API could not be reached (nothing listens, timeout...)."""


class Refused(ValueError):
    """The control API refused a request: its message, and ``status`` and
    ``errors`` (the entries ``{"location", "name", "description"}`` of the
    answer, empty when it had none)."""

    def __init__(self, message, status, errors):
        super().__init__(message)
        self.status = status
        self.errors = errors


class Client:
    """Drive a proxy started with ``--http``.

    *host* may also be a whole URL (``http://localhost:8080``), which then
    gives the scheme and the port. *token* is sent as
    ``Authorization: Bearer TOKEN`` (``--http-token`` of the proxy).
    *timeout* is in seconds, per request. *proxy* names one of the proxies
    of a process that has several (``[proxy:NAME]`` sections): the requests
    then go to its routes, ``/proxies/NAME/...``.
    """

    def __init__(self, host='localhost', port=8080, scheme='http', token=None,
                 timeout=10.0, proxy=None):
        if '://' in host:
            parts = urlsplit(host)
            scheme = parts.scheme or scheme
            port = parts.port or (443 if scheme == 'https' else 80)
            host = parts.hostname or 'localhost'
        if scheme not in ('http', 'https'):
            raise ValueError('scheme must be http or https, got %r' % scheme)
        self.host = host
        self.port = int(port)
        self.scheme = scheme
        self.token = token
        self.timeout = timeout
        self.proxy = proxy
        self.prefix = '/proxies/%s' % quote(proxy, safe='') if proxy else ''

    @property
    def url(self):
        """The base URL of the control API."""
        return '%s://%s' % (self.scheme, format_hostport((self.host,
                                                          self.port)))

    def __repr__(self):
        if self.proxy:
            return '<Client %s proxy %s>' % (self.url, self.proxy)
        return '<Client %s>' % self.url

    # -- the wire ----------------------------------------------------------------

    def request(self, method, path, data=None):
        """Send one request; the answer's body (text, or decoded JSON).

        *data* is sent as JSON unless it is a str (sent as it is). Raises
        :class:`Refused` (a ValueError) with the server's message on an
        error answer, and
        :class:`Unreachable` when the server cannot be reached.
        """
        headers = {}
        body = None
        if data is not None:
            if isinstance(data, str):
                body = data.encode('utf-8')
                headers['Content-Type'] = 'text/plain; charset=utf-8'
            else:
                body = json.dumps(data).encode('utf-8')
                headers['Content-Type'] = 'application/json'
        if self.token:
            headers['Authorization'] = 'Bearer %s' % self.token
        cls = (http.client.HTTPSConnection if self.scheme == 'https'
               else http.client.HTTPConnection)
        conn = cls(self.host, self.port, timeout=self.timeout)
        try:
            conn.request(method, self.prefix + path, body=body,
                         headers=headers)
            response = conn.getresponse()
            payload = response.read()
            status = response.status
            kind = response.getheader('Content-Type', '')
        except (OSError, http.client.HTTPException) as exc:
            reason = getattr(exc, 'strerror', None) or str(exc) \
                or type(exc).__name__
            raise Unreachable('cannot reach the vaurien control API at %s: %s'
                              % (self.url, reason.lower())) from None
        finally:
            conn.close()
        text = payload.decode('utf-8', 'replace')
        if kind.startswith('application/json'):
            try:
                answer = json.loads(text)
            except ValueError:
                answer = text
        else:
            answer = text
        if status != 200:
            errors = answer.get('errors') if isinstance(answer, dict) else None
            raise Refused(_message(status, answer), status,
                          [e for e in errors or () if isinstance(e, dict)])
        return answer

    # -- the original API -----------------------------------------------------------

    def set_handler(self, name, **options):
        """Use handler *name* (with *options*) for all the traffic.

        *name* may also be a behavior string (``'20:delay,10:error'``).
        """
        if MIX.match(name):
            if options:
                raise ValueError('options of a mix go through set_behavior('
                                 'behavior, NAME={...})')
            data = {'behavior': name}
        else:
            data = dict(options, name=name)
        answer = self.request('POST', '/handler', data)
        if answer != 'ok':
            raise ValueError('unexpected answer from %s: %r'
                             % (self.url, answer))

    def get_handler(self):
        """The current handler's name (a mix: its behavior string)."""
        return self.request('GET', '/handler')

    def list_handlers(self):
        """Every handler name the proxy knows."""
        return self.request('GET', '/handlers')['handlers']

    @contextmanager
    def with_handler(self, name, **options):
        """Use handler *name* inside the block; then restore the previous
        handler and its options, also when the block raises."""
        with self._restoring():
            self.set_handler(name, **options)
            yield self

    # -- the later API ----------------------------------------------------------

    def set_behavior(self, behavior, **options):
        """Use *behavior*: a handler name with its options as keywords, or a
        mix (``'20:delay,10:error'``) with per-handler option dicts
        (``delay={'sleep': 2}``)."""
        if MIX.match(behavior):
            data = {'behavior': behavior, 'options': options}
        else:
            data = dict(options, name=behavior)
        self.request('PUT', '/behavior', data)

    def get_behavior(self):
        """The current behavior: a handler name, or a mix's string."""
        return self.request('GET', '/behavior')['behavior']

    def get_behavior_state(self):
        """``{"behavior": ..., "options": {name: {option: value}}}``: the
        current behavior and the options set for its handlers (from
        ``GET /proxy``), a ``PUT /behavior`` body that restores them."""
        state = self.request('GET', '/proxy')
        return {'behavior': state['behavior'],
                'options': state.get('options') or {}}

    def list_behaviors(self):
        """Every handler name the proxy knows."""
        return self.request('GET', '/behaviors')['behaviors']

    @contextmanager
    def with_behavior(self, behavior, **options):
        """Use *behavior* inside the block (see :meth:`set_behavior`), then
        restore the previous one and its options, also on an exception."""
        with self._restoring():
            self.set_behavior(behavior, **options)
            yield self

    @contextmanager
    def _restoring(self):
        state = self.get_behavior_state()
        try:
            yield
        finally:
            self.request('PUT', '/behavior',
                         {'behavior': state['behavior'],
                          'options': state.get('options') or {}})

    # -- backend and service ----------------------------------------------------------

    def get_backend(self):
        """``'host:port'`` where new connections go."""
        return self.request('GET', '/backend')['backend']

    def set_backend(self, host, port=None):
        """Send new connections to *host*:*port* (or one string, as on the
        command line: ``'host:port'``, ``'[::1]:port'``, ``'unix:/path'``)."""
        backend = host if port is None else format_hostport((host, port))
        self.request('PUT', '/backend', {'backend': backend})

    def get_proxy(self):
        """The proxy's state: ``enabled``, ``address``, ``backend``..."""
        return self.request('GET', '/proxy')

    def disable(self):
        """Take the service down: connections are refused, open ones cut."""
        self.request('PUT', '/proxy', {'enabled': False})

    def enable(self):
        """Bring the service back, on the same port."""
        self.request('PUT', '/proxy', {'enabled': True})

    @contextmanager
    def down(self):
        """The service is down inside the block (connection refused), and
        back up afterwards, also when the block raises."""
        was_enabled = self.get_proxy().get('enabled', True)
        self.disable()
        try:
            yield self
        finally:
            if was_enabled:
                self.enable()


def _message(status, answer):
    """The server's own message from an error answer."""
    if isinstance(answer, dict):
        errors = answer.get('errors')
        if isinstance(errors, list) and errors:
            texts = [str(e.get('description', e)) if isinstance(e, dict)
                     else str(e) for e in errors]
            return '; '.join(texts)
    text = answer if isinstance(answer, str) else json.dumps(answer)
    return text.strip() or 'HTTP %d' % status
