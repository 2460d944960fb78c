"""Settings: declared once, read from defaults, an INI file and the command line.

Every proxy setting is one :class:`Setting` in :data:`SETTINGS`. That table
drives the argparse options (``run.py``), the ``[vaurien]`` keys of the INI
file (:func:`read_ini`), ``vaurien.ini.sample`` and the configuration
reference in ``docs/`` (``vaurien/docgen.py``).

Strings from the user are converted here and nowhere else. A user mistake
raises :class:`ConfigError`, whose message is one line meant for a person;
``vaurien.run.main`` prints it as ``vaurien: error: ...`` and exits with
status 2.
"""
import configparser
import os
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Tuple

__all__ = ['ConfigError', 'Setting', 'SETTINGS', 'SETTINGS_BY_NAME',
           'parse_hostport', 'parse_endpoint', 'parse_listen_endpoint', 'parse_bool', 'parse_behavior', 'convert', 'BadValue',
           'read_ini', 'IniConfig', 'defaults', 'pick_mode']


class ConfigError(Exception):
    """A mistake in the user's configuration: one line, meant for a person."""


class BadValue(ValueError):
    """A converter's complete sentence about a bad value (not "expects ...")."""


# -- converters ----------------------------------------------------------------
# Each converter takes a string (or, from the control API, an already typed
# value) and returns the typed value, or raises ValueError whose message
# completes the sentence "expects ...".

_TRUE = {'1', 'yes', 'true', 'on'}
_FALSE = {'0', 'no', 'false', 'off'}


