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


@pytest.mark.timeout(120)
def test_demo_with_dummy_only_passes_everything():
    """Every answer right and whole, also on a loaded machine: "delayed"
    is 3x the median answer time by default, which a busy machine reaches
    with a plain relay, so the limits are set wide here."""
    result = support.run_cli('--demo', '--behavior', '100:dummy,0:error',
                             '--demo-slow', '20', '--demo-timeout', '30',
                             timeout=100)
    assert result.returncode == 0, result.stderr
    rows = _table(result.stdout)
    assert rows['passed'] == 300
    assert rows['delayed'] == 0
    assert rows['errored'] == rows['cut'] == rows['hung'] == 0
    assert '"hung" means no answer within 30.0 s, "delayed" at least ' \
        '20000 ms' in result.stdout


@pytest.mark.timeout(60)
def test_demo_limits_are_checked():
    for argv, message in [
            (['--demo', '--demo-timeout', '0'], "--demo-timeout: expects "
             "a number of seconds above 0, got '0'"),
            (['--demo', '--demo-slow', 'soon'], '--demo-slow: expects'),
            (['--demo-slow', '1'], '--demo-timeout and --demo-slow go '
             'with --demo')]:
        result = support.run_cli(*argv, timeout=30)
        assert result.returncode == 2, result.stderr
        assert result.stderr.startswith('vaurien: error: ')
        assert message in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.timeout(60)
def test_demo_timeout_grows_with_a_long_delay():
    """A delay's sleep near the 2 s client timeout: the timeout is 4x the
    sleep, so that a delayed answer can arrive and be counted as such."""
    result = support.run_cli('--demo', '--behavior', '99:dummy,1:delay',
                             '--handlers.delay.sleep', '0.75', timeout=50)
    assert result.returncode == 0, result.stderr
    assert '"hung" means no answer within 3.0 s, "delayed" at least ' \
        '675 ms' in result.stdout


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
