"""The suite's output: text tables (markdown-like) and the targets check.

For each workload and each figure, one table: a row per subject with its
value, then its ratio to every other subject's value (``×direct``,
``×haproxy``, ``×bare-relay``, ...): ``value / that subject's value``. A
ratio below 1 means "less than that subject" (good for CPU and latency,
bad for throughput).
"""

__all__ = ['fmt', 'render', 'targets']


def fmt(value):
    """A number with about three significant digits, never in exponent."""
    if value is None:
        return '-'
    if isinstance(value, str):
        return value
    size = abs(value)
    if size >= 100:
        return '%.0f' % value
    if size >= 10:
        return '%.1f' % value
    if size >= 1:
        return '%.2f' % value
    if size == 0:
        return '0'
    if size >= 0.01:
        return '%.3f' % value
    return '%.2g' % value


def _ratio(value, base):
    if value is None or base is None or base == 0:
        return None
    return value / base


def _table(header, rows):
    widths = [max(len(str(cell)) for cell in column)
              for column in zip(header, *rows)]
    lines = ['| ' + ' | '.join(str(cell).ljust(w) if i == 0
                               else str(cell).rjust(w)
                               for i, (cell, w) in enumerate(zip(r, widths)))
             + ' |' for r in [header] + rows]
    lines.insert(1, '|' + '|'.join('-' * (w + 2) for w in widths) + '|')
    return lines


def render_workload(name, section):
    """The text of one workload's section."""
    lines = ['## %s' % section['title'], '']
    rows = section['rows']
    order = section['order']
    for figure in section['figures']:
        key = figure['key']
        values = [(subject, rows[subject]['figures'].get(key))
                  for subject in order
                  if rows[subject]['status'] == 'ok']
        values = [(s, v) for s, v in values if v is not None]
        if not values:
            continue
        refs = [s for s, _ in values]
        header = [figure['label'] + (' (higher is better)'
                                     if figure['better'] == 'higher' else
                                     ' (lower is better)')]
        header += ['value'] + ['×' + s for s in refs] if len(refs) > 1 \
            else ['value']
        table = []
        by_subject = dict(values)
        for subject, value in values:
            row = [subject, fmt(value)]
            if len(refs) > 1:
                row += [fmt(_ratio(value, by_subject[ref])) for ref in refs]
            table.append(row)
        lines += _table(header, table) + ['']
    for subject in order:
        row = rows[subject]
        if row.get('note'):
            lines.append('%s: %s' % (subject, row['note']))
        if row['status'] != 'ok':
            lines.append('%s: %s%s' % (subject, row['status'],
                                       ' (%s)' % row['reason']
                                       if row.get('reason') else ''))
    if lines[-1] != '':
        lines.append('')
    return lines


# (label, workload, figure, subject, reference subject or None, limit,
#  'lower' or 'higher': the measured value must be at most / at least it)
TARGETS = [
    ('bulk: vaurien CPU/GB vs haproxy', 'bulk', 'cpu_s_per_gb',
     'vaurien', 'haproxy', 0.6, 'lower'),
    ('keepalive: vaurien CPU/request vs haproxy', 'keepalive',
     'cpu_us_per_req', 'vaurien', 'haproxy', 1.0, 'lower'),
    ('churn: vaurien CPU/request vs haproxy', 'churn', 'cpu_us_per_req',
     'vaurien', 'haproxy', 1.15, 'lower'),
    ('setup: vaurien connections/s vs haproxy', 'setup', 'conn_s',
     'vaurien', 'haproxy', 1.0, 'higher'),
    ('latency: vaurien p50 added vs haproxy', 'latency', 'p50_added_us',
     'vaurien', 'haproxy', 1.2, 'lower'),
    ('idle: vaurien KiB per connection', 'idle', 'kib_per_conn',
     'vaurien', None, 20.0, 'lower'),
    ('faults: 50:delay CPU/request vs 100:dummy', 'faults',
     'cpu_us_per_req', 'vaurien 50:delay', 'vaurien 100:dummy', 1.1,
     'lower'),
    ('faults: 50:delay,20:error CPU/request vs 100:dummy', 'faults',
     'cpu_us_per_req', 'vaurien 50:delay,20:error', 'vaurien 100:dummy',
     1.1, 'lower'),
    ('tls-bulk: vaurien CPU/GB vs haproxy', 'tls-bulk', 'cpu_s_per_gb',
     'vaurien', 'haproxy', 1.2, 'lower'),
    ('tls-keepalive: vaurien CPU/request vs haproxy', 'tls-keepalive',
     'cpu_us_per_req', 'vaurien', 'haproxy', 1.2, 'lower'),
    ('toxics: vaurien CPU/request vs toxiproxy, same toxics', 'toxics',
     'cpu_us_per_req', 'vaurien toxics', 'toxiproxy toxics', 0.5, 'lower'),
    ('toxics: vaurien with toxics CPU/request vs 100:dummy', 'toxics',
     'cpu_us_per_req', 'vaurien toxics', 'vaurien 100:dummy', 1.3,
     'lower'),
    ('proxies: vaurien MiB for 100 idle proxies (minus 1)', 'proxies',
     'mib_added', 'vaurien-toxiproxy', None, 2.0, 'lower'),
]


def _value(results, workload, figure, subject):
    row = results.get(workload, {}).get('rows', {}).get(subject)
    if not row or row['status'] != 'ok':
        return None
    return row['figures'].get(figure)


def targets(results):
    """The targets of the speed issue, checked against *results*: a list of
    dicts (label, value, limit, met: True/False/None when not measured)."""
    checked = []
    for label, workload, figure, subject, ref, limit, better in TARGETS:
        value = _value(results, workload, figure, subject)
        if ref is not None:
            value = _ratio(value, _value(results, workload, figure, ref))
        met = None
        if value is not None:
            met = value <= limit if better == 'lower' else value >= limit
        checked.append({'label': label, 'value': value, 'limit': limit,
                        'better': better, 'met': met})
    return checked


def render(report):
    """The whole text report of a run."""
    meta = report['meta']
    lines = ['# Vaurien benchmark, %s' % meta['date'], '',
             'machine: %s' % meta['machine'],
             'load average at start / end: %s / %s'
             % (meta.get('loadavg_start'), meta.get('loadavg_end')), '']
    for name, version in sorted(meta.get('versions', {}).items()):
        lines.append('- %s: %s' % (name, version or 'unknown'))
    lines.append('')
    for name in report['order']:
        lines += render_workload(name, report['results'][name])
    checked = report.get('targets') or []
    if checked:
        lines.append('## targets (issues 13, 15 and 16)')
        lines.append('')
        table = [[t['label'], fmt(t['value']),
                  '%s %s' % ('>=' if t.get('better') == 'higher' else '<=',
                             fmt(t['limit'])),
                  {True: 'met', False: 'MISSED', None: 'not measured'}
                  [t['met']]] for t in checked]
        lines += _table(['target', 'measured', 'target', ''], table)
        lines.append('')
    return '\n'.join(lines)