def parse_bool(value):
    """yes/no, true/false, on/off, 1/0, in any case; real booleans as they are."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        low = value.strip().lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
    raise ValueError('a boolean (yes/no, true/false, on/off, 1/0)')


def parse_int(value):
    """A whole number (``'12'``, ``12``); never a bool or a fraction."""
    if isinstance(value, bool):
        raise ValueError('an integer')
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip(), 10)
        except ValueError:
            pass
    raise ValueError('an integer')


def parse_float(value):
    """A number, fractions allowed (``'0.5'``, ``2``)."""
    if isinstance(value, bool):
        raise ValueError('a number')
    if isinstance(value, (int, float)):
        result = float(value)
    elif isinstance(value, str):
        try:
            result = float(value.strip())
        except ValueError:
            raise ValueError('a number') from None
    else:
        raise ValueError('a number')
    if result != result or result in (float('inf'), float('-inf')):
        raise ValueError('a finite number')
    return result


def parse_str(value):
    """Any text."""
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    raise ValueError('a string')


_CONVERTERS = {bool: parse_bool, int: parse_int, float: parse_float,
               str: parse_str}


def convert(kind, value):
    """Convert *value* with a declared option type.

    *kind* is ``bool``, ``int``, ``float``, ``str``, one of the checked types
    of :mod:`vaurien.handlers.types`, or any other callable, which is called
    with the value. Raises ValueError("expects ...") on a bad value.
    """
    conv = _CONVERTERS.get(kind)
    if conv is not None:
        return conv(value)
    try:
        return kind(value)
    except ValueError as exc:
        if str(exc):
            raise
        raise ValueError('a valid %s' % type_name(kind)) from None
    except TypeError:
        raise ValueError('a valid %s' % type_name(kind)) from None


def type_name(kind):
    """The name of a declared option type, for messages and docs."""
    names = {bool: 'boolean', int: 'integer', float: 'number', str: 'string'}
    if kind in names:
        return names[kind]
    return getattr(kind, 'type_name', None) or getattr(kind, '__name__', None) \
        or str(kind)


def positive_int(value):
    value = parse_int(value)
    if value <= 0:
        raise ValueError('a whole number above 0')
    return value


def positive_float(value):
    value = parse_float(value)
    if value <= 0:
        raise ValueError('a number of seconds above 0')
    return value


def optional_str(value):
    """Text, or None when empty or not given."""
    if value is None:
        return None
    value = parse_str(value)
    return value if value.strip() else None


def optional_int(value):
    if value is None or (isinstance(value, str) and value.strip() == ''):
        return None
    value = parse_int(value)
    if value < 0:
        raise ValueError('a whole number, 0 or above')
    return value


_SIZE_UNITS = {'': 1, 'k': 1 << 10, 'kib': 1 << 10, 'm': 1 << 20,
               'mib': 1 << 20, 'g': 1 << 30, 'gib': 1 << 30}


def parse_size(value):
    """A size in bytes above 0: ``65536``, ``64k``, ``1M``, ``1MiB``, ``2g``
    (k, M, G are powers of 1024)."""
    if isinstance(value, bool):
        raise ValueError('a size in bytes like 65536, 64k or 1M')
    if isinstance(value, int):
        size = value
    else:
        match = re.fullmatch(r'\s*([0-9]+)\s*([a-zA-Z]*)\s*',
                             value if isinstance(value, str) else '')
        unit = match and _SIZE_UNITS.get(match.group(2).lower())
        if not unit:
            raise ValueError('a size in bytes like 65536, 64k or 1M')
        size = int(match.group(1)) * unit
    if size <= 0:
        raise ValueError('a size in bytes above 0')
    return size


def optional_seconds(value):
    """Seconds above 0, or None (off) for 0, "off", "none" or empty."""
    if value is None or (isinstance(value, str) and value.strip().lower()
                         in ('', '0', 'off', 'none', 'no')):
        return None
    try:
        seconds = parse_float(value)
    except ValueError:
        raise ValueError('a number of seconds (0 or "off": no limit)') \
            from None
    if seconds < 0:
        raise ValueError('a number of seconds (0 or "off": no limit)')
    return seconds or None


def seconds_or_zero(value):
    """A number of seconds, 0 or above."""
    seconds = parse_float(value)
    if seconds < 0:
        raise ValueError('a number of seconds, 0 or above')
    return seconds


def optional_count(value):
    """A whole number above 0, or None ("auto", empty: derived)."""
    if value is None or (isinstance(value, str) and value.strip().lower()
                         in ('', 'auto')):
        return None
    try:
        return positive_int(value)
    except ValueError:
        raise ValueError('a whole number above 0, or "auto"') from None


def parse_port(value):
    """A TCP port to listen on, 0 (any free port) to 65535."""
    try:
        port = parse_int(value)
    except ValueError:
        port = -1
    if not 0 <= port < 65536:
        raise ValueError('a port number from 0 to 65535')
    return port


def parse_udp_port(value):
    """A port to send to, 1 to 65535."""
    try:
        port = parse_int(value)
    except ValueError:
        port = 0
    if not 0 < port < 65536:
        raise ValueError('a port number from 1 to 65535')
    return port


def parse_rate(value):
    """A share above 0 and at most 1 (``0.1``: one in ten)."""
    try:
        rate = parse_float(value)
    except ValueError:
        rate = -1.0
    if not 0 < rate <= 1:
        raise ValueError('a number above 0 and at most 1')
    return rate


_HOSTPORT = re.compile(r'^(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<host>[^:\[\]\s]*))'
                       r':(?P<port>[0-9]+)$')


def parse_listen_hostport(value):
    """Like :func:`parse_hostport`, but port 0 (any free port) is allowed."""
    return parse_hostport(value, allow_zero=True)


# The longest path of a Unix socket (sun_path is 108 bytes on Linux, with
# the final NUL).
UNIX_PATH_MAX = 107


def parse_endpoint(value, allow_zero=False):
    """An address: ``'host:port'``, ``'[::1]:port'`` -> ``(host, port)``,
    or ``'unix:/path/to.sock'`` -> ``'/path/to.sock'``.

    As with Python's sockets, a TCP address is a tuple and a Unix socket's
    is a string (its path).
    """
    if isinstance(value, str) and value.strip().startswith('unix:'):
        path = value.strip()[len('unix:'):]
        if not path:
            raise ValueError('unix:PATH with a path (like unix:/run/app.sock)')
        if len(os.fsencode(path)) > UNIX_PATH_MAX:
            raise ValueError('a Unix socket path of at most %d bytes'
                             % UNIX_PATH_MAX)
        return path
    try:
        return parse_hostport(value, allow_zero)
    except ValueError as exc:
        raise ValueError('%s or unix:PATH' % exc) from None


def parse_listen_endpoint(value):
    """Like :func:`parse_endpoint`, but port 0 (any free port) is allowed."""
    return parse_endpoint(value, allow_zero=True)


def parse_mode(value):
    """File permissions in octal (``'0660'``), or None when empty."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        value = '%o' % value
    if isinstance(value, str) and re.fullmatch(r'0?[0-7]{3}', value.strip()):
        return int(value.strip(), 8)
    raise ValueError('permissions in octal, like 0660')


