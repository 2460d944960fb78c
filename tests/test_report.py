"""``vaurien report`` (vaurien/report.py) on real event logs: a fresh
seeded run, and the one the docs show (``docs/report/events.jsonl``)."""
import html.parser
import json
import os
import re

import pytest

import report_support
import support
from observe_support import read_events

DOCS = os.path.join(support.ROOT, 'docs', 'report')
DOC_LOG = os.path.join(DOCS, 'events.jsonl')


def report(*args, module='vaurien', cwd=None):
    """``vaurien report ARGS`` (or ``vaurienctl report ARGS``)."""
    return support.run_cli('report', *args, module=module, cwd=cwd)


class _Page(html.parser.HTMLParser):
    """Every tag and attribute of a page, and whether it is well nested."""

    VOID = {'meta', 'br', 'img', 'input', 'link', 'hr', 'rect', 'circle',
            'line'}

    def __init__(self):
        super().__init__()
        self.tags = []
        self.stack = []
        self.errors = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_endtag(self, tag):
        if tag in self.VOID and (not self.stack or self.stack[-1] != tag):
            return
        if not self.stack or self.stack.pop() != tag:
            self.errors.append(tag)


def check_self_contained(page):
    """The page parses, is well nested and refers to nothing outside."""
    parser = _Page()
    parser.feed(page)
    parser.close()
    assert not parser.errors and parser.stack in ([], ['html']), \
        (parser.errors, parser.stack)
    for tag, attrs in parser.tags:
        assert tag not in ('link', 'img', 'script', 'iframe') or \
            'src' not in attrs, tag
        for name, value in attrs.items():
            if name == 'xmlns':
                continue      # a namespace name, never fetched
            assert not re.match(r'\s*(https?:|//)', value or ''), (tag, name)
    assert '@import' not in page and 'url(' not in page
    return parser


def faults_of(events):
    return [e for e in events if e['event'] == 'data' and e['effect'] not in
            ('passed', 'none')]


@pytest.mark.timeout(90)
def test_report_of_a_real_seeded_run(vaurien_inproc, tmp_path):
    sent = []
    path = report_support.record(vaurien_inproc, tmp_path / 'events.jsonl',
                                 sent)
    events = read_events(path)
    page = tmp_path / 'report.html'
    result = report(str(path), '--limit', '0', '--html', str(page))
    assert result.returncode == 0, result.stderr
    text = result.stdout
    data = [e for e in events if e['event'] == 'data']
    # --pick exchange: a request and its response are one pick; the
    # response's line says so ("answer"), and the report counts the
    # requests, not the lines.
    answers = [e for e in data if e.get('answer')]
    assert answers and all(e['direction'] == 'downstream' for e in answers)
    requests = [e for e in data if e['direction'] == 'upstream']
    assert len(requests) == len(sent)
    assert len(data) > len(sent)
    assert ('%d connections, %d picks'
            % (report_support.CONNECTIONS, len(sent))) in text
    assert 'seed %d, pick per exchange' % report_support.SEED in text
    assert 'behavior %s' % report_support.BEHAVIOR in text
    for name in {e['handler'] for e in data}:
        picks = [e for e in requests if e['handler'] == name]
        assert '\n  %s: %d pick' % (name, len(picks)) in text
    # One effect per exchange, its first fault: error does nothing to the
    # request and errors its answer, one errored pick.
    errors = [e for e in requests if e['handler'] == 'error']
    assert errors, 'the seed gives error picks'
    block = text.split('\n  error: ')[1].split('\n  ')[1]
    assert block.strip() == 'errored %d (100.0%%)' % len(errors)
    # The cut connections are those blackout closed, each named once.
    cut = sorted({e['conn'] for e in data if e['effect'] == 'cut'})
    assert cut, 'the seed gives blackout picks'
    assert 'Connections cut: %d of %d' % (
        len(cut), report_support.CONNECTIONS) in text
    for conn in cut:
        assert '\n  %d: cut by blackout' % conn in text
    # Every connection with a fault has its timeline, steps in log order.
    faults = faults_of(events)
    for conn in {e['conn'] for e in faults}:
        block = text.split('\n  connection %d, ' % conn)[1]
        steps = [e for e in data if e['conn'] == conn]
        shown = re.findall(r'\n    \+\S+ +(\w+) +(\S+) ', block)[:len(steps)]
        assert shown == [(e['direction'], e['handler']) for e in steps]
    assert 'HTML report written to %s' % page in text

    body = page.read_text(encoding='utf-8')
    parsed = check_self_contained(body)
    assert [t for t, _ in parsed.tags].count('svg') == 2
    # One mark per fault in the timeline, one bar segment per effect and
    # handler in the other chart.
    assert len(re.findall(r'<title>connection \d+, (?:upstream|downstream) ',
                          body)) == len(faults)
    for name in {e['handler'] for e in data}:
        assert '<title>%s: ' % name in body


