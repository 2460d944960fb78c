"""Many named proxies in one process: :class:`ProxyGroup`.

A :class:`NamedProxy` is one :class:`vaurien.proxy.Proxy` with a name, the
``listen`` and ``upstream`` addresses as the user gave them, an enabled
flag and its toxics. It keeps the same engine object for its whole life:
disabling it stops the listener and closes its connections, enabling it
binds again; changing ``listen`` or ``upstream`` restarts its listener
only. Nothing done to one proxy touches another's connections.

Listening errors read as Toxiproxy's (Go's) do, because its clients and
tests compare them: ``listen tcp 127.0.0.1:3310: bind: address already in
use``.
"""
import os
import socket as _socket

from vaurien.config import ConfigError, format_hostport, parse_hostport
from vaurien.proxy import resolve

__all__ = ['ProxyGroup', 'NamedProxy', 'ListenError', 'ProxyExists',
           'ProxyNotFound', 'BadAddress', 'listen_socket']


class ListenError(Exception):
    """The listen address cannot be used (message as Go words it)."""


class BadAddress(ValueError):
    """An address that is not HOST:PORT."""


class ProxyExists(KeyError):
    """A proxy of this name exists already."""


class ProxyNotFound(KeyError):
    """No proxy of this name."""


def listen_socket(listen, backlog=1024):
    """A socket bound to *listen* (``"host:port"``) and listening.

    ListenError with Go's wording when it cannot be (the port taken, no
    such host, no port).
    """
    host, sep, port = listen.rpartition(':')
    if not sep:
        raise ListenError('listen tcp: address %s: missing port in address'
                          % listen)
    if host.startswith('[') and host.endswith(']'):
        host = host[1:-1]
    try:
        port = int(port) if port else 0
        if not 0 <= port < 65536:
            raise ValueError(port)
    except ValueError:
        raise ListenError('listen tcp: address %s: invalid port' % port) \
            from None
    try:
        family, sockaddr = resolve(host, port, passive=True)[0]
    except (_socket.gaierror, UnicodeError, IndexError):
        raise ListenError('listen tcp: lookup %s: no such host' % host) \
            from None
    sock = _socket.socket(family, _socket.SOCK_STREAM)
    try:
        sock.setsockopt(_socket.SOL_SOCKET, _socket.SO_REUSEADDR, 1)
        sock.bind(sockaddr)
        sock.listen(backlog)
    except OSError as exc:
        sock.close()
        reason = os.strerror(exc.errno).lower() if exc.errno else str(exc)
        raise ListenError('listen tcp %s: bind: %s'
                          % (format_hostport(sockaddr[:2]), reason)) \
            from None
    sock.setblocking(False)
    return sock


def parse_upstream(upstream):
    """``"host:port"`` -> ``(host, port)``; BadAddress when it is not."""
    try:
        return parse_hostport(upstream)
    except ValueError as exc:
        raise BadAddress('upstream expects %s, got %r' % (exc, upstream)) \
            from None