def parse_hostport(value, allow_zero=False):
    """``'host:port'`` or ``'[::1]:port'`` -> ``(host, port)``; port 1-65535.

    A bare ``':8000'`` listens on every address (host ``''``).
    """
    if not isinstance(value, str):
        raise ValueError('HOST:PORT')
    match = _HOSTPORT.match(value.strip())
    if not match:
        raise ValueError('HOST:PORT (like localhost:8000)')
    port = int(match.group('port'))
    if not (0 if allow_zero else 1) <= port < 65536:
        raise ValueError('HOST:PORT with a port between %d and 65535'
                         % (0 if allow_zero else 1))
    host = match.group('v6') or match.group('host') or ''
    return host, port


def format_hostport(address):
    """``(host, port)`` -> ``'host:port'``, or ``'[::1]:port'`` for an IPv6
    host (one already in brackets is kept as it is); a Unix socket's path
    (a string) -> ``'unix:PATH'``, as it is written in the settings.

    The one formatter of addresses: settings, logs, the event log, the
    control API and the clients all use it. A longer socket address (IPv6's
    ``(host, port, flow, scope)``) is shown by its first two items.
    """
    if isinstance(address, str):
        return 'unix:' + address
    if not (isinstance(address, (tuple, list)) and len(address) >= 2):
        return str(address)
    host, port = str(address[0]), int(address[1])
    if ':' in host and not host.startswith('['):
        return '[%s]:%d' % (host, port)
    return '%s:%d' % (host, port)


def parse_behavior(value):
    """``'20:delay, 10:error'`` -> ``[(20, 'delay'), (10, 'error')]``.

    Whole percents 0-100, total at most 100; the names are checked later,
    against the handler registry.
    """
    if isinstance(value, (list, tuple)):
        value = ','.join('%s:%s' % pair for pair in value)
    if not isinstance(value, str):
        raise BadValue('expected a behavior like "20:delay,10:error"')
    entries = []
    total = 0
    for raw in value.split(','):
        item = raw.strip()
        if not item:
            if value.strip():
                raise BadValue('empty entry in %r (expected "PERCENT:NAME, '
                               '...", like "20:delay,10:error")' % value)
            continue
        percent, sep, name = item.partition(':')
        percent, name = percent.strip(), name.strip()
        if not sep or not percent or not name:
            raise BadValue('%r is not PERCENT:NAME (like 20:delay)' % item)
        if not re.fullmatch(r'[0-9]+', percent):
            raise BadValue('%r: the percent must be a whole number from 0 to '
                           '100' % item)
        percent = int(percent)
        if percent > 100:
            raise BadValue('%r: the percent must be a whole number from 0 to '
                           '100' % item)
        total += percent
        entries.append((percent, name))
    if total > 100:
        raise BadValue('the percents add up to %d, more than 100, in %r'
                       % (total, value))
    return entries


def format_behavior(entries):
    return ','.join('%d:%s' % (p, n) for p, n in entries)


LOG_LEVELS = ('debug', 'info', 'warning', 'error', 'critical')


def parse_log_level(value):
    low = parse_str(value).strip().lower()
    if low not in LOG_LEVELS:
        raise ValueError('one of %s' % ', '.join(LOG_LEVELS))
    return low


def parse_choice(*choices):
    def parse(value):
        low = parse_str(value).strip().lower()
        if low not in choices:
            raise ValueError('one of %s' % ', '.join(choices))
        return low
    parse.type_name = '|'.join(choices)
    return parse


def pick_mode(pick, protocol):
    """The ``--pick`` mode in force: *pick* as set, ``auto`` resolved by
    *protocol* (``tcp``: ``event``, any protocol: ``exchange``)."""
    if pick == 'auto':
        return 'event' if protocol == 'tcp' else 'exchange'
    return pick


def parse_protocol(value):
    """A protocol name (tcp or a registered protocol) or a dotted path;
    checked against the protocol registry when the proxy is built."""
    name = parse_str(value).strip()
    if not name or any(c.isspace() for c in name):
        raise ValueError('a protocol name like tcp or http, or a dotted path')
    return name if '.' in name or ':' in name else name.lower()


# -- the settings table ----------------------------------------------------------

