"""``[proxy:NAME]`` sections: many named proxies in one INI file.

Each section is one proxy of the process::

    [proxy:cache]
    local = localhost:26379
    distant = localhost:6379
    protocol = redis
    behavior = 10:error
    handlers.error.warmup = 5
    toxics = [{"type": "latency", "attributes": {"latency": 100}}]
    enabled = true

Keys: the per-proxy settings of ``[vaurien]`` (``local``, ``distant``,
``behavior``, ``pick``, ``protocol``, ``bufsize``, ``timeout``, with their
aliases), ``enabled`` (default true), ``toxics`` (a JSON array of toxic
objects, as the Toxiproxy API takes them) and ``handlers.NAME.OPTION`` /
``protocols.NAME.OPTION`` (options for this proxy only, over the
``[handler:NAME]`` / ``[protocol:NAME]`` sections). Everything else (the
control API, logging, the seed, statsd) is the process's, in ``[vaurien]``.

A plain ``--local``/``--distant`` run, or a ``[vaurien]`` section with
``local``/``distant``, is the proxy named ``default``.
"""
import json
from dataclasses import dataclass, field

from vaurien.config import SETTINGS, ConfigError, parse_bool

__all__ = ['ProxySpec', 'PER_PROXY', 'parse_proxy_section', 'DEFAULT_NAME',
           'check_name']

#: The name of the proxy of --local/--distant.
DEFAULT_NAME = 'default'

#: The settings of [vaurien] a [proxy:NAME] section may set.
PER_PROXY = ('local', 'distant', 'behavior', 'pick', 'protocol', 'bufsize',
             'timeout')

_BY_KEY = {}
for _s in SETTINGS:
    if _s.section == 'vaurien' and _s.name in PER_PROXY:
        _BY_KEY[_s.name] = _s
        for _alias in _s.aliases:
            _BY_KEY[_alias] = _s


@dataclass
class ProxySpec:
    """One named proxy as the INI file gives it, converted and checked.

    ``settings``: ``{setting name: value}`` for the per-proxy settings it
    sets (the others come from ``[vaurien]`` and the command line);
    ``handler_options`` / ``protocol_options``: ``{name: {option: raw}}``;
    ``toxics``: a list of toxic objects (checked when the proxy is built).
    """
    name: str
    settings: dict = field(default_factory=dict)
    enabled: bool = True
    toxics: list = field(default_factory=list)
    handler_options: dict = field(default_factory=dict)
    protocol_options: dict = field(default_factory=dict)


def check_name(name, where):
    """A proxy name usable in a URL path segment; ConfigError if not."""
    if not name or '/' in name or name != name.strip() or name in ('.', '..'):
        raise ConfigError('%s: %r is not a usable proxy name (no "/", no '
                          'spaces around it)' % (where, name))
    return name


def parse_proxy_section(name, items, path):
    """The :class:`ProxySpec` of section ``[proxy:NAME]``.

    *items* are its ``(key, raw string)`` pairs (``${VAR}`` already
    expanded); ConfigError naming the file, section and key on a mistake.
    """
    section = 'proxy:%s' % name
    check_name(name, '%s: [%s]' % (path, section))
    spec = ProxySpec(name)
    for key, raw in items:
        where = '%s [%s] %s' % (path, section, key)
        norm = key.replace('-', '_')
        setting = _BY_KEY.get(norm)
        if setting is not None:
            spec.settings[setting.name] = setting.convert(raw, where)
        elif norm == 'enabled':
            try:
                spec.enabled = parse_bool(raw)
            except ValueError as exc:
                raise ConfigError('%s expects %s, got %r'
                                  % (where, exc, raw)) from None
        elif norm == 'toxics':
            spec.toxics = _toxics(raw, where)
        elif norm.startswith(('handlers.', 'protocols.')):
            kind, _, rest = key.partition('.')
            plugin, _, option = rest.rpartition('.')
            if not plugin or not option:
                raise ConfigError('%s: expected %s.NAME.OPTION' % (where,
                                                                   kind))
            target = (spec.handler_options if kind == 'handlers'
                      else spec.protocol_options)
            target.setdefault(plugin, {})[option] = raw
        else:
            known = sorted(set(PER_PROXY) | {'enabled', 'toxics'})
            raise ConfigError('%s: unknown key %r in [%s] (known: %s, '
                              'handlers.NAME.OPTION, protocols.NAME.OPTION; '
                              'the rest is set in [vaurien])'
                              % (path, key, section, ', '.join(known)))
    for needed, what in (('local', 'the address it listens on, HOST:PORT; '
                                    'port 0: any free port'),
                         ('distant', 'the backend, HOST:PORT')):
        if needed not in spec.settings:
            raise ConfigError('%s: [%s] needs "%s" (%s)'
                              % (path, section, needed, what))
    return spec


def _toxics(raw, where):
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise ConfigError('%s expects a JSON array of toxics, like [{"type": '
                          '"latency", "attributes": {"latency": 100}}]: %s'
                          % (where, exc)) from None
    if not isinstance(value, list) or not all(isinstance(item, dict)
                                              for item in value):
        raise ConfigError('%s expects a JSON array of toxic objects'
                          % where)
    return value
