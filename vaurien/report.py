"""``vaurien report EVENTS.jsonl``: an event log told to a person.

Reads the chaos event log (``--event-log``, see :mod:`vaurien.events`) and
prints what the faults did: picks and effects per handler, the slowest
connections, the connections that were cut, and a timeline of each
connection. ``--html FILE`` writes the same as one self-contained page
(inline CSS and SVG, nothing fetched from the network) with two charts:
the faults over time, one lane per connection, and the effects per
handler.

The effect of a ``data`` line is its ``effect`` field when the log has one;
a response's line marked ``"answer": true`` (``--pick exchange``) is not a
pick of its own: it pairs with the oldest unanswered request of its
connection, and the exchange has one effect, its first fault (a request
``none`` for ``error``, whose response is ``errored``, is one errored
pick). Older logs only have ``outcome``, translated by
:func:`vaurien.events.effect_of` (``closed`` is a cut connection, ``eof`` a
pick that met the end of stream and did nothing). Lines that are not JSON objects are counted and skipped:
a log cut short by a crash still reads.

It needs no running proxy: it runs wherever the log was copied.
"""
import argparse
import collections
import html
import json
import sys
import time
from calendar import timegm

from vaurien.config import ConfigError
from vaurien.events import EFFECT_OF_OUTCOME, effect_of
from vaurien.stats import NOT_FAULTS

__all__ = ['Report', 'read_report', 'text_report', 'html_report',
           'add_arguments', 'run', 'main', 'EFFECT_OF_OUTCOME', 'is_fault']

#: Effects that end a connection.
CUTS = frozenset(['cut', 'reset', 'failed'])

#: Colours of the effects in the HTML charts (others get grey).
COLOURS = {
    'passed': '#8fc98f',
    'none': '#cfcfcf',
    'delayed': '#f0a030',
    'throttled': '#f7cf5a',
    'errored': '#d7301f',
    'corrupted': '#f16913',
    'cut': '#6a3d9a',
    'reset': '#c2185b',
    'hung': '#1f78b4',
    'failed': '#222222',
    'handled': '#8c8c8c',
}

#: Order of the effects in tables and legends.
ORDER = ['delayed', 'throttled', 'errored', 'corrupted', 'cut', 'reset',
         'hung', 'failed', 'handled', 'none', 'passed']

#: Faults and connection lanes drawn at most in the HTML timeline.
MAX_LANES = 200


def is_fault(effect):
    """True when *effect* is a fault (anything but ``passed``/``none``)."""
    return effect not in NOT_FAULTS


def _order(effects):
    known = [e for e in ORDER if e in effects]
    return known + sorted(e for e in effects if e not in ORDER)


_SECONDS = {}


def _when(stamp):
    """Seconds since the epoch of ``2026-11-25T08:01:02.123Z`` (None if
    it is not one)."""
    if not isinstance(stamp, str) or len(stamp) < 20:
        return None
    head, _, rest = stamp.partition('.')
    base = _SECONDS.get(head)
    if base is None:
        try:
            base = timegm(time.strptime(head, '%Y-%m-%dT%H:%M:%S'))
        except ValueError:
            return None
        if len(_SECONDS) > 4096:
            _SECONDS.clear()
        _SECONDS[head] = base
    digits = rest.rstrip('Z')
    try:
        return base + (int(digits) / 10 ** len(digits) if digits else 0.0)
    except ValueError:
        return None