@dataclass(frozen=True)
class Setting:
    """One proxy setting: its name, default, converter and help.

    ``name`` is the INI key and the attribute of the settings namespace; the
    command-line flag is derived from it (``log_level`` -> ``--log-level``).
    ``aliases`` are extra flags (and INI keys) accepted for compatibility.
    """
    name: str
    default: Any
    parse: Callable[[Any], Any]
    help: str
    metavar: str = 'VALUE'
    aliases: Tuple[str, ...] = ()
    section: str = 'vaurien'
    sample: Optional[str] = None     # the value shown in vaurien.ini.sample
    # A flag that may also be given bare (``--http``): argparse then stores
    # ``const``, converted like any value.
    const: Optional[str] = None

    @property
    def flag(self):
        if self.section == 'vaurien':
            return '--' + self.name.replace('_', '-')
        return '--%s.%s' % (self.section, self.name)

    @property
    def dest(self):
        if self.section == 'vaurien':
            return self.name
        return '%s_%s' % (self.section, self.name)

    def convert(self, value, where):
        try:
            return self.parse(value)
        except BadValue as exc:
            raise ConfigError('%s: %s' % (where, exc)) from None
        except ValueError as exc:
            raise ConfigError('%s expects %s, got %r' % (where, exc, value)) \
                from None


