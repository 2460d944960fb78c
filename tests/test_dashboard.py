"""The live dashboard (vaurien/dashboard.py, ``GET /`` of the control API),
in a real headless Chromium against a real proxy with real traffic.

``python tests/test_dashboard.py`` makes the docs' picture of it
(``docs/dashboard.png``) the same way, from a real run.
"""
import http.client
import os
import socket
import sys
import threading

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.dirname(HERE), HERE]

import support  # noqa: E402
from browser_support import Browser  # noqa: E402
from control_support import api, assert_error, start_controlled  # noqa: E402
from named_support import NamedVaurien  # noqa: E402

pytestmark = pytest.mark.timeout(120)

PICTURE = os.path.join(support.ROOT, 'docs', 'dashboard.png')


@pytest.fixture
def browser():
    browser = Browser()
    yield browser
    browser.close()


def get(port, count, path='/', timeout=10):
    """*count* keep-alive GET requests through the proxy; the statuses
    (None for a request that got no answer)."""
    statuses = []
    conn = http.client.HTTPConnection(support.HOST, port, timeout=timeout)
    for _ in range(count):
        try:
            conn.request('GET', path)
            response = conn.getresponse()
            response.read()
            statuses.append(response.status)
        except (OSError, http.client.HTTPException):
            statuses.append(None)
            conn.close()
            conn = http.client.HTTPConnection(support.HOST, port,
                                              timeout=timeout)
    conn.close()
    return statuses


def number(browser, element_id):
    text = browser.text(element_id)
    return int(text) if text.isdigit() else None


def open_dashboard(browser, proxy, suffix=''):
    browser.open('http://%s:%d/%s' % (support.HOST, proxy.http_port, suffix))
    browser.wait_js("document.getElementById('opened').textContent !== '-'",
                    what='the first figures')


def test_live_counts_and_a_click_changes_the_behavior(vaurien, http_server,
                                                      browser, tmp_path):
    proxy = start_controlled(vaurien, http_server.address, '--behavior',
                             '30:delay,10:error', '--handlers.delay.sleep',
                             '0.05', '--seed', '11')
    open_dashboard(browser, proxy)
    assert browser.text('behavior') == '30:delay,10:error'
    assert browser.text('state') == 'up'
    assert number(browser, 'opened') == 0
    # Traffic: the counts move. (30 requests: with 30% of the events
    # picking delay, one at least delays a request, whatever the splits of
    # the data into events were. An error in tcp mode can leave a request
    # unanswered: 1 s is enough to give up on it.)
    get(proxy.port, 30, timeout=1)
    browser.wait_js("Number(document.getElementById('opened').textContent)"
                    " >= 1 && Number(document.getElementById('picks')"
                    ".textContent) >= 20", what='the counts after traffic')
    faults = browser.wait_js(
        "document.querySelectorAll('#recent tr').length", what='a fault')
    assert faults >= 1
    assert browser.wait_js(
        "Array.from(document.querySelectorAll('#effects tr'))"
        ".some(r => r.textContent.startsWith('delaydelayed'))",
        what='delay counted as delayed')
    # The charts draw a line per series once two readings are in: picks,
    # and faults per effect (delay's at least).
    assert browser.wait_js(
        "document.querySelectorAll('#picks-chart polyline').length == 1 && "
        "document.querySelectorAll('#faults-chart polyline').length >= 1",
        what='the charts')
    assert 'delayed/s' in browser.text('faults-legend')

    # A click sends all the traffic to blackout.
    browser.js("document.getElementById('handler').value = 'blackout';"
               "document.getElementById('use').click()")
    support.wait_until(lambda: api(proxy.http_port, 'GET', '/behavior').json[
        'behavior'] == 'blackout', what='the behavior changed by the click')
    browser.wait_js("document.getElementById('behavior').textContent === "
                    "'blackout'", what='the page showing blackout')
    assert get(proxy.port, 1) == [None]

    # A mix with options, from the form.
    browser.js("document.getElementById('mix').value = '20:delay,5:error';"
               "document.getElementById('mix-options').value = "
               "'delay.sleep=0.2\\nerror.warmup=3';"
               "document.getElementById('apply').click()")
    support.wait_until(lambda: (lambda state: (
        state['behavior'], state['options']))(
            api(proxy.http_port, 'GET', '/proxy').json)
        == ('20:delay,5:error', {'delay': {'sleep': 0.2},
                                 'error': {'warmup': 3}}),
        what='the mix set from the page')
    browser.wait_js("document.getElementById('msg').textContent === "
                    "'Behavior set to 20:delay,5:error.'", what='the answer')
    # A refusal is shown on the page, and changes nothing.
    browser.js("document.getElementById('mix').value = '20:delay';"
               "document.getElementById('mix-options').value = "
               "'delay.sleep=abc';"
               "document.getElementById('apply').click()")
    message = browser.wait_js(
        "document.getElementById('msg').classList.contains('error') && "
        "document.getElementById('msg').textContent", what='the refusal')
    assert "delay: option 'sleep' expects a number" in message
    assert api(proxy.http_port, 'GET', '/behavior').json['behavior'] == \
        '20:delay,5:error'

    # Down and up again.
    browser.js("document.getElementById('down').click()")
    support.wait_until(lambda: api(proxy.http_port, 'GET', '/proxy').json[
        'enabled'] is False, what='the service down')
    assert not support.port_open(proxy.port)
    browser.wait_js("document.getElementById('state').textContent === "
                    "'down'", what='the page showing down')
    browser.js("document.getElementById('up').click()")
    support.wait_until(lambda: api(proxy.http_port, 'GET', '/proxy').json[
        'enabled'] is True, what='the service up')
    # No error in the page but the browser's note of the refused change.
    assert [e for e in browser.errors if 'status of 400' not in e or
            '/behavior' not in e] == []



