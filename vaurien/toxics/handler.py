"""Every Vaurien handler as a toxic type, and the handler call on a chunk.

A handler's contract is ``handler(client_sock, backend_sock, to_backend)``
with the handler reading its source itself. In a chain, the handler is
given stand-ins for the two sockets: reading the source side gives the
chunk that reached the handler (then, if it reads on, the next data from
the source, straight from the engine); writing the destination side passes
bytes on down the chain; everything else (writing back to the source
side, closing, socket options) acts on the real sockets. In protocol mode
a chunk is one whole message, so protocol-aware handlers (``error``) act
as they do when picked by the behavior.

A handler toxic's attributes are the handler's options, in the handler's
own units (``delay``'s ``sleep`` is in seconds); booleans are shown as 1
and 0 (Toxiproxy's CLI reads every attribute as a number).
"""
import logging

from vaurien.toxics.base import Chunk, LinkStopped, ToxicType

__all__ = ['handler_type', 'call_handler']

log = logging.getLogger('vaurien')

_types = {}


def handler_type(entry):
    """The ToxicType class of handler *entry* (a registry Entry)."""
    cls = _types.get(id(entry))
    if cls is None or cls.entry is not entry:
        declared = {key: spec for key, spec in entry.options.items()}
        cls = type('HandlerToxic_%s' % entry.name.replace('.', '_'),
                   (HandlerToxic,),
                   {'name': entry.name, 'attributes': declared,
                    'entry': entry, '__doc__': entry.doc})
        _types[id(entry)] = cls
    return cls


class HandlerToxic(ToxicType):
    """Base of the toxic types made from handlers (:func:`handler_type`)."""

    entry = None

    @classmethod
    def check(cls, given, current=None):
        values = dict(current or {})
        values.update({k: v for k, v in given.items()
                       if k in cls.attributes})
        return cls.entry.check_options(values)

    def __init__(self, values, proxy=None):
        super().__init__(values, proxy)
        self.handler = self.entry.build(values, proxy)

    def shown(self):
        """The options as attributes. Booleans show as 1 and 0: Toxiproxy's
        clients (its CLI) expect every attribute to be a number."""
        shown = {}
        for key, value in self.values.items():
            if isinstance(value, bool):
                value = int(value)
            elif not isinstance(value, (int, float, str, type(None))):
                value = str(value)
            shown[key] = value
        return shown

    def apply(self, link, toxic, chunk, emit):
        if not call_handler(link, self.entry.name, self.handler, chunk,
                            lambda data: emit(Chunk(data, chunk.stamp))):
            link.end_source()


def call_handler(link, name, handler, chunk, emit):
    """Call *handler* for *chunk* with stand-in sockets; True when the
    direction goes on (the handler returned None or truthy)."""
    conn = link.conn
    view = _ConnectionView(link, chunk.data, emit)
    try:
        result = handler(view.client, view.backend, link.to_backend)
    except LinkStopped:
        raise
    except OSError:
        if conn.closed:
            return False
        raise
    except (Exception, SystemExit) as exc:
        # As when the behavior calls it: the connection ends, the handler
        # is named in the log and counted; the proxy goes on.
        conn.proxy.stats.handler_failed(name)
        log.error('handler %r failed on connection %d (%s, as a toxic): '
                  '%s: %s', name, conn.seq, link.stream, type(exc).__name__,
                  exc, exc_info=True)
        conn.close('error')
        link.close()
    if conn.closed:
        link.close()
    return result is None or bool(result)


class _ConnectionView:
    """What a handler called on a chunk sees as its connection
    (``sock.conn``): reads come from the chunk, the rest is the real one."""

    __slots__ = ('link', 'conn', 'data', 'emit', 'client', 'backend')

    def __init__(self, link, data, emit):
        self.link = link
        self.conn = link.conn
        self.data = data
        self.emit = emit
        to_backend = link.to_backend
        self.client = _Stand(self, link.conn.client, to_backend)
        self.backend = _Stand(self, link.conn.backend, not to_backend)

    def read(self, to_backend, size=None):
        data = self.data
        if data is None:
            return self.link.next_data()
        if size and len(data) > size:
            self.data = data[size:]
            return data[:size]
        self.data = None
        return data

    def close(self, by='handler'):
        self.conn.close(by)

    def __getattr__(self, name):
        # Everything else a handler asks its connection (its generator,
        # state, hang(), protocol_mode, error_reply()...) is the real one's.
        return getattr(self.conn, name)


class _Stand:
    """A stand-in socket: the source side reads the chunk, the destination
    side writes down the chain; anything else is the real socket's."""

    __slots__ = ('conn', 'sock', 'source')

    def __init__(self, view, sock, source):
        self.conn = view
        self.sock = sock
        self.source = source

    def recv(self, size=65536, flags=0):
        if self.source:
            return self.conn.read(True, size)
        return self.sock.recv(size, flags)

    def sendall(self, data, flags=0):
        if self.source:
            self.sock.sendall(data, flags)
        elif data:
            self.conn.emit(bytes(data))

    def send(self, data, flags=0):
        self.sendall(data, flags)
        return len(data)

    def close(self):
        self.conn.close()

    def __getattr__(self, name):
        return getattr(self.sock, name)
