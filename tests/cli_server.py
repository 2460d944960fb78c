"""Runs ``vaurien ARGS`` (and ``vaurienctl ARGS``) for the tests, each in a
process forked from here.

Most command-line tests run the command to completion on a mistake (exit
status 2, one line) or on ``--help``/``--check``. Starting ``python -m
vaurien`` for each costs a fresh interpreter and every import (about
0.25 s of CPU); this server pays that once per test process: it patches
the standard library and imports :mod:`vaurien.run` as the command does,
then, for each request, forks a child that takes the request's working
directory, environment and ``sys.path`` (as ``python -m vaurien`` would
set it from ``PYTHONPATH``), points its standard streams at files and
runs :func:`vaurien.run.main` as ``python -m vaurien`` does, an uncaught
exception included (traceback on standard error, status 1).

Protocol: one JSON request per line on standard input, ``{"module":
"vaurien" or "vaurien.ctl", "argv": [...], "env": {...}, "cwd": DIR,
"timeout": SECONDS}``; one JSON answer per line
on standard output, ``{"returncode": N, "stdout": TEXT, "stderr": TEXT}``
(``"timeout": true`` when the child was killed after *timeout*). The
server ends at the end of its input. ``tests/support.run_cli`` is its
client; tests of the interpreter's own start (``python -m vaurien``, the
console script) still start the real thing.
"""
import json
import os
import sys
import tempfile
import traceback

from vaurien._patch import patch_all

patch_all()

from gevent.monkey import get_original  # noqa: E402

from vaurien import ctl, run  # noqa: E402

#: What ``python -m MODULE`` runs, for the modules served here.
MAINS = {'vaurien': run.main, 'vaurien.ctl': ctl.main}

_fork = get_original('os', 'fork')
_waitpid = get_original('os', 'waitpid')
_sleep = get_original('time', 'sleep')
_monotonic = get_original('time', 'monotonic')

# sys.path without this script's directory and without what PYTHONPATH
# added: the interpreter's own part, which every child keeps.
_OWN = [p for p in os.environ.get('PYTHONPATH', '').split(os.pathsep) if p]
_BASE = [p for p in sys.path[1:] if p not in _OWN]


def _child(request, out, err):
    os.chdir(request['cwd'])
    os.environ.clear()
    os.environ.update(request['env'])
    paths = [p for p in request['env'].get('PYTHONPATH', '').split(
        os.pathsep) if p]
    sys.path[:] = [os.getcwd()] + paths + _BASE
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(out.fileno(), 1)
    os.dup2(err.fileno(), 2)
    module = request['module']
    sys.argv = [sys.modules[module].__file__ if module != 'vaurien' else
                os.path.join(os.path.dirname(run.__file__), '__main__.py')
                ] + request['argv']
    code = 1
    try:
        code = MAINS[module](request['argv'])
    except SystemExit as exc:
        code = exc.code
    except BaseException:
        traceback.print_exc()
        code = 1
    if code is None:
        code = 0
    elif not isinstance(code, int):
        sys.stderr.write('%s\n' % (code,))
        code = 1
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(code & 0xff)


def _read(fh):
    fh.seek(0)
    return fh.read().decode('utf-8', 'replace').replace('\r\n', '\n')


def serve():
    for line in sys.stdin.buffer:
        request = json.loads(line)
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            sys.stdout.flush()
            sys.stderr.flush()
            pid = _fork()
            if pid == 0:
                try:
                    _child(request, out, err)
                finally:
                    os._exit(1)
            deadline = _monotonic() + request['timeout']
            answer = {}
            while True:
                done, status = _waitpid(pid, os.WNOHANG)
                if done:
                    answer['returncode'] = os.waitstatus_to_exitcode(status)
                    break
                if _monotonic() > deadline:
                    os.kill(pid, 9)
                    _waitpid(pid, 0)
                    answer['timeout'] = True
                    break
                _sleep(0.002)
            answer['stdout'] = _read(out)
            answer['stderr'] = _read(err)
        sys.stdout.write(json.dumps(answer) + '\n')
        sys.stdout.flush()


if __name__ == '__main__':
    serve()
