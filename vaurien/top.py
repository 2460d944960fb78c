"""``vaurienctl stats``: a live table of a running proxy, like ``top``.

It reads ``GET /metrics`` of the control server (``--http``) and shows
connections, throughput and the picks of each handler; refreshed every
``--interval`` seconds, or printed once with ``--once``. Rates need two
readings, so the first table (and ``--once``) shows totals only.
"""
import re
import sys
import time

from vaurien.stats import effect_shares

__all__ = ['parse_metrics', 'Reading', 'table', 'watch']

_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def _unescape(value):
    return re.sub(r'\\(.)', lambda m: '\n' if m.group(1) == 'n'
                  else m.group(1), value)


def parse_metrics(text):
    """``[(name, {label: value}, number), ...]`` from Prometheus text.

    Enough of the text format for what ``/metrics`` writes (no timestamps
    needed, comments skipped); lines it cannot read are skipped.
    """
    samples = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith('#'):
            continue
        match = _SAMPLE.match(line)
        if not match:
            continue
        name, labels, value = match.groups()
        try:
            number = float(value)
        except ValueError:
            continue
        samples.append((name, {k: _unescape(v) for k, v in
                               _LABEL.findall(labels or '')}, number))
    return samples


class Reading:
    """One reading of ``/metrics``, with the counters the table shows."""

    def __init__(self, text, when=None):
        self.when = time.monotonic() if when is None else when
        self.opened = self.closed = self.open = self.hung = 0
        self.bytes_up = self.bytes_down = 0
        self.failures = self.exceptions = self.tls_failures = 0
        self.picks = {}      # name -> [upstream, downstream]
        self.requests = {}   # effect -> requests (protocol mode)
        self.connections = {}    # effect -> closed connections
        self.effects = {}    # name -> {effect: handler calls}
        for name, labels, value in parse_metrics(text):
            value = int(value)
            if name == 'vaurien_connections_total':
                self.opened = value
            elif name == 'vaurien_connections_closed_total':
                self.closed = value
            elif name == 'vaurien_connections_open':
                self.open = value
            elif name == 'vaurien_connections_hung':
                self.hung = value
            elif name == 'vaurien_bytes_total':
                if labels.get('direction') == 'upstream':
                    self.bytes_up = value
                else:
                    self.bytes_down = value
            elif name == 'vaurien_handler_picks_total':
                pair = self.picks.setdefault(labels.get('handler', '?'),
                                             [0, 0])
                pair[labels.get('direction') != 'upstream'] += value
            elif name == 'vaurien_request_effects_total':
                effect = labels.get('effect', '?')
                self.requests[effect] = self.requests.get(effect, 0) + value
            elif name == 'vaurien_connection_effects_total':
                self.connections[labels.get('effect', '?')] = value
            elif name == 'vaurien_handler_effects_total':
                calls = self.effects.setdefault(labels.get('handler', '?'),
                                                {})
                calls[labels.get('effect', '?')] = value
            elif name == 'vaurien_backend_connect_failures_total':
                self.failures += value
            elif name == 'vaurien_client_tls_handshake_failures_total':
                self.tls_failures += value
            elif name == 'vaurien_handler_exceptions_total':
                self.exceptions += value


def _size(count):
    """Bytes for a person: ``512 B``, ``1.5 KB``, ``3.2 MB`` (1 KB = 1024)."""
    value = float(count)
    for unit in ('B', 'KB', 'MB', 'GB'):
        if value < 1024 or unit == 'GB':
            return ('%d %s' % (value, unit) if unit == 'B'
                    else '%.1f %s' % (value, unit))
        value /= 1024
    return '%d B' % count


def table(now, before=None, source=''):
    """The text of the table for reading *now* (rates against *before*)."""
    elapsed = (now.when - before.when) if before is not None else 0

    def rate(current, previous):
        if before is None or elapsed <= 0:
            return '-'
        return '%.1f' % ((current - previous) / elapsed)

    def byte_rate(current, previous):
        if before is None or elapsed <= 0:
            return '-'
        return '%s/s' % _size(max(0, current - previous) / elapsed)

    lines = []
    if source:
        lines.append('vaurien stats from %s' % source)
    lines.append('connections  open %d  hung %d  total %d  closed %d  '
                 'new/s %s' % (now.open, now.hung, now.opened, now.closed,
                               rate(now.opened, before.opened
                                    if before else 0)))
    errors = ('errors       backend connect failures %d  handler '
              'exceptions %d' % (now.failures, now.exceptions))
    if now.tls_failures:    # (only with --local-tls-cert)
        errors += '  failed client TLS handshakes %d' % now.tls_failures
    lines.append(errors)
    lines.append('throughput   up %s (%s total)  down %s (%s total)'
                 % (byte_rate(now.bytes_up, before.bytes_up if before
                              else 0), _size(now.bytes_up),
                    byte_rate(now.bytes_down, before.bytes_down if before
                              else 0), _size(now.bytes_down)))
    lines.append('')
    total = sum(sum(pair) for pair in now.picks.values())
    lines.append('%-24s %10s %10s %10s %7s %9s'
                 % ('handler', 'upstream', 'downstream', 'picks', 'share',
                    'picks/s'))
    for name in sorted(now.picks):
        up, down = now.picks[name]
        previous = sum(before.picks.get(name, (0, 0))) if before else 0
        share = '%.1f%%' % (100.0 * (up + down) / total) if total else '-'
        lines.append('%-24s %10d %10d %10d %7s %9s'
                     % (name[:24], up, down, up + down, share,
                        rate(up + down, previous)))
    effects = [('requests', effect_shares(now.requests, 'requests')),
               ('connections', effect_shares(now.connections,
                                             'closed connections',
                                             total=now.closed))]
    effects += [('calls of %s' % name,
                 effect_shares(now.effects[name], 'calls'))
                for name in sorted(now.effects)]
    effects = [(what, text) for what, text in effects if text]
    if effects:
        lines.append('')
        lines.append('what the faults did')
        for what, text in effects:
            lines.append('  %-22s %s' % (what, text))
    return '\n'.join(lines) + '\n'


def watch(fetch, once=False, interval=1.0, out=None, source='',
          clear=None):
    """Print the table of ``fetch()`` (the ``/metrics`` text), refreshing
    every *interval* seconds until interrupted, or once with *once*.

    *clear* (default: when *out* is a terminal) clears the screen between
    two tables, like ``top``.
    """
    out = out or sys.stdout
    if clear is None:
        clear = hasattr(out, 'isatty') and out.isatty()
    before = None
    try:
        while True:
            now = Reading(fetch())
            text = table(now, before, source)
            if clear:
                text = '\x1b[H\x1b[2J' + text
            elif before is not None:
                text = '\n' + text
            out.write(text)
            out.flush()
            if once:
                return 0
            before = now
            time.sleep(interval)
    except KeyboardInterrupt:
        return 0