class Step:
    """One ``data`` line of a connection."""

    __slots__ = ('when', 'direction', 'handler', 'bytes', 'outcome',
                 'effect', 'why', 'seconds', 'answer')

    def __init__(self, when, event):
        self.when = when
        self.direction = event.get('direction', '?')
        self.handler = str(event.get('handler', '?'))
        self.bytes = event.get('bytes') or 0
        self.outcome = event.get('outcome')
        effect = event.get('effect')
        why = event.get('why')
        if not effect:
            # A log from before the "effect" field: told by the outcome.
            outcome = self.outcome or 'handled'
            effect = effect_of(self.handler, outcome)
            if outcome == 'eof':
                why = 'end of stream'
            elif effect == 'none':
                why = 'passed untouched'
        self.effect = str(effect)
        self.why = why
        self.seconds = event.get('seconds')
        # A response using its request's pick (--pick exchange): not a
        # pick of its own. Older logs lack the field: every line a pick.
        self.answer = event.get('answer') is True


class Connection:
    """What the log says about one connection."""

    def __init__(self, seq):
        self.seq = seq
        self.client = None
        self.backend = None
        self.opened = None
        self.closed = None
        self.duration = None
        self.closed_by = None
        self.bytes_up = self.bytes_down = None
        self.failed = None        # connect_failed: (reason, message)
        # ... or tls_failed (the client's handshake): what failed, in words.
        self.failure = 'backend unreachable'
        self.steps = []
        # Requests (upstream picks) not answered yet, oldest first: an
        # answer ("answer": true) pairs with the oldest, as in the engine.
        self.requests = collections.deque()

    @property
    def faults(self):
        """The steps whose effect is a fault."""
        return [s for s in self.steps if is_fault(s.effect)]

    @property
    def cut_by(self):
        """Why the connection was cut (a phrase), or None when it ended
        normally."""
        if self.failed is not None:
            return '%s (%s)' % (self.failure, self.failed[0])
        for step in self.steps:
            if step.effect in CUTS:
                return '%s by %s (%s)' % (step.effect, step.handler,
                                          step.direction)
        if self.closed_by in ('handler', 'error'):
            return 'closed by %s' % self.closed_by
        return None

    def end(self, last):
        """When it ended: its close line, else *last* (the log's end)."""
        return self.closed if self.closed is not None else last


class HandlerCounts:
    """Picks and effects of one handler."""

    def __init__(self, name):
        self.name = name
        self.picks = {'upstream': 0, 'downstream': 0}
        self.effects = {}
        self.seconds = 0.0
        self.whys = {}

    def add(self, step):
        """Count *step*: a pick (unless it is an answer) and its effect."""
        if not step.answer:
            self.picks[step.direction] = self.picks.get(step.direction,
                                                        0) + 1
        self.count(step, 1)

    def count(self, step, one):
        """Add *one* (1 or -1) to the effect of *step*."""
        self.effects[step.effect] = self.effects.get(step.effect, 0) + one
        if step.seconds and step.effect not in NOT_FAULTS:
            self.seconds += one * step.seconds
        if step.why:
            key = (step.effect, step.why)
            self.whys[key] = self.whys.get(key, 0) + one
            if not self.whys[key]:
                del self.whys[key]
        if not self.effects[step.effect]:
            del self.effects[step.effect]

    @property
    def total(self):
        return sum(self.picks.values())