class NamedProxy:
    """One proxy of a :class:`ProxyGroup` (see the module docstring).

    *proxy* is its engine (:class:`vaurien.proxy.Proxy`, not started);
    ``listen`` is the address as given while the proxy is disabled, and
    the address really bound (``127.0.0.1:P`` for ``localhost:0``) while it
    is enabled, as Toxiproxy reports it.
    """

    def __init__(self, name, proxy, listen, upstream, engine_binds=False):
        self.name = name
        self.proxy = proxy
        self.listen = listen
        self.upstream = upstream
        self.toxics = proxy.toxics
        self.closed = False
        # A proxy of the settings binds as the engine does (Unix sockets,
        # TLS, --local-mode, its messages) until the API gives it another
        # address; one made through the API binds as Toxiproxy does.
        self.engine_binds = engine_binds

    @property
    def enabled(self):
        """Listening now (also when Vaurien's ``PUT /proxy`` took it down or
        up: the engine's state is the one truth)."""
        proxy = self.proxy
        return (not self.closed and proxy.server is not None
                and not proxy.disabled)

    def start(self):
        """Listen (ListenError when it cannot); a no-op when enabled."""
        if self.enabled:
            return
        if self.engine_binds:
            try:
                if self.proxy.server is None:
                    self.proxy.start()
                else:
                    self.proxy.enable()
            except ConfigError as exc:
                raise ListenError(str(exc)) from None
        else:
            listener = listen_socket(self.listen, self.proxy.backlog)
            if self.proxy.server is None:
                self.proxy.start(listener)
            else:
                self.proxy.enable(listener)
        self.listen = format_hostport(self.proxy.address)

    def stop(self):
        """Stop listening and close this proxy's connections."""
        if self.enabled:
            self.proxy.disable()

    def close(self):
        """Stop for good (the proxy is removed)."""
        self.closed = True
        self.proxy.toxics.reset()
        self.proxy.stop()

    def differs(self, listen, upstream):
        """Would *listen*/*upstream* change this proxy? (Toxiproxy resolves
        the new listen address before comparing it with the bound one.)"""
        if upstream != self.upstream:
            return True
        if listen == self.listen:
            return False
        host, sep, port = listen.rpartition(':')
        try:
            resolved = format_hostport(resolve(host.strip('[]'),
                                               int(port))[0][1][:2])
        except (ValueError, OSError, IndexError, UnicodeError):
            return True
        return resolved != self.listen

    def update(self, listen, upstream, enabled):
        """Toxiproxy's update: a new address restarts the listener (and
        closes this proxy's connections); then enable or disable."""
        if self.differs(listen, upstream):
            distant = parse_upstream(upstream)
            self.stop()
            if listen != self.listen:
                self.engine_binds = False
            self.listen = listen
            self.upstream = upstream
            self.proxy.set_backend(distant)
        if enabled != self.enabled:
            if enabled:
                self.start()
            else:
                self.stop()

    def shown(self):
        """The proxy as Toxiproxy's API shows it (toxics included)."""
        return {'name': self.name, 'listen': self.listen,
                'upstream': self.upstream, 'enabled': self.enabled,
                'toxics': [toxic.shown() for toxic in self.toxics.list()]}


class ProxyGroup:
    """The named proxies of one process, in the order they were added.

    *make(name, distant)* builds the engine of a new proxy (a
    :class:`vaurien.proxy.Proxy`, not started) relaying to *distant*
    ``(host, port)`` (:meth:`vaurien.service.GroupService.make`).
    """

    def __init__(self, make):
        self.make = make
        self.proxies = {}

    def __contains__(self, name):
        return name in self.proxies

    def __iter__(self):
        return iter(list(self.proxies.values()))

    def get(self, name):
        """The proxy named *name*; ProxyNotFound."""
        try:
            return self.proxies[name]
        except KeyError:
            raise ProxyNotFound(name) from None

    def new(self, name, listen, upstream):
        """A NamedProxy of this group, not added (not listening);
        BadAddress when *upstream* is not HOST:PORT."""
        proxy = self.make(name, parse_upstream(upstream))
        return NamedProxy(name, proxy, listen, upstream)

    def add(self, proxy, start=True):
        """Add *proxy*, listening if *start*; ProxyExists, ListenError
        (then it is not added)."""
        if proxy.name in self.proxies:
            raise ProxyExists(proxy.name)
        if start:
            proxy.start()
        self.proxies[proxy.name] = proxy
        return proxy

    def replace(self, proxy, start=True):
        """Add *proxy* in place of the one of the same name (if any),
        which is stopped first."""
        old = self.proxies.pop(proxy.name, None)
        if old is not None:
            old.close()
        try:
            if start:
                proxy.start()
        except ListenError:
            proxy.close()
            raise
        self.proxies[proxy.name] = proxy
        return proxy

    def remove(self, name):
        """Stop and remove proxy *name*; ProxyNotFound."""
        proxy = self.get(name)
        del self.proxies[name]
        proxy.close()

    def close(self):
        """Stop every proxy."""
        for proxy in self:
            proxy.close()
        self.proxies.clear()
