"""Protocols: message framing and protocol-valid errors (``--protocol``).

With ``--protocol tcp`` (the default) the proxy relays raw bytes. With any
other protocol, each direction is cut into whole messages (see
:mod:`vaurien.protocols.base`) so that every handler acts per message, and
the ``error`` handler answers with an error of that protocol.

Protocols come from three sources, like handlers:

* the built-ins of this package (one module each): ``http``, ``redis``,
  ``memcache``, ``mysql``, ``smtp``;
* ``[protocol:NAME]`` sections of the INI file with ``callable = dotted.path``
  (a section without ``callable`` gives options to the protocol NAME);
* a dotted path given directly (``--protocol pkg.module.Class``);
* the ``vaurien.protocols`` entry-point group, so that an installed package
  can add protocols.

Options: ``--protocols.NAME.OPTION VALUE`` on the command line, or
``OPTION = VALUE`` in the ``[protocol:NAME]`` section.
"""
from vaurien.config import ConfigError
from vaurien.protocols.base import BaseProtocol, Malformed, Session, Stream
from vaurien.protocols.legacy import Protocol, is_legacy_protocol, refusal

__all__ = ['BaseProtocol', 'Stream', 'Session', 'Malformed', 'BUILTINS',
           'ProtocolError', 'get_protocol_class', 'build_protocol',
           'Protocol']

# name -> "module:Class"; 'tcp' is the raw mode (no protocol object).
BUILTINS = {
    'tcp': None,
    'http': 'vaurien.protocols.http:HTTP',
    'redis': 'vaurien.protocols.redis:Redis',
    'memcache': 'vaurien.protocols.memcache:Memcache',
    'mysql': 'vaurien.protocols.mysql:MySQL',
    'smtp': 'vaurien.protocols.smtp:SMTP',
}


ENTRY_POINT_GROUP = 'vaurien.protocols'


def _entry_points():
    """``{name: entry point}`` of the installed packages' protocols."""
    from importlib import metadata
    return {ep.name: ep for ep in metadata.entry_points(
        group=ENTRY_POINT_GROUP)}


class ProtocolError(ConfigError, ValueError):
    """A protocol cannot be found, loaded or configured (one line)."""


def _load(path, label):
    from vaurien.handlers import HandlerError, load_dotted
    try:
        target = load_dotted(path)
    except HandlerError as exc:
        raise ProtocolError(str(exc).replace('as a handler', 'as a protocol')) \
            from None
    if is_legacy_protocol(target, BaseProtocol):
        raise ProtocolError(refusal(label, path))
    if not (isinstance(target, type) and issubclass(target, BaseProtocol)):
        raise ProtocolError('%s: %r is not a subclass of '
                            'vaurien.protocols.BaseProtocol' % (label, path))
    return target


def get_protocol_class(name, sections=None, ini_path=None):
    """The protocol class for *name*, or None for ``tcp``.

    *sections* is ``{NAME: {key: value}}`` from ``[protocol:NAME]`` sections.
    """
    sections = sections or {}
    section = sections.get(name, {})
    if 'callable' in section:
        if name in BUILTINS:
            raise ProtocolError('two protocols named %r: the built-in and '
                                '[protocol:%s] in %s' % (name, name, ini_path))
        return _load(section['callable'], '[protocol:%s]' % name)
    if name in BUILTINS:
        path = BUILTINS[name]
        return None if path is None else _load(path, name)
    installed = _entry_points()
    if name in installed:
        return _load(installed[name].value, 'entry point %s' % name)
    if '.' in name or ':' in name:
        return _load(name, 'protocol %s' % name)
    known = sorted(set(BUILTINS) | set(installed)
                   | {n for n, s in sections.items() if 'callable' in s})
    raise ProtocolError('unknown protocol %r (known: %s; or a dotted path '
                        'like pkg.module.Class)' % (name, ', '.join(known)))


def build_protocol(name, cli_options=None, sections=None, ini_path=None,
                   proxy=None):
    """The protocol instance to give to the Proxy (None for ``tcp``).

    Options come from the ``[protocol:NAME]`` section, then from
    *cli_options* (``{NAME: {option: raw value}}``, the command line wins).
    Options given for a protocol that is not the one in use are an error,
    so that a typo does not go unnoticed.
    """
    sections = sections or {}
    cli_options = cli_options or {}
    for other in sorted(set(cli_options) | set(sections)):
        if other == name:
            continue
        if 'callable' in sections.get(other, {}) and other not in cli_options:
            continue    # a protocol declared but not used: fine
        get_protocol_class(other, sections, ini_path)   # unknown name?
        where = ('--protocols.%s.*' % other if other in cli_options
                 else '[protocol:%s] in %s' % (other, ini_path))
        raise ProtocolError('%s gives options to protocol %r, but the '
                            'protocol in use is %r (--protocol)'
                            % (where, other, name))
    cls = get_protocol_class(name, sections, ini_path)
    values = {k: v for k, v in sections.get(name, {}).items()
              if k != 'callable'}
    values.update(cli_options.get(name, {}))
    if cls is None:
        if values:
            raise ProtocolError('protocol tcp takes no options, got %s'
                                % ', '.join(sorted(values)))
        return None
    try:
        settings = cls.check_options(values, name)
    except ValueError as exc:
        raise ProtocolError(str(exc)) from None
    try:
        return cls(settings=settings, proxy=proxy)
    except Exception as exc:
        raise ProtocolError('protocol %s could not be created: %s: %s'
                            % (name, type(exc).__name__, exc)) from None
