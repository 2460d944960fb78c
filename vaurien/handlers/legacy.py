"""Vaurien 1.x behaviors as handlers (the 1.x names are in
:mod:`vaurien.behaviors`, whose docstring says what a call does).

:func:`adapt` is applied by the registry to every class it loads, so a 1.x
behavior named anywhere a handler can be named is run by a
:class:`BehaviorHandler`.
"""
from vaurien.config import convert, parse_choice
from vaurien.handlers.base import BaseHandler

__all__ = ['BehaviorHandler', 'ProtocolView', 'adapt', 'is_behavior',
           'get_data']

# The options every 1.x protocol had, as they apply here: connections are
# kept alive until a side closes, each has its own backend connection.
_LEGACY_PROTOCOL_OPTIONS = {'keep_alive': True, 'reuse_socket': False}


def get_data(sock, buffer=1024):
    """Read what is available on *sock*: at most *buffer* bytes, or, in
    protocol mode, one whole message; ``b''`` at end of stream (1.x's
    ``vaurien.util.get_data``).

    *sock* is one of the two sockets a handler (or a 1.x behavior) is given;
    anything else is read with ``recv``.
    """
    conn = getattr(sock, 'conn', None)
    if conn is not None:
        return conn.read(sock is conn.client, buffer)
    return sock.recv(buffer)


def is_behavior(target):
    """Is *target* a 1.x behavior class (the two hooks, not a handler)?"""
    return (isinstance(target, type) and not issubclass(target, BaseHandler)
            and callable(getattr(target, 'on_before_handle', None))
            and callable(getattr(target, 'on_after_handle', None)))


class ProtocolView:
    """What a 1.x behavior's hooks get as *protocol*.

    ``name`` is the protocol in use (``'tcp'`` for raw bytes); ``option``
    reads its options; ``_get_data(sock[, size])`` reads from one of the
    two sockets (one whole message with a protocol).
    """

    def __init__(self, proxy):
        self.proxy = proxy
        protocol = getattr(proxy, 'protocol', None)
        self.name = protocol.name if protocol is not None else 'tcp'
        self.settings = dict(protocol.settings) if protocol is not None else {}

    def option(self, name):
        """The value of the protocol's option *name* (also 1.x's
        ``keep_alive``, ``reuse_socket`` and ``buffer``, as they are here)."""
        if name in self.settings:
            return self.settings[name]
        if name == 'buffer':
            return getattr(self.proxy, 'bufsize', 65536)
        return _LEGACY_PROTOCOL_OPTIONS[name]

    def _get_data(self, sock, buffer=None):
        return get_data(sock, buffer)


class BehaviorHandler(BaseHandler):
    """A handler running one 1.x behavior (see the module's docstring).

    Subclasses are made by :func:`adapt`; ``behavior_class`` is the
    behavior. One behavior instance serves every connection, as in 1.x.
    """

    behavior_class = None

    def __init__(self, settings=None, proxy=None):
        super().__init__(settings, proxy)
        self.behavior = self.behavior_class()
        update = getattr(self.behavior, 'update_settings', None)
        if update is not None:
            update(dict(self.settings))
        self.protocol = ProtocolView(proxy)

    def __call__(self, client_sock, backend_sock, to_backend):
        if to_backend:
            source, dest = client_sock, backend_sock
        else:
            source, dest = backend_sock, client_sock
        behavior, protocol = self.behavior, self.protocol
        if not behavior.on_before_handle(protocol, source, dest, to_backend):
            return True
        try:
            data = self.read(client_sock, backend_sock, to_backend)
            if data:
                dest.sendall(data)
            return bool(data)
        finally:
            behavior.on_after_handle(protocol, source, dest, to_backend)


def _option(spec):
    """A 1.x option declaration as a handler's ``(description, type,
    default)``: 1.x also had ``(description, type, default, choices)``."""
    description, kind, default = spec[:3]
    if len(spec) > 3 and spec[3]:
        kind = parse_choice(*spec[3])
    return (description, kind, convert(kind, default))


def adapt(target):
    """*target*, or the handler class running it when it is a 1.x behavior."""
    if not is_behavior(target):
        return target
    declared = getattr(target, 'options', None) or {}
    options = {key: _option(spec) for key, spec in declared.items()}
    return type(target.__name__, (BehaviorHandler,), {
        'name': getattr(target, 'name', target.__name__),
        'options': options,
        'behavior_class': target,
        '__doc__': target.__doc__,
        '__module__': target.__module__,
    })