class Report:
    """An event log, read: connections, handlers, behaviors, time span."""

    def __init__(self, source):
        self.source = source
        self.connections = {}
        self.handlers = {}
        self.behaviors = []       # (when, behavior text) in order
        self.seeds = set()
        self.picks = set()
        self.first = self.last = None
        self.lines = 0
        self.bad_lines = 0
        self.unknown = 0

    def _counts(self, name):
        counts = self.handlers.get(name)
        if counts is None:
            counts = self.handlers[name] = HandlerCounts(name)
        return counts

    def _connection(self, seq):
        conn = self.connections.get(seq)
        if conn is None:
            conn = self.connections[seq] = Connection(seq)
        return conn

    def add(self, line):
        """Take one line of the log into account."""
        line = line.strip()
        if not line:
            return
        self.lines += 1
        try:
            event = json.loads(line)
        except ValueError:
            event = None
        if not isinstance(event, dict) or 'event' not in event:
            self.bad_lines += 1
            return
        when = _when(event.get('time'))
        if when is not None:
            if self.first is None or when < self.first:
                self.first = when
            if self.last is None or when > self.last:
                self.last = when
        kind = event['event']
        if kind == 'behavior':
            self.behaviors.append((when, str(event.get('behavior', ''))))
            return
        seq = event.get('conn')
        if not isinstance(seq, int):
            self.unknown += 1
            return
        conn = self._connection(seq)
        if conn.client is None:
            conn.client = event.get('client')
        if kind == 'open':
            conn.opened = when
            conn.backend = event.get('backend')
            if 'seed' in event:
                self.seeds.add(event['seed'])
            if 'pick' in event:
                self.picks.add(event['pick'])
            behavior = event.get('behavior')
            if behavior is not None and (
                    not self.behaviors or self.behaviors[-1][1] != behavior):
                self.behaviors.append((when, str(behavior)))
        elif kind == 'data':
            step = Step(when, event)
            conn.steps.append(step)
            counts = self._counts(step.handler)
            if not step.answer:
                counts.add(step)
                if step.direction == 'upstream':
                    conn.requests.append(step)
                return
            # A response with its request's pick: the exchange has one
            # effect, its first fault (as the stats count it).
            request = conn.requests.popleft() if conn.requests else None
            if not is_fault(step.effect) or (
                    request is not None and is_fault(request.effect)):
                return
            if request is not None:
                # The request's "none"/"passed" was not what the pick did.
                self._counts(request.handler).count(request, -1)
            counts.count(step, 1)
        elif kind == 'close':
            conn.closed = when
            conn.duration = event.get('duration')
            conn.closed_by = event.get('closed_by')
            conn.bytes_up = event.get('bytes_up')
            conn.bytes_down = event.get('bytes_down')
        elif kind in ('connect_failed', 'tls_failed'):
            conn.failed = (event.get('reason', 'other'),
                           event.get('message', ''))
            if kind == 'tls_failed':
                conn.failure = 'TLS handshake failed'
        else:
            self.unknown += 1

    # -- what a person asks ------------------------------------------------

    def ordered(self):
        """The connections by number."""
        return [self.connections[k] for k in sorted(self.connections)]

    def span(self):
        """Seconds from the first line to the last."""
        if self.first is None:
            return 0.0
        return self.last - self.first

    def effects(self):
        """``{effect: count}`` over every pick."""
        total = {}
        for counts in self.handlers.values():
            for effect, count in counts.effects.items():
                total[effect] = total.get(effect, 0) + count
        return total

    def slowest(self, count):
        """The *count* longest connections (closed ones, by duration)."""
        closed = [c for c in self.connections.values()
                  if c.duration is not None]
        closed.sort(key=lambda c: (-c.duration, c.seq))
        return closed[:count]

    def cut(self):
        """The connections cut by a fault or an unreachable backend."""
        return [c for c in self.ordered() if c.cut_by is not None]


def read_report(path, name=None):
    """A :class:`Report` of the event log at *path* (``-``: stdin), called
    *name* (default: *path*) in what it prints.

    Raises ConfigError (one line) when the file cannot be read.
    """
    if name is None:
        name = 'standard input' if path == '-' else path
    report = Report(name)
    if path == '-':
        for line in sys.stdin:
            report.add(line)
        return report
    try:
        with open(path, encoding='utf-8', errors='replace') as fh:
            for line in fh:
                report.add(line)
    except OSError as exc:
        raise ConfigError('cannot read the event log %s: %s' % (
            path, (exc.strerror or str(exc)).lower())) from None
    return report


# -- text ---------------------------------------------------------------------

def _share(part, whole):
    return '%.1f%%' % (100.0 * part / whole) if whole else '-'


def _stamp(when):
    if when is None:
        return '?'
    return time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime(when)) + \
        '.%03dZ' % int(round((when % 1) * 1000) % 1000)


def _plural(count, word):
    return '%d %s%s' % (count, word, '' if count == 1 else 's')


