"""The handler contract: :class:`BaseHandler`.

A handler is called each time it is picked for data readable on one side
of a proxied connection (an end of stream is not a pick, see
``end_of_stream``)::

    handler(client_sock, backend_sock, to_backend)

``to_backend`` is True when the client has sent data meant for the backend,
False when the backend has data for the client. The return value tells the
engine whether this direction goes on:

* anything truthy, or ``None`` (a handler with no ``return``): keep going;
* ``False`` or any other falsy value: this direction has ended; the engine
  half-closes the other side's write and lets the opposite direction finish.

Whatever a handler returns, the engine notices by itself when the source has
reached end of stream, so no handler can make it spin on a closed socket. A
handler that closes a socket ends the whole connection; an exception in a
handler ends that connection only and is logged with the handler's name.
"""
import random as _random
import weakref

import gevent

from vaurien.config import convert

__all__ = ['BaseHandler', 'WRONG_DIRECTION']

#: Why a call of a handler aimed at one direction did nothing on the other
#: (the ``why`` of its ``'none'`` effect).
WRONG_DIRECTION = 'wrong direction'


class _Options(dict):
    """The class's ``options`` mapping, callable as the seed spells it.

    ``self.options['sleep']`` is the declared 3-tuple, as on the class;
    ``self.options('sleep')`` is the option's value, like ``self.option``.
    """
    __slots__ = ('_handler',)

    def __init__(self, declared, handler):
        super().__init__(declared)
        self._handler = handler

    def __call__(self, name):
        return self._handler.option(name)