def test_the_docs_example_is_a_real_seeded_run():
    # The committed log is what the proxy writes: every handler is the one
    # the seeded picker gives to that event of that connection.
    from test_events import expected_handlers
    events = read_events(DOC_LOG)
    opens = [e for e in events if e['event'] == 'open']
    assert len(opens) == report_support.CONNECTIONS
    assert all(e['seed'] == report_support.SEED and
               e['behavior'] == report_support.BEHAVIOR for e in opens)
    seen = {}
    for event in events:
        if event['event'] == 'data':
            seen.setdefault((event['conn'], event['direction']),
                            []).append(event['handler'])
    assert {e['pick'] for e in opens} == {'exchange'}
    for (conn, direction), handlers in seen.items():
        # One pick per request (--pick exchange, the default with
        # --protocol): its answer gets the handler of its request.
        requests = seen[(conn, 'upstream')]
        assert requests == expected_handlers(
            report_support.SEED, report_support.BEHAVIOR, conn, True,
            len(requests))
        assert handlers == requests[:len(handlers)]


@pytest.mark.timeout(90)
def test_the_docs_example_has_the_format_of_a_fresh_log(vaurien_inproc,
                                                        tmp_path):
    from test_observability_docs import _shapes
    fresh = _shapes(read_events(report_support.record(
        vaurien_inproc, tmp_path / 'events.jsonl')))
    documented = _shapes(read_events(DOC_LOG))
    assert documented == fresh


def test_the_docs_example_output_is_what_the_command_prints():
    # docs/report.rst shows "vaurien report events.jsonl --limit 3", run
    # in docs/report/; docgen --check keeps report.txt and the charts in
    # step with the code, this keeps them in step with the command.
    result = report('events.jsonl', '--limit', '3', cwd=DOCS)
    assert result.returncode == 0, result.stderr
    with open(os.path.join(DOCS, 'report.txt'), encoding='utf-8') as fh:
        assert result.stdout == fh.read()
    with open(os.path.join(DOCS, 'report.html'), encoding='utf-8') as fh:
        check_self_contained(fh.read())


def test_vaurienctl_report_is_vaurien_report(tmp_path):
    page = tmp_path / 'page.html'
    mine = report(DOC_LOG, '--connection', '2', '--html', str(page))
    ctl = report(DOC_LOG, '--connection', '2', '--html', str(page),
                 module='vaurien.ctl')
    assert mine.returncode == ctl.returncode == 0, mine.stderr + ctl.stderr
    assert mine.stdout == ctl.stdout
    assert '\nTimelines\n  connection 2, ' in mine.stdout


def test_an_effect_field_wins_over_the_outcome(tmp_path):
    # Logs that say what a pick did ("effect", "why") are read as they
    # say; older logs are translated from "outcome".
    path = tmp_path / 'events.jsonl'
    with open(DOC_LOG) as src, open(path, 'w') as dst:
        for line in src:
            event = json.loads(line)
            if event.get('handler') == 'delay':
                event['effect'] = 'throttled'
                event['why'] = 'slowed down'
            dst.write(json.dumps(event) + '\n')
    delays = [e for e in read_events(path) if e.get('handler') == 'delay'
              and not e.get('answer')]
    result = report(str(path))
    assert result.returncode == 0, result.stderr
    assert re.search(r'\n  delay: %d picks .*\n    throttled %d \(100\.0%%\)'
                     % (len(delays), len(delays)), result.stdout)
    assert '    throttled %d: slowed down' % len(delays) in result.stdout


def test_a_log_without_answer_fields_counts_a_pick_per_line(tmp_path):
    # Logs from before "answer": every data line is a pick, as then.
    path = tmp_path / 'events.jsonl'
    with open(DOC_LOG) as src, open(path, 'w') as dst:
        for line in src:
            event = json.loads(line)
            event.pop('answer', None)
            dst.write(json.dumps(event) + '\n')
    events = read_events(path)
    data = [e for e in events if e['event'] == 'data']
    with_answers = report(str(DOC_LOG))
    result = report(str(path))
    assert result.returncode == 0, result.stderr
    assert '12 connections, %d picks' % len(data) in result.stdout
    ups = len([e for e in data if e['direction'] == 'upstream'])
    assert ups < len(data)
    assert '12 connections, %d picks' % ups in with_answers.stdout