def _effects_phrase(effects, total, seconds=0.0):
    parts = []
    for effect in _order(effects):
        part = '%s %d (%s)' % (effect, effects[effect],
                               _share(effects[effect], total))
        if effect == 'delayed' and seconds:
            part += ', held %.1f s in all' % seconds
        parts.append(part)
    return ', '.join(parts)


def _step_line(step, start):
    offset = '+%.3fs' % (step.when - start) if (
        step.when is not None and start is not None) else '?'
    text = '    %-9s %-10s %-12s %6d B  %s' % (
        offset, step.direction, step.handler, step.bytes, step.effect)
    if step.seconds and is_fault(step.effect):
        text += ' %.3fs' % step.seconds
    if step.why:
        text += ' (%s)' % step.why
    return text


def _conn_head(conn):
    parts = ['connection %d' % conn.seq]
    if conn.client:
        parts.append('from %s' % conn.client)
    if conn.duration is not None:
        parts.append('%.3fs' % conn.duration)
    if conn.closed_by:
        parts.append('closed by %s' % conn.closed_by)
    elif conn.closed is None:
        parts.append('still open at the end of the log')
    if conn.bytes_up is not None:
        parts.append('%d B up, %d B down' % (conn.bytes_up, conn.bytes_down))
    return ', '.join(parts)


def text_report(report, limit=10, connections=()):
    """The report for a terminal, as one string.

    *limit* bounds the slowest, cut and timeline lists (0: no bound);
    *connections* (numbers) gives the timelines to show, instead of the
    first *limit* connections with a fault.
    """
    out = []
    write = out.append
    total = sum(h.total for h in report.handlers.values())
    conns = report.ordered()
    write('Event log %s: %s, %s, %s over %.1f s' % (
        report.source, _plural(report.lines, 'line'),
        _plural(len(conns), 'connection'), _plural(total, 'pick'),
        report.span()))
    if report.first is not None:
        write('from %s to %s' % (_stamp(report.first), _stamp(report.last)))
    if report.seeds:
        write('seed %s, pick per %s (replay: --seed %s)' % (
            ', '.join(str(s) for s in sorted(report.seeds)),
            '/'.join(sorted(report.picks)) or '?',
            sorted(report.seeds)[0]))
    for when, behavior in report.behaviors:
        write('behavior %s (from %s)' % (behavior or '(none)',
                                         _stamp(when)))
    if report.bad_lines:
        write('%s skipped: not JSON event lines'
              % _plural(report.bad_lines, 'line'))

    write('')
    write('Effects of the picks, per handler')
    if not report.handlers:
        write('  (no data lines)')
    for name in sorted(report.handlers):
        counts = report.handlers[name]
        write('  %s: %s (%d upstream, %d downstream)' % (
            name, _plural(counts.total, 'pick'),
            counts.picks.get('upstream', 0),
            counts.picks.get('downstream', 0)))
        write('    ' + _effects_phrase(counts.effects, counts.total,
                                       counts.seconds))
        for (effect, why), count in sorted(counts.whys.items()):
            write('    %s %d: %s' % (effect, count, why))
    effects = report.effects()
    faults = sum(v for k, v in effects.items() if is_fault(k))
    faulted = sum(1 for c in conns if c.faults)
    write('  all handlers: %s of %s were faults; %s of %s had at least '
          'one' % (_plural(faults, 'pick'), total, faulted,
                   _plural(len(conns), 'connection')))

    write('')
    cut = report.cut()
    write('Connections cut: %d of %d (%s)' % (len(cut), len(conns),
                                             _share(len(cut), len(conns))))
    for conn in cut[:limit or None]:
        write('  %d: %s' % (conn.seq, conn.cut_by))
    if limit and len(cut) > limit:
        write('  ... and %d more (--limit 0 lists all)' % (len(cut) - limit))

    write('')
    slowest = report.slowest(limit or len(conns))
    write('Slowest connections')
    if not slowest:
        write('  (no close lines)')
    for conn in slowest:
        held = sum(s.seconds or 0 for s in conn.faults)
        write('  %d: %.3fs, %s%s' % (
            conn.seq, conn.duration, _plural(len(conn.faults), 'fault'),
            ', held %.3fs by handlers' % held if held else ''))

    write('')
    if connections:
        shown = [report.connections[n] for n in connections
                 if n in report.connections]
        missing = [n for n in connections if n not in report.connections]
        write('Timelines')
        for n in missing:
            write('  connection %d: not in the log' % n)
    else:
        shown = [c for c in conns if c.faults or c.cut_by]
        write('Timelines of the connections with a fault (%d)' % len(shown))
        if limit and len(shown) > limit:
            write('  (the first %d; --limit 0 shows all, --connection N '
                  'one)' % limit)
            shown = shown[:limit]
    for conn in shown:
        write('  ' + _conn_head(conn))
        start = conn.opened if conn.opened is not None else (
            conn.steps[0].when if conn.steps else None)
        if conn.failed is not None:
            write('    %s: %s (%s)' % ((conn.failure,) + conn.failed))
        for step in conn.steps:
            write(_step_line(step, start))
    return '\n'.join(out) + '\n'


