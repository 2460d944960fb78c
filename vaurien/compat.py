"""The command lines of earlier Vaurien releases, read as this one reads them.

A user of Vaurien 1.x (or of the 2012 releases the handler documentation
comes from) can keep their command lines: :func:`translate_argv` rewrites
their flags into this release's spelling before the arguments are parsed,
and returns the notes to log once logging is set up.

What it rewrites:

* ``--behavior-NAME-OPTION VALUE`` (1.x) is ``--handlers.NAME.OPTION VALUE``;
  a boolean option given alone (``--behavior-error-inject``) is ``true``,
  as 1.x's ``store_true`` flags were;
* ``--protocol-NAME-OPTION VALUE`` is ``--protocols.NAME.OPTION VALUE``,
  except for the options every 1.x protocol had (``keep-alive``,
  ``reuse-socket``, ``buffer``): see
  :data:`vaurien.config.LEGACY_PROTOCOL_OPTIONS`; ``--protocol-tcp-buffer``
  is ``--bufsize``;
* ``--statsd.sample-rate`` is ``--statsd.sample_rate``;
* ``--stay-connected``, ``--sync``, ``--pool-max-size N``, ``--pool-timeout
  N`` and ``--backlog N`` are accepted (their value checked as 1.x checked
  it) and have no effect here; a note says why
  (:data:`vaurien.config.LEGACY_KEYS`).

Every other flag of both eras (``--proxy``/``--local``, ``--backend``/
``--distant``, ``--behavior``, ``--http`` alone or with a value, ...) is a
flag of this release already. ``docs/compat.rst`` has the whole table.
"""
import logging

from vaurien.config import (LEGACY_KEYS, LEGACY_PROTOCOL_OPTIONS, ConfigError,
                            parse_int)

__all__ = ['translate_argv', 'LEGACY_FLAGS', 'V1_BEHAVIORS']

#: The behaviors of Vaurien 1.9, the last 1.x release: what its clients
#: expect ``GET /behaviors`` to list (with the ones the user added).
V1_BEHAVIORS = ('blackout', 'delay', 'dummy', 'error', 'hang', 'transient')

#: 1.x flags with no effect here: flag -> (takes a value, its INI key).
LEGACY_FLAGS = {
    '--stay-connected': (False, 'stay_connected'),
    '--sync': (False, 'sync'),
    '--pool-max-size': (True, 'pool_max_size'),
    '--pool-timeout': (True, 'pool_timeout'),
    '--backlog': (True, 'backlog'),
}

RENAMED = {'--statsd.sample-rate': '--statsd.sample_rate'}

BEHAVIOR_PREFIX = '--behavior-'
PROTOCOL_PREFIX = '--protocol-'


def _take_value(argv, i, flag, inline, needs_value):
    """``(value, next index)`` for the flag at ``argv[i]``.

    A flag without a value (the end of the line or another flag next) is a
    boolean switched on, as 1.x's ``store_true`` flags were; unless
    *needs_value*.
    """
    if inline is not None:
        return inline, i + 1
    if i + 1 < len(argv) and not argv[i + 1].startswith('--'):
        return argv[i + 1], i + 2
    if needs_value:
        raise ConfigError('%s expects a value' % flag)
    return 'true', i + 1


def _split_name(flag, prefix):
    """``--behavior-delay-sleep`` -> ``('delay', 'sleep')``.

    1.x built these flags as ``--PREFIX-NAME-OPTION`` with the option's
    underscores as dashes, and names without dashes: the name is what comes
    before the first dash.
    """
    name, _, option = flag[len(prefix):].partition('-')
    if not name or not option:
        raise ConfigError('%s: expected %sNAME-OPTION (Vaurien 1.x), or '
                          '--%s.NAME.OPTION' % (flag, prefix, 'handlers' if
                                                prefix == BEHAVIOR_PREFIX
                                                else 'protocols'))
    return name, option.replace('-', '_')


def translate_argv(argv):
    """Rewrite the flags of earlier releases in *argv*.

    Returns ``(argv, notes)``: the arguments this release parses, and
    ``[(logging level, message)]`` to log once logging is set up. Raises
    ConfigError for a 1.x flag given a value 1.x refused too.
    """
    result, notes = [], []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == '--':
            result.extend(argv[i:])
            break
        flag, eq, inline = arg.partition('=')
        inline = inline if eq else None
        if flag in RENAMED:
            result.append(RENAMED[flag] + (eq + inline if eq else ''))
            i += 1
        elif flag in LEGACY_FLAGS:
            takes_value, key = LEGACY_FLAGS[flag]
            if takes_value:
                value, i = _take_value(argv, i, flag, inline, True)
                try:
                    parse_int(value)
                except ValueError as exc:
                    raise ConfigError('%s expects %s, got %r'
                                      % (flag, exc, value)) from None
            else:
                if inline is not None:
                    raise ConfigError('%s takes no value' % flag)
                i += 1
            level = (logging.INFO if key == 'stay_connected'
                     else logging.WARNING)
            notes.append((level, '%s is a Vaurien 1.x option with no effect '
                                 'here: %s' % (flag, LEGACY_KEYS[key])))
        elif flag.startswith(BEHAVIOR_PREFIX):
            name, option = _split_name(flag, BEHAVIOR_PREFIX)
            value, i = _take_value(argv, i, flag, inline, False)
            result += ['--handlers.%s.%s' % (name, option), value]
        elif flag.startswith(PROTOCOL_PREFIX):
            name, option = _split_name(flag, PROTOCOL_PREFIX)
            value, i = _take_value(argv, i, flag, inline, False)
            if option == 'buffer' and name == 'tcp':
                result += ['--bufsize', value]
                notes.append((logging.INFO, '%s %s is read as --bufsize %s '
                              '(the read size of the raw tcp mode)'
                              % (flag, value, value)))
            elif option in LEGACY_PROTOCOL_OPTIONS:
                level = (logging.INFO if option == 'keep_alive'
                         else logging.WARNING)
                notes.append((level, '%s is a Vaurien 1.x option with no '
                              'effect here: %s'
                              % (flag, LEGACY_PROTOCOL_OPTIONS[option])))
            else:
                result += ['--protocols.%s.%s' % (name, option), value]
        else:
            result.append(arg)
            i += 1
    return result, notes