def test_lines_that_are_not_events_are_skipped(tmp_path):
    path = tmp_path / 'events.jsonl'
    with open(DOC_LOG) as fh:
        text = fh.read()
    # A stray line, and a last line cut short (a crash mid-write).
    path.write_text('not json\n' + text + text.splitlines()[-1][:30])
    result = report(str(path))
    assert result.returncode == 0, result.stderr
    assert '2 lines skipped: not JSON event lines' in result.stdout


@pytest.mark.parametrize('args, message', [
    ((), 'the following arguments are required: EVENTS.jsonl'),
    (('/nonexistent/events.jsonl',), 'cannot read the event log '
     '/nonexistent/events.jsonl: no such file or directory'),
    ((DOC_LOG, '--limit', '-1'), '--limit expects a number >= 0, got -1'),
    ((DOC_LOG, '--limit', 'many'), "argument --limit: invalid int value: "
     "'many'"),
    ((DOC_LOG, '--html', '/nonexistent/r.html'), 'cannot write '
     '/nonexistent/r.html: no such file or directory'),
])
@pytest.mark.parametrize('module', ['vaurien', 'vaurien.ctl'])
def test_mistakes_are_one_line(args, message, module):
    result = report(*args, module=module)
    prog = 'vaurienctl' if module == 'vaurien.ctl' else 'vaurien'
    assert result.returncode == 2
    assert result.stderr == '%s: error: %s\n' % (prog, message)
    assert result.stdout == ''


def _doc_commands(prefix):
    import shlex
    with open(os.path.join(support.ROOT, 'docs', 'report.rst'),
              encoding='utf-8') as fh:
        text = fh.read()
    return [shlex.split(m.group(1).replace('\\\n', ' ')) for m in re.finditer(
        r'\n    \$ (%s.*?)(?=\n    \$|\n\n)' % re.escape(prefix), text, re.S)]


def test_the_docs_commands_run(tmp_path):
    import shutil
    shutil.copy(DOC_LOG, tmp_path / 'events.jsonl')
    commands = _doc_commands('vaurien report') + \
        _doc_commands('vaurienctl report')
    assert len(commands) == 3
    for command in commands:
        module = 'vaurien.ctl' if command[0] == 'vaurienctl' else 'vaurien'
        result = support.run_cli(*command[1:], module=module,
                                 cwd=str(tmp_path))
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith('Event log events.jsonl: ')
        if '--html' in command:
            page = tmp_path / command[command.index('--html') + 1]
            check_self_contained(page.read_text(encoding='utf-8'))
    # The proxy's command line of the example is the one recorded.
    (proxy,) = _doc_commands('vaurien --protocol')
    assert proxy[1:] == list(report_support.ARGS) + [
        '--event-log', 'events.jsonl']


@pytest.mark.timeout(90)
def test_the_page_opens_in_a_browser_without_errors_or_requests():
    # In a real (headless) Chromium: no error, and nothing fetched besides
    # the file itself; the charts are drawn.
    from browser_support import Browser
    browser = Browser()
    try:
        browser.open('file://' + os.path.join(DOCS, 'report.html'))
        assert browser.js("document.querySelectorAll('svg').length") == 2
        assert browser.js("document.querySelectorAll('svg circle, svg rect')"
                          ".length") > 10
        assert browser.js("performance.getEntriesByType('resource')"
                          ".length") == 0
        assert browser.errors == []
    finally:
        browser.close()


def test_standard_input_and_the_help():
    with open(DOC_LOG, encoding='utf-8') as fh:
        text = fh.read()
    import subprocess
    import sys
    result = subprocess.run([sys.executable, '-m', 'vaurien', 'report', '-',
                             '--limit', '1'], input=text, text=True,
                            capture_output=True, timeout=30,
                            env=support.env_with_root())
    assert result.returncode == 0, result.stderr
    assert re.match(r'Event log standard input: %d lines, 12 connections'
                    % len(text.splitlines()), result.stdout), result.stdout
    # "vaurien --help" points to it; "vaurien report --help" explains it.
    assert 'vaurien report EVENTS.jsonl' in support.run_cli('--help').stdout
    usage = support.run_cli('report', '--help')
    assert usage.returncode == 0
    for word in ('--html', '--limit', '--connection', 'EVENTS.jsonl'):
        assert word in usage.stdout
