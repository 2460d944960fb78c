"""A real headless Chromium, driven over the DevTools protocol.

Chromium is started with ``--remote-debugging-pipe``: it reads commands
on its file descriptor 3 and writes answers and events on 4, one JSON
message each, ended by a NUL byte. No driver, no network port, no Python
package: :class:`Browser` speaks that protocol itself (``Target``,
``Page``, ``Runtime``, ``Log``).

Everything the page reports as an error is collected in
:attr:`Browser.errors`: uncaught exceptions, ``console.error`` calls and
the browser's own log entries of level error (a failed request, a
Content-Security-Policy violation).
"""
import base64
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time

import pytest

FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic',
         '--no-first-run', '--disable-background-networking',
         '--disable-component-update', '--disable-sync',
         '--disable-default-apps', '--disable-extensions', '--mute-audio',
         '--remote-debugging-pipe']


def chromium_path():
    """Chromium's executable; skipped without it (a failure under CI,
    where ``.ci/run`` installs it)."""
    for name in ('chromium', 'chromium-browser', 'google-chrome'):
        path = shutil.which(name)
        if path:
            return path
    if os.environ.get('CI', '').strip().lower() in ('1', 'true', 'yes'):
        pytest.fail('chromium is not installed, and CI must run the browser '
                    'tests (.ci/debian-packages.txt lists it)')
    pytest.skip('chromium is not installed (apt-get install chromium)')


class BrowserError(Exception):
    """A DevTools command failed, or an answer did not come in time."""


class Browser:
    """One headless Chromium with one page (tab), for one test.

    *width* x *height* is the page's viewport, in CSS pixels.
    """

    def __init__(self, width=1280, height=900, timeout=30.0):
        self.timeout = timeout
        self.profile = tempfile.mkdtemp(prefix='vaurien-chromium-')
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()

        def plumbing():
            # In the child: the protocol's descriptors are 3 and 4.
            os.dup2(to_browser_r, 3)
            os.dup2(from_browser_w, 4)

        self.proc = subprocess.Popen(
            [chromium_path()] + FLAGS + ['--user-data-dir=' + self.profile,
                                         '--window-size=%d,%d'
                                         % (width, height), 'about:blank'],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, preexec_fn=plumbing,
            pass_fds=(3, 4))   # kept open in the child after plumbing()
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._next = 0
        self._answers = {}
        self._cond = threading.Condition()
        self.events = []
        self.errors = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        target = self.command('Target.createTarget',
                              url='about:blank')['targetId']
        self.session = self.command('Target.attachToTarget',
                                    targetId=target,
                                    flatten=True)['sessionId']
        for domain in ('Page', 'Runtime', 'Log'):
            self.send(domain + '.enable')
        self.send('Emulation.setDeviceMetricsOverride', width=width,
                  height=height, deviceScaleFactor=1, mobile=False)

    # -- the wire -------------------------------------------------------------

    def _read(self):
        buffered = b''
        while True:
            try:
                chunk = os.read(self._from_browser, 1 << 16)
            except OSError:
                chunk = b''
            if not chunk:
                with self._cond:
                    self._answers[None] = 'closed'
                    self._cond.notify_all()
                return
            buffered += chunk
            while b'\0' in buffered:
                raw, buffered = buffered.split(b'\0', 1)
                self._dispatch(json.loads(raw))

    def _dispatch(self, message):
        with self._cond:
            if 'id' in message:
                self._answers[message['id']] = message
            else:
                self.events.append(message)
                error = _error_of(message)
                if error is not None:
                    self.errors.append(error)
            self._cond.notify_all()

    def command(self, method, session=None, **params):
        """Send one DevTools command; its result (BrowserError if it
        failed or did not answer within the timeout)."""
        with self._cond:
            self._next += 1
            ident = self._next
        message = {'id': ident, 'method': method, 'params': params}
        if session:
            message['sessionId'] = session
        os.write(self._to_browser, json.dumps(message).encode() + b'\0')
        deadline = time.monotonic() + self.timeout
        with self._cond:
            while ident not in self._answers:
                if None in self._answers:
                    raise BrowserError('chromium exited during %s' % method)
                left = deadline - time.monotonic()
                if left <= 0:
                    raise BrowserError('no answer to %s within %gs'
                                       % (method, self.timeout))
                self._cond.wait(left)
            answer = self._answers.pop(ident)
        if 'error' in answer:
            raise BrowserError('%s: %s' % (method, answer['error']))
        return answer.get('result', {})

    def send(self, method, **params):
        """A command to the page."""
        return self.command(method, session=self.session, **params)

    # -- what a test does ---------------------------------------------------

    def open(self, url):
        """Load *url* and wait for its load event."""
        start = len(self.events)
        self.send('Page.navigate', url=url)
        self.wait_event('Page.loadEventFired', start)

    def wait_event(self, method, start=0):
        """Wait for an event *method* among the events from *start* on."""
        deadline = time.monotonic() + self.timeout
        with self._cond:
            while not any(e.get('method') == method
                          for e in self.events[start:]):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise BrowserError('no %s within %gs'
                                       % (method, self.timeout))
                self._cond.wait(left)

    def js(self, expression):
        """The value of a JavaScript *expression* in the page (promises
        awaited); BrowserError if it threw."""
        result = self.send('Runtime.evaluate', expression=expression,
                           returnByValue=True, awaitPromise=True)
        if 'exceptionDetails' in result:
            raise BrowserError('%s: %s' % (expression, json.dumps(
                result['exceptionDetails'])[:500]))
        return result['result'].get('value')

    def text(self, element_id):
        """The text of the element with this id."""
        return self.js('document.getElementById(%s).textContent'
                       % json.dumps(element_id))

    def wait_js(self, expression, timeout=20.0, what=None):
        """Poll *expression* until it is truthy; its value."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.js(expression)
            if value:
                return value
            if time.monotonic() >= deadline:
                raise AssertionError('%s did not become true within %gs'
                                     % (what or expression, timeout))
            time.sleep(0.05)

    def screenshot(self, path):
        """Save a PNG of the whole page at *path*."""
        size = self.js('[document.documentElement.scrollWidth,'
                       ' document.documentElement.scrollHeight]')
        data = self.send('Page.captureScreenshot', format='png',
                         captureBeyondViewport=True,
                         clip={'x': 0, 'y': 0, 'width': size[0],
                               'height': size[1], 'scale': 1})['data']
        with open(path, 'wb') as fh:
            fh.write(base64.b64decode(data))

    def close(self):
        """Stop Chromium and remove its profile."""
        try:
            self.command('Browser.close')
        except (BrowserError, OSError):
            pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        for fd in (self._to_browser, self._from_browser):
            try:
                os.close(fd)
            except OSError:
                pass
        self._reader.join(5)
        shutil.rmtree(self.profile, ignore_errors=True)


def _error_of(event):
    """A one-line description of *event* when it reports an error."""
    method = event.get('method')
    params = event.get('params', {})
    if method == 'Runtime.exceptionThrown':
        details = params.get('exceptionDetails', {})
        return 'exception: %s' % (details.get('exception', {}).get(
            'description') or details.get('text'))
    if method == 'Runtime.consoleAPICalled' and params.get('type') in (
            'error', 'assert'):
        return 'console.%s: %s' % (params['type'], ' '.join(
            str(arg.get('value', arg.get('description')))
            for arg in params.get('args', [])))
    if method == 'Log.entryAdded':
        entry = params.get('entry', {})
        if entry.get('level') == 'error':
            return 'log: %s (%s)' % (entry.get('text'), entry.get('url'))
    return None
