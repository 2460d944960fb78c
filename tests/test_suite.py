"""The test suite's own commands, as README.rst and docs/testing.rst give
them."""
import os
import re
import subprocess
import sys

import support


def _read(*parts):
    with open(os.path.join(support.ROOT, *parts), encoding='utf-8') as fh:
        return fh.read()


def _commands(text):
    """The ``python -m pytest ...`` lines of the literal blocks of *text*."""
    return [line.strip() for line in text.splitlines()
            if line.startswith('    ') and 'python -m pytest' in line]


def test_ci_runs_the_readme_command():
    readme = _commands(_read('README.rst'))
    assert "pip install '.[test]' && python -m pytest" in readme
    run = [line.strip() for line in _read('.ci', 'run').splitlines()
           if line.strip() and not line.lstrip().startswith('#')]
    assert run[-1] == "pip install -q '.[test]' && python -m pytest"


def test_the_documented_quick_subset_is_the_quick_tests():
    quick = 'python -m pytest -m quick'
    assert quick in _commands(_read('README.rst'))
    assert quick in _commands(_read('docs', 'testing.rst'))
    done = subprocess.run(
        [sys.executable] + quick.split()[1:] + ['--collect-only', '-q'],
        cwd=support.ROOT, env=support.env_with_root(), capture_output=True,
        text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    match = re.search(r'(\d+)/(\d+) tests collected \((\d+) deselected\)',
                      done.stdout)
    assert match, done.stdout
    selected, total, deselected = map(int, match.groups())
    # A real subset: more than a hundred tests, less than half of them.
    assert 100 < selected < total / 2, done.stdout
    assert selected + deselected == total


def test_the_quick_subset_runs_in_one_process(pytestconfig, monkeypatch):
    """``-n auto`` (tox.ini): two workers per core, none for ``-m quick``."""
    def workers(markexpr):
        monkeypatch.setattr(pytestconfig.option, 'markexpr', markexpr)
        return pytestconfig.hook.pytest_xdist_auto_num_workers(
            config=pytestconfig)
    assert workers('quick') == 0
    assert workers('') == 2 * os.cpu_count()
    assert workers('not quick') == 2 * os.cpu_count()
