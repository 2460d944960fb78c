"""Protocols: message framing and protocol-valid errors (``--protocol``).

With ``--protocol tcp`` (the default) the proxy relays raw bytes. With any
other protocol, each direction is cut into whole messages (see
:mod:`vaurien.protocols.base`) so that every handler acts per message, and
the ``error`` handler answers with an error of that protocol.

Protocols come from four sources, in one registry shared in its rules and
messages with the handlers' (:mod:`vaurien.registry`):

* the built-ins of this package: every module here that defines a
  :class:`BaseProtocol` subclass with its own ``name`` (one module each);
* ``[protocol:NAME]`` sections of the INI file with ``callable = dotted.path``
  (a section without ``callable`` gives options to the protocol NAME);
* a dotted path given directly (``--protocol pkg.module.Class``);
* the ``vaurien.protocols`` entry-point group, so that an installed package
  can add protocols.

Two protocols with one name is an error that names both.

Options: ``--protocols.NAME.OPTION VALUE`` on the command line, or
``OPTION = VALUE`` in the ``[protocol:NAME]`` section.
"""
import sys

from vaurien import registry as _registry
from vaurien.protocols.base import BaseProtocol, Malformed, Session, Stream
from vaurien.protocols.legacy import Protocol, is_legacy_protocol, refusal
from vaurien.registry import RegistryError

__all__ = ['BaseProtocol', 'Stream', 'Session', 'Malformed', 'BUILTINS',
           'ProtocolError', 'Registry', 'get_protocol_class', 'build_protocol',
           'RAW', 'RAW_DOC', 'ENTRY_POINT_GROUP', 'builtin_names',
           'Protocol']

ENTRY_POINT_GROUP = 'vaurien.protocols'

#: The raw mode: bytes as they come, no protocol object.
RAW = 'tcp'
RAW_DOC = 'Raw bytes (the default): nothing is parsed.'


class ProtocolError(RegistryError):
    """A protocol cannot be found, loaded or configured (one line)."""


class Registry(_registry.Registry):
    """The registry of protocols: ``tcp``, the built-ins, the
    ``[protocol:NAME]`` *sections* of the INI file at *ini_path* and,
    unless *entry_points* is false, the installed packages' protocols (a
    :class:`vaurien.registry.Registry` of kind ``protocol``)."""

    def __init__(self, sections=None, ini_path=None, entry_points=True):
        super().__init__(
            'protocol', ENTRY_POINT_GROUP, sys.modules[__name__], BaseProtocol,
            error=ProtocolError, label='protocol %s', base_required=True,
            raw={RAW: RAW_DOC},
            entry_points=entry_points, on_load=_refuse_legacy)
        if sections:
            self.add_sections(sections, ini_path)


def _refuse_legacy(target, path):
    """A Vaurien 1.x protocol class is refused, saying what to write."""
    if is_legacy_protocol(target, BaseProtocol):
        raise ProtocolError(refusal('protocol', path))
    return target


def builtin_names():
    """The names of the built-in protocols, ``tcp`` first."""
    return [RAW] + list(_registry.discover_builtins(sys.modules[__name__],
                                                    BaseProtocol))


def __getattr__(name):
    # BUILTINS is computed when first asked for: it imports every protocol.
    if name == 'BUILTINS':
        found = _registry.discover_builtins(sys.modules[__name__],
                                            BaseProtocol)
        result = {RAW: None}
        result.update((key, '%s:%s' % (cls.__module__, cls.__qualname__))
                      for key, cls in found.items())
        return result
    raise AttributeError('module %r has no attribute %r' % (__name__, name))


def get_protocol_class(name, sections=None, ini_path=None):
    """The protocol class for *name*, or None for ``tcp``.

    *sections* is ``{NAME: {key: value}}`` from ``[protocol:NAME]`` sections.
    """
    return Registry(sections, ini_path).get(name).load()


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
    registry = Registry(sections, ini_path)
    for other in sorted(set(cli_options) | set(sections)):
        if other == name:
            continue
        if 'callable' in sections.get(other, {}) and other not in cli_options:
            continue    # a protocol declared but not used: fine
        registry.get(other)   # unknown name?
        where = ('--protocols.%s.*' % other if other in cli_options
                 else '[protocol:%s] in %s' % (other, ini_path))
        raise ProtocolError('%s gives options to protocol %r, but the '
                            'protocol in use is %r (--protocol)'
                            % (where, other, name))
    entry = registry.get(name)
    values = {k: v for k, v in sections.get(name, {}).items()
              if k != 'callable'}
    values.update(cli_options.get(name, {}))
    return entry.build(entry.check_options(values), proxy)
