"""``vaurien --demo`` runs the real proxy on a built-in backend."""
import re

import pytest

import support


def _table(stdout):
    rows = {}
    for match in re.finditer(r'^(passed|delayed|errored|cut|hung)\s+(\d+)\s',
                             stdout, re.M):
        rows[match.group(1)] = int(match.group(2))
    return rows


@pytest.mark.timeout(90)
def test_demo_default_shows_several_outcomes():
    result = support.run_cli('--demo', '--seed', '3', timeout=80)
    assert result.returncode == 0, result.stderr
    rows = _table(result.stdout)
    assert set(rows) == {'passed', 'delayed', 'errored', 'cut', 'hung'}
    assert sum(rows.values()) == 300
    # The default mix shows several handlers at once.
    assert rows['passed'] > 0 and rows['delayed'] > 0
    assert rows['errored'] > 0 and rows['cut'] > 0 and rows['hung'] > 0
    assert 'p50 ms' in result.stdout and 'seed 3' in result.stdout


@pytest.mark.timeout(60)
def test_demo_with_dummy_only_passes_everything():
    result = support.run_cli('--demo', '--behavior', '100:dummy,0:error',
                             timeout=50)
    assert result.returncode == 0, result.stderr
    rows = _table(result.stdout)
    assert rows['passed'] == 300
    assert rows['errored'] == rows['cut'] == rows['hung'] == 0


@pytest.mark.timeout(60)
def test_demo_with_errors_only():
    result = support.run_cli('--demo', '--behavior', '100:error', timeout=50)
    assert result.returncode == 0, result.stderr
    assert _table(result.stdout)['errored'] == 300


def test_demo_bad_behavior_is_a_clear_error():
    result = support.run_cli('--demo', '--behavior', '20:nope', timeout=30)
    assert result.returncode == 2
    assert result.stderr.startswith('vaurien: error: unknown handler')
    assert 'Traceback' not in result.stderr


@pytest.mark.timeout(60)
def test_demo_honours_the_protocol():
    result = support.run_cli('--demo', '--protocol', 'http', '--behavior',
                             '100:dummy,0:error', timeout=50)
    assert result.returncode == 0, result.stderr
    assert 'protocol http' in result.stdout
    assert '--protocol http' in result.stdout     # in the replay line
    rows = _table(result.stdout)
    # (Slow answers read as "delayed" beyond 3x the median: timing noise.)
    assert rows['passed'] + rows['delayed'] == 300
    # The protocol is loaded and checked as for the proxy itself.
    result = support.run_cli('--demo', '--protocol', 'gopher', timeout=30)
    assert result.returncode == 2
    assert "unknown protocol 'gopher'" in result.stderr