# -- HTML ---------------------------------------------------------------------

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;
 margin:24px auto;max-width:1040px;padding:0 16px;color:#222}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px}
.meta{color:#555;margin:0 0 12px}
.cards{display:flex;flex-wrap:wrap;gap:10px;margin:12px 0}
.card{border:1px solid #ddd;border-radius:6px;padding:8px 14px;min-width:120px}
.card b{display:block;font-size:20px}
table{border-collapse:collapse;margin:6px 0}
th,td{padding:3px 10px;border-bottom:1px solid #eee;text-align:left;
 vertical-align:top}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
.legend span{display:inline-block;margin:0 12px 4px 0}
.sw{display:inline-block;width:11px;height:11px;border-radius:2px;
 margin-right:4px;vertical-align:-1px}
svg{display:block;max-width:100%;height:auto}
svg text{font:11px system-ui,sans-serif;fill:#444}
details{margin:2px 0}summary{cursor:pointer}
pre{margin:4px 0 8px 18px;font-size:12px}
.note{color:#666;font-size:13px}
"""


def _e(text):
    return html.escape(str(text), quote=True)


def _colour(effect):
    return COLOURS.get(effect, '#999999')


def _legend(effects):
    return '<p class="legend">%s</p>' % ''.join(
        '<span><i class="sw" style="background:%s"></i>%s</span>'
        % (_colour(e), _e(e)) for e in _order(effects))


def _ticks(span, width):
    """Round tick values for an axis of *span* seconds."""
    if span <= 0:
        return [0.0]
    raw = span / max(1, width // 90)
    step = 10 ** len(str(int(raw))) / 10 if raw >= 1 else 1.0
    for unit in (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2,
                 5, 10, 15, 30, 60, 120, 300, 600, 1800, 3600):
        if unit >= raw:
            step = unit
            break
    count = int(span / step) + 1
    return [i * step for i in range(count + 1) if i * step <= span * 1.0001]


def timeline_svg(report, width=960):
    """The faults over time, one lane per connection, as an SVG string."""
    conns = report.ordered()[:MAX_LANES]
    start = report.first or 0.0
    span = max(report.span(), 1e-3)
    left, right, top, lane = 70, 16, 22, 14
    height = top + lane * max(1, len(conns)) + 26
    plot = width - left - right

    def x(when):
        return left + plot * (((when or start) - start) / span)

    parts = ['<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" '
             'width="%d" height="%d" role="img" aria-label="faults over '
             'time per connection">' % (width, height, width, height),
             '<rect x="0" y="0" width="%d" height="%d" fill="#fff"/>'
             % (width, height)]
    for tick in _ticks(span, plot):
        tx = x(start + tick)
        parts.append('<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" '
                     'stroke="#eee"/>' % (tx, top - 4, tx, height - 22))
        parts.append('<text x="%.1f" y="%d" text-anchor="middle">%s</text>'
                     % (tx, height - 8, _seconds_label(tick)))
    parts.append('<text x="%d" y="12">connection</text>' % 4)
    parts.append('<text x="%d" y="12" text-anchor="end">seconds since the '
                 'first line</text>' % (width - right))
    for row, conn in enumerate(conns):
        y = top + row * lane + lane / 2
        begin = conn.opened if conn.opened is not None else (
            conn.steps[0].when if conn.steps else start)
        end = conn.end(report.last)
        parts.append('<text x="%d" y="%.1f" text-anchor="end">%d</text>'
                     % (left - 8, y + 4, conn.seq))
        parts.append('<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" '
                     'stroke="#bbb" stroke-width="2"><title>%s</title>'
                     '</line>' % (x(begin), y, max(x(end), x(begin) + 1), y,
                                  _e(_conn_head(conn))))
        for step in conn.steps:
            if not is_fault(step.effect) or step.when is None:
                continue
            title = _e('connection %d, %s %s: %s%s' % (
                conn.seq, step.direction, step.handler, step.effect,
                ' %.3fs' % step.seconds if step.seconds else ''))
            colour = _colour(step.effect)
            held = step.seconds or 0
            if held and x(step.when) - x(step.when - held) >= 3:
                parts.append('<rect x="%.1f" y="%.1f" width="%.1f" '
                             'height="8" rx="2" fill="%s"><title>%s</title>'
                             '</rect>' % (x(step.when - held), y - 4,
                                          x(step.when) - x(step.when - held),
                                          colour, title))
            else:
                parts.append('<circle cx="%.1f" cy="%.1f" r="4" fill="%s">'
                             '<title>%s</title></circle>'
                             % (x(step.when), y, colour, title))
        if conn.failed is not None:
            parts.append('<circle cx="%.1f" cy="%.1f" r="4" fill="none" '
                         'stroke="#6a3d9a" stroke-width="2"><title>%s'
                         '</title></circle>' % (x(begin), y, _e(
                             '%s: %s' % (conn.failure, conn.failed[0]))))
    parts.append('</svg>')
    return ''.join(parts)


def _seconds_label(value):
    if value == int(value):
        return '%d' % value
    return ('%.3f' % value).rstrip('0')


def handlers_svg(report, width=960):
    """The effects of each handler's picks, as stacked bars (SVG)."""
    names = sorted(report.handlers)
    left, right, top, bar = 150, 70, 8, 22
    height = top + (bar + 8) * max(1, len(names)) + 8
    plot = width - left - right
    most = max([report.handlers[n].total for n in names] or [1])
    parts = ['<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" '
             'width="%d" height="%d" role="img" aria-label="effects per '
             'handler">' % (width, height, width, height),
             '<rect x="0" y="0" width="%d" height="%d" fill="#fff"/>'
             % (width, height)]
    for row, name in enumerate(names):
        counts = report.handlers[name]
        y = top + row * (bar + 8)
        parts.append('<text x="%d" y="%d" text-anchor="end">%s</text>'
                     % (left - 8, y + bar / 2 + 4, _e(name)))
        cursor = float(left)
        for effect in _order(counts.effects):
            count = counts.effects[effect]
            w = plot * count / most
            parts.append('<rect x="%.1f" y="%d" width="%.1f" height="%d" '
                         'fill="%s"><title>%s</title></rect>' % (
                             cursor, y, w, bar, _colour(effect),
                             _e('%s: %s %d of %d (%s)' % (
                                 name, effect, count, counts.total,
                                 _share(count, counts.total)))))
            cursor += w
        parts.append('<text x="%.1f" y="%d">%d</text>'
                     % (cursor + 6, y + bar / 2 + 4, counts.total))
    parts.append('</svg>')
    return ''.join(parts)


def html_report(report, limit=10):
    """The report as one self-contained HTML page (a string)."""
    conns = report.ordered()
    total = sum(h.total for h in report.handlers.values())
    effects = report.effects()
    faults = sum(v for k, v in effects.items() if is_fault(k))
    cut = report.cut()
    out = ['<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">',
           '<meta name="viewport" content="width=device-width,'
           'initial-scale=1">',
           '<title>vaurien report: %s</title>' % _e(report.source),
           '<style>%s</style></head><body>' % _CSS,
           '<h1>What the faults did</h1>',
           '<p class="meta">Event log <code>%s</code>, %s to %s (%.1f s)%s.'
           '</p>' % (_e(report.source), _e(_stamp(report.first)),
                     _e(_stamp(report.last)), report.span(),
                     '; seed %s, pick per %s' % (
                         _e(', '.join(str(s) for s in sorted(report.seeds))),
                         _e('/'.join(sorted(report.picks))))
                     if report.seeds else '')]
    for when, behavior in report.behaviors:
        out.append('<p class="meta">Behavior <code>%s</code> from %s.</p>'
                   % (_e(behavior or '(none)'), _e(_stamp(when))))
    out.append('<div class="cards">')
    for label, value in (('connections', len(conns)), ('picks', total),
                         ('faults', '%d (%s)' % (faults,
                                                 _share(faults, total))),
                         ('connections cut', '%d (%s)' % (
                             len(cut), _share(len(cut), len(conns))))):
        out.append('<div class="card">%s<b>%s</b></div>'
                   % (_e(label), _e(value)))
    out.append('</div>')
    if report.bad_lines:
        out.append('<p class="note">%s skipped: not JSON event lines.</p>'
                   % _e(_plural(report.bad_lines, 'line')))

    out.append('<h2>Faults over time, per connection</h2>')
    out.append(_legend([e for e in effects if is_fault(e)]))
    out.append(timeline_svg(report))
    out.append('<p class="note">One lane per connection, from its open '
               'line to its close line; a mark per fault (a bar for the '
               'time a handler held the data). Hover for details.%s</p>'
               % (' The first %d connections of %d are drawn.'
                  % (MAX_LANES, len(conns)) if len(conns) > MAX_LANES
                  else ''))

    out.append('<h2>Effects per handler</h2>')
    out.append(_legend(effects))
    out.append(handlers_svg(report))
    out.append('<table><tr><th>handler</th><th class="n">picks</th>'
               '<th class="n">upstream</th><th class="n">downstream</th>'
               '<th>effects</th></tr>')
    for name in sorted(report.handlers):
        counts = report.handlers[name]
        out.append('<tr><td>%s</td><td class="n">%d</td><td class="n">%d'
                   '</td><td class="n">%d</td><td>%s</td></tr>' % (
                       _e(name), counts.total,
                       counts.picks.get('upstream', 0),
                       counts.picks.get('downstream', 0),
                       _e(_effects_phrase(counts.effects, counts.total,
                                          counts.seconds))))
    out.append('</table>')

    out.append('<h2>Connections cut (%d)</h2>' % len(cut))
    if cut:
        out.append('<table><tr><th class="n">connection</th><th>client</th>'
                   '<th>why</th></tr>')
        for conn in cut[:limit or None]:
            out.append('<tr><td class="n">%d</td><td>%s</td><td>%s</td></tr>'
                       % (conn.seq, _e(conn.client or ''), _e(conn.cut_by)))
        out.append('</table>')
        if limit and len(cut) > limit:
            out.append('<p class="note">... and %d more.</p>'
                       % (len(cut) - limit))

    slowest = report.slowest(limit or len(conns))
    out.append('<h2>Slowest connections</h2>')
    if slowest:
        out.append('<table><tr><th class="n">connection</th>'
                   '<th class="n">seconds</th><th class="n">faults</th>'
                   '<th>closed by</th></tr>')
        for conn in slowest:
            out.append('<tr><td class="n">%d</td><td class="n">%.3f</td>'
                       '<td class="n">%d</td><td>%s</td></tr>' % (
                           conn.seq, conn.duration, len(conn.faults),
                           _e(conn.closed_by or '')))
        out.append('</table>')

    out.append('<h2>Timeline of each connection</h2>')
    shown = conns[:MAX_LANES * 5]
    for conn in shown:
        start = conn.opened if conn.opened is not None else (
            conn.steps[0].when if conn.steps else None)
        lines = []
        if conn.failed is not None:
            lines.append('%s: %s (%s)' % ((conn.failure,) + conn.failed))
        lines.extend(_step_line(s, start).strip() for s in conn.steps)
        out.append('<details%s><summary>%s%s</summary><pre>%s</pre>'
                   '</details>' % (
                       ' open' if conn.cut_by and len(shown) <= 50 else '',
                       _e(_conn_head(conn)),
                       _e(' -- %s' % _plural(len(conn.faults), 'fault'))
                       if conn.faults else '',
                       _e('\n'.join(lines) or '(no data lines)')))
    if len(conns) > len(shown):
        out.append('<p class="note">The first %d connections of %d.</p>'
                   % (len(shown), len(conns)))
    out.append('<p class="note">Made by <code>vaurien report --html</code>; '
               'this page needs no network access.</p></body></html>\n')
    return '\n'.join(out)


# -- command line -------------------------------------------------------------

def add_arguments(parser):
    """The arguments of ``vaurien report`` (and ``vaurienctl report``)."""
    parser.add_argument('events', metavar='EVENTS.jsonl',
                        help='The event log (--event-log of the proxy); '
                             '"-" for standard input.')
    parser.add_argument('--html', metavar='FILE', default=None,
                        help='Also write the report as one self-contained '
                             'HTML page with charts.')
    parser.add_argument('--limit', type=int, default=10, metavar='N',
                        help='Connections listed at most per section '
                             '(0: all; default: %(default)s).')
    parser.add_argument('--connection', type=int, action='append',
                        default=[], metavar='N',
                        help='Show the timeline of connection N '
                             '(repeatable).')
    return parser


def report_from_args(args, stdout=None):
    """Do what parsed *args* ask; ConfigError for a user mistake."""
    stdout = sys.stdout if stdout is None else stdout
    if args.limit < 0:
        raise ConfigError('--limit expects a number >= 0, got %d'
                          % args.limit)
    report = read_report(args.events)
    if args.html:
        try:
            with open(args.html, 'w', encoding='utf-8') as fh:
                fh.write(html_report(report, args.limit))
        except OSError as exc:
            raise ConfigError('cannot write %s: %s' % (
                args.html, (exc.strerror or str(exc)).lower())) from None
    stdout.write(text_report(report, args.limit, args.connection))
    if args.html:
        stdout.write('\nHTML report written to %s\n' % args.html)
    return 0


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise ConfigError(message)


def run(argv, prog='vaurien report'):
    """Parse *argv* and print the report; ConfigError for a mistake."""
    parser = add_arguments(_Parser(
        prog=prog, description='Summarise a vaurien event log for a '
                               'person: effects per handler, slowest and cut '
                               'connections, timelines; --html for charts.'))
    return report_from_args(parser.parse_args(argv))


def main(argv=None, prog='vaurien report'):
    """``vaurien report ...``: the exit status (2 for a mistake)."""
    argv = sys.argv[1:] if argv is None else argv
    try:
        return run(argv, prog)
    except ConfigError as exc:
        sys.stderr.write('%s: error: %s\n' % (prog.split()[0], exc))
        return 2
    except BrokenPipeError:     # "| head"
        return 0
