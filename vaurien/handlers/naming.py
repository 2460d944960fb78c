"""A handler is known by its ``name``, as the seed's documentation says.

The seed runs ``--behavior 20:path.to.the.callable --handlers.delay.sleep
2`` with a class whose ``name = 'delay'``: the option is meant for that
class. :func:`resolve_names` makes it so, at start-up:

* a handler of the behavior named by a dotted path is known by the name its
  class declares: it takes its options under that name
  (``--handlers.delay.OPTION``, ``[handler:delay]``) as well as under its
  path, and shows under that name in the logs, the event log, the control
  API, the stats and the metrics. A built-in (or an installed handler) of
  that name that the behavior does not use gives way to it;
* a handler of a ``[handler:X]`` section with ``callable`` stays known as
  X (the name its user gave it), and takes its options under its class's
  name too;
* two different handlers answering to one name in the run (in the
  behavior, or a section) is an error that names both.
"""
from vaurien.handlers.checks import declared_name

__all__ = ['resolve_names', 'is_dotted']


def is_dotted(name):
    """Is *name* a dotted path (``pkg.mod.Class`` or ``pkg.mod:Class``)?"""
    return '.' in name or ':' in name


def _is_section(source):
    return source.startswith('[')


def resolve_names(registry, pairs, handler_options, error, ini_options=None):
    """The behavior and the options with every handler under its name.

    *pairs* is ``[(percent, spelling), ...]`` (a name or a dotted path),
    *handler_options* ``{spelling: {option: raw}}``, and *ini_options* the
    part of them that comes from the INI file (``{spelling: {option:
    raw}}``). Returns ``(pairs, handler_options)`` with dotted paths
    replaced by the names their classes declare, and the options given
    under any spelling of a handler merged under its name: the command line
    wins over the INI file, and within each, a path's or a section's own
    spelling wins over the class name's. Registers each renamed handler
    under its name in *registry*. Raises *error* (an exception class)
    naming both handlers when two different ones answer to one name.
    """
    known = {}       # name or alias -> the entry answering to it
    renamed = {}     # spelling in the behavior -> the handler's name
    aliases = {}     # class name of a section handler -> the section's name

    def claim(name, entry):
        other = known.get(name)
        if other is not None and other.load() is not entry.load():
            raise error('two handlers named %r: %s and %s'
                        % (name, other.source, entry.source))
        known.setdefault(name, entry)

    for _, spelled in pairs:
        if spelled in renamed:
            continue
        entry = registry.get(spelled)
        declared = declared_name(entry.load())
        name = spelled
        if is_dotted(spelled) and declared:
            name = declared
            # a handler the user declared in this run (a section) does not
            # give way to it; a built-in or an installed one does
            source = registry.source_of(name)
            if source is not None and _is_section(source):
                claim(name, registry.get(name))
        elif declared and declared != spelled and _is_section(entry.source):
            claim(declared, entry)
            aliases[declared] = spelled
        claim(name, entry)
        renamed[spelled] = name
    for spelled, name in renamed.items():
        if name != spelled:
            registry.rename(spelled, name)

    def rank(spelled):
        # the class name's options first, then the name's, then the path's
        if spelled in aliases:
            return 0
        return 2 if renamed.get(spelled, spelled) != spelled else 1
    ini_options = ini_options or {}
    layers = ({}, {})     # (from the INI file, from the command line)
    for spelled, values in handler_options.items():
        from_ini = ini_options.get(spelled, {})
        for key, value in values.items():
            layer = layers[0] if from_ini.get(key) == value else layers[1]
            layer.setdefault(spelled, {})[key] = value
    options = {aliases.get(spelled, renamed.get(spelled, spelled)): {}
               for spelled in handler_options}
    for layer in layers:
        for spelled in sorted(layer, key=rank):
            name = aliases.get(spelled, renamed.get(spelled, spelled))
            options[name].update(layer[spelled])
    return ([(percent, renamed[spelled]) for percent, spelled in pairs],
            options)