def test_named_proxies_are_listed_and_the_picked_one_is_driven(
        http_server, browser):
    # Two [proxy:NAME] sections, no default: the page lists both and
    # shows and drives the one picked in the list.
    host, port = http_server.address
    named = NamedVaurien(
        '[proxy:alpha]\nlocal = 127.0.0.1:0\ndistant = {h}:{p}\n'
        'behavior = 30:delay\n\n'
        '[proxy:beta]\nlocal = 127.0.0.1:0\ndistant = {h}:{p}\n'
        .format(h=host, p=port), names=('alpha', 'beta'))
    try:
        browser.open(named.url + '/')
        rows = browser.wait_js(
            "document.querySelectorAll('#proxies tr').length === 2 && "
            "document.getElementById('opened').textContent !== '-' && "
            "Array.from(document.querySelectorAll('#proxies tr'))"
            ".map(r => Array.from(r.cells).slice(0, 5)"
            ".map(c => c.textContent).join('|'))", what='the two proxies')
        assert rows == [
            'alpha|127.0.0.1:%d|%s:%d|yes|0' % (named.ports['alpha'], host,
                                                port),
            'beta|127.0.0.1:%d|%s:%d|yes|0' % (named.ports['beta'], host,
                                               port)]
        # The first one is shown until another is picked.
        assert browser.text('behavior') == '30:delay'
        assert browser.text('where').startswith('alpha: ')
        # Open connections are counted per proxy.
        with socket.create_connection(named.address('beta'), timeout=10):
            browser.wait_js(
                "document.querySelector('#proxies tr[data-proxy=beta]')"
                ".cells[4].textContent === '1'", what='beta\'s connection')
        browser.js("document.querySelector('#proxies tr[data-proxy=beta] "
                   "button').click()")
        browser.wait_js("document.getElementById('where').textContent"
                        ".startsWith('beta: ') && document.getElementById("
                        "'behavior').textContent === 'dummy'",
                        what='beta shown')
        browser.wait_js("document.getElementById('handler').options.length"
                        " > 1", what='the handlers of beta')
        browser.js("document.getElementById('handler').value = 'blackout';"
                   "document.getElementById('use').click()")
        support.wait_until(lambda: named.request(
            'GET', '/proxies/beta/behavior').json()['behavior'] ==
            'blackout', what="beta's behavior changed by the click")
        browser.wait_js("document.getElementById('behavior').textContent "
                        "=== 'blackout'", what='the page showing blackout')
        assert named.request('GET', '/proxies/alpha/proxy').json()[
            'behavior'] == '30:delay'
        # The service of beta down from its button: alpha stays up.
        browser.js("document.getElementById('down').click()")
        support.wait_until(lambda: named.request(
            'GET', '/proxies/beta/proxy').json()['enabled'] is False,
            what='beta down')
        assert named.request('GET', '/proxies/alpha/proxy').json()[
            'enabled'] is True
        browser.wait_js("document.querySelector('#proxies tr[data-proxy="
                        "beta]').cells[3].textContent === 'no'",
                        what='beta listed as down')
        assert browser.errors == []
    finally:
        named.stop()


def test_the_token_is_asked_for_and_sent(vaurien, http_server, browser):
    proxy = start_controlled(vaurien, http_server.address, '--http-token',
                             's3cret')
    # The page itself holds no data: it loads, then asks for the token.
    browser.open('http://%s:%d/' % (support.HOST, proxy.http_port))
    browser.wait_js("!document.getElementById('token-bar').classList"
                    ".contains('hidden')", what='the token prompt')
    assert browser.text('opened') == '-'
    browser.js("document.getElementById('token').value = 's3cret';"
               "document.querySelector('#token-form button').click()")
    browser.wait_js("document.getElementById('opened').textContent !== '-'",
                    what='the figures once the token is given')
    assert browser.js("document.getElementById('token-bar').classList"
                      ".contains('hidden')")
    # The token given in the address is taken, then removed from it.
    browser.js("sessionStorage.clear()")
    browser.open('about:blank')
    open_dashboard(browser, proxy, '#token=s3cret')
    assert browser.js('location.hash') == ''
    browser.js("document.getElementById('handler').value = 'hang';"
               "document.getElementById('use').click()")
    support.wait_until(lambda: api(
        proxy.http_port, 'GET', '/behavior',
        headers={'Authorization': 'Bearer s3cret'}).json['behavior'] ==
        'hang', what='the change made with the token')
    # Only the 401 answers of the first load were logged as failed loads.
    assert all('401' in error for error in browser.errors), browser.errors