SETTINGS = [
    Setting('local', ('localhost', 8000), parse_listen_endpoint,
            'Address the proxy listens on: HOST:PORT, [IPV6]:PORT or '
            'unix:PATH (port 0: any free port, logged at start-up).',
            'ADDRESS', aliases=('proxy',), sample='localhost:8000'),
    Setting('distant', ('localhost', 80), parse_endpoint,
            'Address of the backend every client is relayed to: HOST:PORT, '
            '[IPV6]:PORT or unix:PATH. Checked at start-up: a warning if it '
            'cannot be reached (the proxy starts anyway).', 'ADDRESS',
            aliases=('backend',), sample='localhost:80'),
    Setting('local_mode', None, parse_mode,
            'Permissions of the Unix socket file of --local unix:PATH, in '
            'octal (like 0660); default: from the umask.', 'MODE', sample=''),
    Setting('local_tls_cert', None, optional_str,
            'Terminate TLS: clients connect with TLS, using this PEM '
            'certificate (chain); needs --local-tls-key.', 'FILE', sample=''),
    Setting('local_tls_key', None, optional_str,
            'PEM private key of --local-tls-cert (not encrypted).', 'FILE',
            sample=''),
    Setting('local_tls_ca', None, optional_str,
            'Require client certificates (mTLS) signed by the CAs of this '
            'PEM file.', 'FILE', sample=''),
    Setting('local_tls_timeout', 10.0, positive_float,
            'Seconds a client has to complete the TLS handshake.', 'SECONDS',
            sample='10'),
    Setting('distant_tls', False, parse_bool,
            'Speak TLS to the backend, verifying its certificate against '
            'the system\'s CAs and the distant host name (also sent as '
            'SNI); "--distant-tls" alone means yes.', 'yes|no',
            sample='false', const='true'),
    Setting('distant_tls_ca', None, optional_str,
            'Verify the backend against the CAs of this PEM file instead of '
            'the system\'s.', 'FILE', sample=''),
    Setting('distant_tls_name', None, optional_str,
            'Name sent as SNI and checked in the backend\'s certificate '
            '(default: the distant host; none for a unix: backend, whose '
            'name is then not checked).', 'NAME', sample=''),
    Setting('distant_tls_insecure', False, parse_bool,
            'Do not verify the backend\'s certificate at all (a warning '
            'says so at start-up); "--distant-tls-insecure" alone means '
            'yes.', 'yes|no', sample='false', const='true'),
    Setting('distant_tls_cert', None, optional_str,
            'Client certificate (PEM) shown to the backend (mTLS); needs '
            '--distant-tls-key.', 'FILE', sample=''),
    Setting('distant_tls_key', None, optional_str,
            'PEM private key of --distant-tls-cert (not encrypted).', 'FILE',
            sample=''),
    Setting('behavior', [(100, 'dummy')], parse_behavior,
            'Weighted handlers, "PERCENT:NAME, ...": a built-in, a '
            '[handler:NAME] section or a dotted path. The remainder up to '
            '100 goes to dummy.', 'BEHAVIOR', sample='100:dummy'),
    Setting('pick', 'auto',
            parse_choice('auto', 'exchange', 'event', 'connection'),
            'When a handler is picked: once per request, for the request '
            'and its response (exchange, needs --protocol); at each '
            'readable event, each message in protocol mode, each direction '
            'on its own (event); or once when a connection opens, kept for '
            'its life (connection). auto: exchange with --protocol, event '
            'without. An end of stream is never a pick.',
            'auto|exchange|event|connection', sample='auto'),
    Setting('protocol', 'tcp', parse_protocol,
            'What the traffic is: tcp (raw bytes), a built-in protocol '
            '(listed at the end of --help), a [protocol:NAME] section or a '
            'dotted path. With a '
            'protocol, handlers act on whole messages and errors are '
            'protocol errors. Options: --protocols.NAME.OPTION VALUE.',
            'NAME', sample='tcp'),
    Setting('workers', 1, positive_int,
            'Number of processes serving the port together (SO_REUSEPORT); '
            'control-API changes reach every one.', 'N', sample='1'),
    Setting('bufsize', 65536, positive_int,
            'Largest read from a socket, in bytes.', 'BYTES', sample='65536'),
    Setting('timeout', 30.0, positive_float,
            'Seconds to wait for the backend to accept a connection.',
            'SECONDS', sample='30'),
    Setting('seed', None, optional_int,
            'Seed of the random picks, to replay a run; a random one is drawn '
            'and logged when none is given.', 'N', sample=''),
    Setting('max_message', 1 << 20, parse_size,
            'With a protocol: largest message held whole, in bytes (k, M, '
            'G allowed). A longer one is given to the handler as its head '
            '(about that many bytes); the rest follows the handler\'s '
            'decision as it arrives (delay delays its start, error replaces '
            'it), so memory stays bounded.', 'BYTES', sample='1M'),
    Setting('max_connections', None, optional_count,
            'Most client connections open at once; beyond, new clients wait '
            'in the listen backlog. "auto": derived from the descriptor '
            'limit (ulimit -n), keeping a reserve for the control API, the '
            'log and the backend side.', 'N|auto', sample='auto'),
    Setting('idle_timeout', None, optional_seconds,
            'Close a connection after this many seconds with no traffic '
            'either way; 0 or "off": never.', 'SECONDS', sample='off'),
    Setting('grace', 5.0, seconds_or_zero,
            'On SIGTERM or SIGINT: stop accepting at once, let open '
            'connections finish for this many seconds (a second signal '
            'skips the wait), then reset (RST) those still open.',
            'SECONDS', sample='5'),
    Setting('log_level', 'info', parse_log_level,
            'Log level: debug, info, warning, error or critical.', 'LEVEL',
            sample='info'),
    Setting('log_output', '-', parse_str,
            'Where logs go: "-" for standard error, or a file path.', 'PATH',
            sample='-'),
    Setting('http', False, parse_bool,
            'Serve the control API (HTTP) to change the handler while the '
            'proxy runs; "--http" alone means yes.', 'yes|no',
            sample='false', const='true'),
    Setting('http_host', 'localhost', parse_str,
            'Address the control API listens on. Anything but a loopback '
            'address needs a token (a warning says so).', 'HOST',
            sample='localhost'),
    Setting('http_port', 8080, parse_port,
            'Port of the control API (0: any free port, logged at '
            'start-up).', 'PORT', sample='8080'),
    Setting('http_token', None, optional_str,
            'When set, every control API request needs the header '
            '"Authorization: Bearer TOKEN".', 'TOKEN', sample=''),
    Setting('event_log', None, optional_str,
            'Write the chaos event log there: one JSON line per connection '
            'opened or closed and per pick (handler picked, bytes, '
            'effect); "-" for standard output. Off when empty.', 'FILE',
            sample=''),
    Setting('event_log_flush', False, parse_bool,
            'Flush the event log after every line (slower) instead of about '
            'once a second; "--event-log-flush" alone means yes.', 'yes|no',
            sample='false', const='true'),
    Setting('log_faults', False, parse_bool,
            'Log one INFO line per fault applied (proxy, connection, peer, '
            'direction, handler, effect); "--log-faults" alone means yes. '
            'Costs nothing when off.', 'yes|no', sample='false',
            const='true'),
    # The [statsd] section: keep these last, so that the generated sample
    # has one [vaurien] section and one [statsd] section.
    Setting('enabled', False, parse_bool,
            'Send counters to a statsd daemon over UDP (needs the statsd '
            'package: "pip install statsd"); "--statsd.enabled" alone '
            'means yes.', 'yes|no', section='statsd', sample='false',
            const='true'),
    Setting('host', 'localhost', parse_str,
            'Host of the statsd daemon.', 'HOST', section='statsd',
            sample='localhost'),
    Setting('port', 8125, parse_udp_port,
            'UDP port of the statsd daemon.', 'PORT', section='statsd',
            sample='8125'),
    Setting('prefix', 'vaurien', parse_str,
            'Prefix of every statsd counter name.', 'PREFIX',
            section='statsd', sample='vaurien'),
    Setting('sample_rate', 1.0, parse_rate,
            'Share of the counter updates sent to statsd, above 0 and at '
            'most 1.', 'RATE', section='statsd', sample='1.0'),
]