class BaseHandler:
    """Base class of every handler: subclass it and implement ``__call__``.

    Class attributes:

    ``name``
        the name under which the handler is known (``--behavior 20:NAME``).
    ``options``
        ``{option name: (description, type, default)}``. Every option is
        optional and has a default. ``type`` is ``bool``, ``int``, ``float``,
        ``str`` or a converter from :mod:`vaurien.handlers.types`.
    ``effect``
        what a call of the handler does, for the stats, the event log and
        ``--log-faults``: a string (``'delayed'``, ``'throttled'``,
        ``'errored'``, ``'corrupted'``, ``'cut'``, ``'reset'``, ``'hung'``,
        ``'passed'``), or ``('none', why)`` for a call that changes
        nothing, or a method ``effect(self, to_backend)`` returning one of
        those when it depends on the direction. Default (None):
        ``'handled'``. A call that knows better at run time says so with
        :meth:`tell_effect`.
    ``end_of_stream``
        None (the default): the handler is never given an end of stream
        (the engine ends the direction itself; an end of stream is not a
        pick). A string, the effect it then has (``slow_close``:
        ``'delayed'``): the end of stream of a direction whose last pick
        was this handler is handed to it, as a call whose read returns
        ``b''``.

    An instance is built with ``settings`` (this handler's option values,
    already converted to their declared types) and ``proxy`` (the running
    proxy). One instance serves every connection: state that belongs to one
    connection must not be kept on ``self`` but in :meth:`state`.

    The helpers for ``__call__``, used by every built-in handler:
    :meth:`read` (the seed's ``_get_data``), :meth:`forward`,
    :meth:`sleep`, :meth:`random`, :meth:`state` and :meth:`connection`.
    """

    name = 'base'
    options = {}
    effect = None
    end_of_stream = None

    def __init__(self, settings=None, proxy=None):
        declared = type(self).options
        self.settings = {key: spec[2] for key, spec in declared.items()}
        self.settings.update(settings or {})
        self.proxy = proxy
        # Shadow the class mapping with one that is also callable, so that
        # both self.options['x'] (the declaration) and self.options('x')
        # (the value, as the seed's own example writes it) work.
        self.options = _Options(declared, self)

    # -- options -------------------------------------------------------------

    def option(self, name):
        """The value of option *name*, converted to its declared type."""
        try:
            return self.settings[name]
        except KeyError:
            raise KeyError('handler %r has no option %r' % (self.name, name)) \
                from None

    @classmethod
    def check_options(cls, values, handler_name=None):
        """Convert *values* (``{option: raw value}``) with the declared types.

        Returns the converted dict; raises ValueError with a message naming
        the handler, the option and the value when one is wrong or unknown.
        """
        declared = cls.options
        label = handler_name or cls.name
        result = {}
        for key, raw in values.items():
            if key not in declared:
                valid = ', '.join(sorted(declared)) or 'none'
                raise ValueError('%s: unknown option %r (valid options: %s)'
                                 % (label, key, valid))
            kind = declared[key][1]
            try:
                result[key] = convert(kind, raw)
            except ValueError as exc:
                raise ValueError('%s: option %r expects %s, got %r'
                                 % (label, key, exc, raw)) from None
        return result

    # -- the handler author's API: helpers for __call__ ---------------------------
    #
    # Every built-in handler is written with these, and only these, to reach
    # the engine. The names with a leading underscore are the older spellings
    # (``_get_data`` is the seed's); they stay as aliases.

    def read(self, client_sock, backend_sock=None, to_backend=None,
             buffer_size=None):
        """Read what is available from the source side of this event.

        The source is the client when *to_backend* is true, the backend
        otherwise. Returns ``b''`` at end of stream. Inside the proxy this
        reads at most ``--bufsize`` bytes (or *buffer_size*), or one whole
        message in protocol mode.

        The one-socket form ``self.read(sock[, buffer_size])`` (the
        ``_get_data`` of later Vaurien releases) reads from *sock*.
        """
        if to_backend is None:     # the one-socket form
            sock = client_sock
            if isinstance(backend_sock, int) and buffer_size is None:
                buffer_size = backend_sock
            conn = getattr(sock, 'conn', None)
            to_backend = conn is not None and sock is conn.client
        else:
            sock = client_sock if to_backend else backend_sock
            conn = getattr(sock, 'conn', None)
        if conn is not None:
            return conn.read(to_backend, buffer_size)
        return sock.recv(buffer_size or 65536)

    def forward(self, client_sock, backend_sock, to_backend, data):
        """Send *data* to the destination side of this event: the backend
        when *to_backend* is true, the client otherwise."""
        (backend_sock if to_backend else client_sock).sendall(data)

    def sleep(self, seconds):
        """Sleep *seconds*, or less if the proxy's handler is changed.

        A live handler change (through the control API) or a shutdown wakes
        every handler sleeping here at once, so a test never waits on a
        fault that has ended. Outside a proxy it is ``gevent.sleep``.
        """
        if seconds <= 0:
            return
        proxy = self.proxy
        if proxy is None or not hasattr(proxy, 'wait_change'):
            gevent.sleep(seconds)
        else:
            proxy.wait_change(seconds)

    def random(self, sock):
        """The random generator of the connection of *sock* (seeded by
        ``--seed``).

        Every random choice a handler makes should come from here, so that a
        failing run can be replayed with the same seed. Outside a proxy it
        is the :mod:`random` module.
        """
        conn = getattr(sock, 'conn', None)
        if conn is not None:
            return conn.handler_random()
        return _random

    def connection(self, sock):
        """The engine's per-connection object of *sock*, or None outside a
        proxy.

        It has ``client`` and ``backend`` (the two sockets), ``seq`` (the
        connection's number), ``address`` (the client's) and ``proxy``.
        Prefer :meth:`state`, :meth:`random` and :meth:`read`, which use it.
        """
        return getattr(sock, 'conn', None)

    def tell_effect(self, sock, effect, why=None):
        """Say what this call did, when it differs from :attr:`effect`
        (``error`` during its warm-up: ``'none', 'warm-up'``); *sock* is
        one of the call's sockets. Nothing outside a proxy."""
        conn = getattr(sock, 'conn', None)
        if conn is not None:
            conn.tell(effect, why)

    def state(self, sock):
        """A dict private to this handler and the connection of *sock*.

        One handler instance serves every connection, so what belongs to
        one connection (a byte count, a deadline) is kept here: it lives as
        long as the connection and is gone with it. Outside the proxy (a
        bare socket, in a unit test) it is kept per socket.
        """
        conn = getattr(sock, 'conn', None)
        if conn is None:
            bare = self.__dict__.get('_bare_states')
            if bare is None:
                bare = self._bare_states = weakref.WeakKeyDictionary()
            return bare.setdefault(sock, {})
        return conn.handler_state(self)

    # The older spellings, kept working.
    _get_data = read
    _forward = forward
    _sleep = sleep
    _random = random
    _connection = connection
    _state = state

    def __call__(self, client_sock, backend_sock, to_backend):
        """Forward the available data untouched (what ``dummy`` does)."""
        data = self.read(client_sock, backend_sock, to_backend)
        if data:
            self.forward(client_sock, backend_sock, to_backend, data)
        return bool(data)

    def __repr__(self):
        return '<%s %r>' % (type(self).__name__, self.name)