def test_the_page_is_guarded_like_the_api(vaurien, http_server):
    proxy = start_controlled(vaurien, http_server.address)
    page = api(proxy.http_port, 'GET', '/')
    assert page.status == 200
    assert page.headers['content-type'] == 'text/html; charset=utf-8'
    policy = page.headers['content-security-policy']
    assert "default-src 'none'" in policy
    assert "connect-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy
    assert page.headers['x-frame-options'] == 'DENY'
    # Self-contained: nothing from another site.
    assert 'http://' not in page.text.replace('http://www.w3.org/2000/svg',
                                              '')
    assert 'https://' not in page.text
    # A foreign Host (DNS rebinding) or another site's page: refused.
    assert_error(api(proxy.http_port, 'GET', '/',
                     headers={'Host': 'evil.example:%d' % proxy.http_port}),
                 403, location='header')
    assert_error(api(proxy.http_port, 'PUT', '/behavior',
                     {'name': 'blackout'},
                     headers={'Origin': 'http://evil.example'}), 403,
                 location='header')
    # The page's own origin may change things (what its buttons send).
    origin = 'http://%s:%d' % (support.HOST, proxy.http_port)
    answer = api(proxy.http_port, 'PUT', '/behavior', {'name': 'blackout'},
                 headers={'Origin': origin})
    assert answer.status == 200, answer


def test_stats_route(vaurien, http_server):
    proxy = start_controlled(vaurien, http_server.address, '--behavior',
                             '100:blackout')
    assert get(proxy.port, 2) == [None, None]
    support.wait_until(lambda: api(proxy.http_port, 'GET', '/stats').json[
        'closed'] == 2, what='two closed connections')
    stats = api(proxy.http_port, 'GET', '/stats').json
    assert stats['opened'] == 2 and stats['open'] == 0
    assert stats['effects'] == [['blackout', 'cut', 2]]
    assert [(f['conn'], f['handler'], f['effect'], f['direction'])
            for f in stats['recent']] == [(1, 'blackout', 'cut', 'upstream'),
                                          (2, 'blackout', 'cut', 'upstream')]


def test_the_docs_command_serves_the_page(vaurien, http_server):
    import re
    import shlex
    with open(os.path.join(support.ROOT, 'docs', 'dashboard.rst'),
              encoding='utf-8') as fh:
        text = fh.read()
    command = re.search(r'\n    \$ (vaurien .*?)\n\n', text, re.S).group(1)
    args = shlex.split(command.replace('\\\n', ' '))[1:]
    args[args.index('--local') + 1] = '127.0.0.1:0'
    args[args.index('--distant') + 1] = '%s:%d' % http_server.address
    proxy = start_controlled(vaurien, None, *args)
    page = api(proxy.http_port, 'GET', '/')
    assert page.status == 200 and '<title>Vaurien dashboard</title>' in \
        page.text
    assert api(proxy.http_port, 'GET', '/behavior').json['behavior'] == \
        '20:delay,10:error,5:blackout'


def make_picture(vaurien, http_server, browser, path, seconds):
    """A dashboard with about *seconds* of history, saved as a PNG at
    *path*; the errors the page reported."""
    proxy = start_controlled(vaurien, http_server.address, '--behavior',
                             '20:delay,10:error,5:blackout',
                             '--handlers.delay.sleep', '0.1', '--seed', '3')
    open_dashboard(browser, proxy)
    stop = threading.Event()

    def traffic():
        while not stop.is_set():
            get(proxy.port, 5, timeout=0.5)
    workers = [threading.Thread(target=traffic, daemon=True)
               for _ in range(3)]
    for worker in workers:
        worker.start()
    try:
        browser.wait_js("document.querySelectorAll('#faults-chart "
                        "polyline').length >= 3 && document.querySelector("
                        "'#picks-chart polyline').getAttribute('points')"
                        ".split(' ').length >= %d" % seconds,
                        timeout=seconds * 3 + 30, what='the history')
    finally:
        stop.set()
        for worker in workers:
            worker.join(15)
    browser.screenshot(path)
    return browser.errors


def test_picture(vaurien, http_server, browser, tmp_path):
    # The docs' picture is made this way (python tests/test_dashboard.py),
    # with 45 s of history; 3 s here.
    path = tmp_path / 'dashboard.png'
    assert make_picture(vaurien, http_server, browser, str(path),
                        seconds=3) == []
    with open(path, 'rb') as fh:
        assert fh.read(8) == b'\x89PNG\r\n\x1a\n'


if __name__ == '__main__':
    started = []

    def factory(*args, **kwargs):
        proc = support.VaurienProcess(*args, **kwargs)
        started.append(proc)
        return proc
    server = support.HTTPServer()
    shot = Browser(width=1280, height=900)
    try:
        errors = make_picture(factory, server, shot, PICTURE, seconds=45)
        print('wrote %s%s' % (PICTURE, ' (errors: %s)' % errors
                              if errors else ''))
    finally:
        shot.close()
        server.close()
        for proc in started:
            proc.stop()