SETTINGS_BY_NAME = {s.dest: s for s in SETTINGS}   # unique: statsd_host, ...


def defaults():
    """A dict of every setting's default, keyed by ``Setting.dest``."""
    return {s.dest: s.default for s in SETTINGS}


# Keys that older Vaurien releases read and that have no meaning here, with
# why. A file that sets them still starts; a warning names the key and says
# why it has no effect. ``vaurien.compat`` gives the same answer for the
# command-line flags of Vaurien 1.x.
LEGACY_KEYS = {
    'stay_connected': 'a connection always stays open here until the client '
                      'or the backend closes it, which is what it asked for',
    'pool_max_size': 'each client connection gets its own new backend '
                     'connection, closed with it: there is no pool of '
                     'backend connections',
    'pool_timeout': 'each client connection gets its own new backend '
                    'connection, closed with it: there is no pool of '
                    'backend connections',
    'sync': 'sockets are always served by gevent without blocking; there '
            'is no synchronous mode',
    'async_mode': 'sockets are always served by gevent without blocking; '
                  'there is no synchronous mode',
    'backlog': 'the proxy listens with a backlog of 1024 (capped by the '
               'system\'s somaxconn)',
    'handler': 'the handlers are chosen with behavior = PERCENT:NAME, ...',
    'reuse_socket': 'each client connection gets its own new backend '
                    'connection, closed with it',
}

# Options that every protocol of Vaurien 1.x had (``[protocol:NAME]`` keys,
# ``--protocol-NAME-OPTION`` flags), and why they have no effect here.
LEGACY_PROTOCOL_OPTIONS = {
    'keep_alive': 'a connection always stays open here until the client or '
                  'the backend closes it, which is what it asked for',
    'reuse_socket': LEGACY_KEYS['reuse_socket'],
    'buffer': 'the size of a read is --bufsize (bufsize in [vaurien]); '
              'with a protocol, whole messages are read',
}


# -- the INI file ------------------------------------------------------------------

_ENV = re.compile(r'\$\{([A-Za-z_][A-Za-z0-9_]*)\}')


def _expand(value, where):
    def repl(match):
        name = match.group(1)
        if name not in os.environ:
            raise ConfigError('%s uses ${%s}, which is not set in the '
                              'environment' % (where, name))
        return os.environ[name]
    value = _ENV.sub(repl, value).strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in '"\'':
        value = value[1:-1]
    return value


@dataclass
class IniConfig:
    """What an INI file says, as strings still (converted by their readers).

    ``settings``: ``{dest: value}`` for proxy settings; ``handlers``:
    ``{NAME: {key: value}}`` from ``[handler:NAME]`` sections, ``callable``
    included; ``protocols``: the same for ``[protocol:NAME]``; ``proxies``:
    ``{NAME: [(key, value), ...]}`` of ``[proxy:NAME]`` sections, in file
    order (checked by :mod:`vaurien.proxyconf`); ``warnings``: messages for
    the log once it is set up.
    """
    path: str
    settings: dict = field(default_factory=dict)
    handlers: dict = field(default_factory=dict)
    protocols: dict = field(default_factory=dict)
    proxies: dict = field(default_factory=dict)
    warnings: list = field(default_factory=list)


def read_ini(path):
    """Read an INI file into an :class:`IniConfig`; raise ConfigError."""
    parser = configparser.ConfigParser(interpolation=None, strict=True,
                                       default_section='__no_defaults__')
    parser.optionxform = str
    try:
        with open(path, encoding='utf-8') as fh:
            parser.read_file(fh, source=path)
    except FileNotFoundError:
        raise ConfigError('config file %s: no such file' % path) from None
    except IsADirectoryError:
        raise ConfigError('config file %s: is a directory' % path) from None
    except PermissionError:
        raise ConfigError('config file %s: permission denied' % path) from None
    except UnicodeDecodeError:
        raise ConfigError('config file %s: not UTF-8 text' % path) from None
    except configparser.Error as exc:
        first = str(exc).strip().splitlines()[0]
        first = first.replace("u'", "'")
        raise ConfigError('config file %s is not valid INI: %s'
                          % (path, first)) from None
    except OSError as exc:
        raise ConfigError('config file %s: %s'
                          % (path, exc.strerror or exc)) from None

    result = IniConfig(path=path)
    by_key = {}
    for s in SETTINGS:
        by_key[(s.section, s.name)] = s
        for alias in s.aliases:
            by_key[(s.section, alias)] = s
    plain_sections = {s.section for s in SETTINGS}
    for section in parser.sections():
        items = parser.items(section)
        if section in plain_sections:
            for key, raw in items:
                where = '%s [%s] %s' % (path, section, key)
                lookup = (section, key.replace('-', '_'))
                setting = by_key.get(lookup)
                if setting is None:
                    if section == 'vaurien' and lookup[1] in LEGACY_KEYS:
                        result.warnings.append(
                            '%s: key %r is from an older Vaurien and has no '
                            'effect: %s' % (where.rsplit(' ', 1)[0], key,
                                            LEGACY_KEYS[lookup[1]]))
                        continue
                    known = sorted(s.name for s in SETTINGS
                                   if s.section == section)
                    raise ConfigError('%s: unknown key %r in [%s] (known: %s)'
                                      % (path, key, section, ', '.join(known)))
                value = setting.convert(_expand(raw, where), where)
                result.settings[setting.dest] = value
        elif section.startswith('proxy:'):
            name = section.partition(':')[2].strip()
            result.proxies[name] = [
                (key, _expand(raw, '%s [%s] %s' % (path, section, key)))
                for key, raw in items]
        elif section.startswith(('handler:', 'protocol:', 'behavior:')):
            kind, _, name = section.partition(':')
            name = name.strip()
            if not name:
                raise ConfigError('%s: section [%s] needs a name, like '
                                  '[%s:NAME]' % (path, section, kind))
            values = {key: _expand(raw, '%s [%s] %s' % (path, section, key))
                      for key, raw in items}
            if kind == 'protocol':
                _legacy_protocol_keys(result, section, name, values)
                result.protocols[name] = values
                continue
            # [behavior:NAME] is how Vaurien 1.x spelled [handler:NAME].
            if name in result.handlers:
                raise ConfigError('%s: [%s] and [%s:%s] both configure the '
                                  'handler %r: keep one'
                                  % (path, section, 'handler' if kind ==
                                     'behavior' else 'behavior', name, name))
            result.handlers[name] = values
        else:
            raise ConfigError(
                '%s: unknown section [%s] (expected [vaurien], '
                '[handler:NAME], [protocol:NAME], [behavior:NAME], '
                '[proxy:NAME]%s)'
                % (path, section, ''.join(', [%s]' % s for s in
                                          sorted(plain_sections - {'vaurien'}))))
    return result


def _legacy_protocol_keys(result, section, name, values):
    """Take Vaurien 1.x's protocol options out of *values*, with warnings.

    ``buffer`` of ``[protocol:tcp]`` (the raw mode) is the read size, so it
    becomes ``bufsize`` unless ``[vaurien]`` sets that too.
    """
    for key in sorted(set(values) & set(LEGACY_PROTOCOL_OPTIONS)):
        raw = values.pop(key)
        where = '%s [%s] %s' % (result.path, section, key)
        if key == 'buffer' and name == 'tcp':
            if 'bufsize' not in result.settings:
                result.settings['bufsize'] = SETTINGS_BY_NAME[
                    'bufsize'].convert(raw, where)
            result.warnings.append('%s: read as bufsize = %s (the read size '
                                   'of the raw tcp mode)' % (where, raw))
            continue
        result.warnings.append('%s: an option of Vaurien 1.x protocols; it '
                               'has no effect: %s'
                               % (where, LEGACY_PROTOCOL_OPTIONS[key]))
