"""Unit tests of the converters and parsers of vaurien/config.py."""
import os
import subprocess
import sys

import pytest

import support

from vaurien import config
from vaurien.config import (BadValue, ConfigError, convert, format_behavior,
                            format_hostport, parse_behavior, parse_bool,
                            parse_float, parse_hostport, parse_int,
                            parse_listen_hostport, parse_log_level, parse_str,
                            read_ini)
from vaurien.handlers.types import Integer, Number


@pytest.mark.parametrize('text', ['yes', 'YES', 'Yes', 'true', 'True', 'TRUE',
                                  'on', 'On', 'ON', '1', ' yes '])
def test_bool_true(text):
    assert parse_bool(text) is True


@pytest.mark.parametrize('text', ['no', 'NO', 'No', 'false', 'False', 'FALSE',
                                  'off', 'Off', 'OFF', '0'])
def test_bool_false(text):
    assert parse_bool(text) is False


@pytest.mark.parametrize('value', ['', 'maybe', '2', 'y', 2, 1.5, None])
def test_bool_refused(value):
    with pytest.raises(ValueError, match='boolean'):
        parse_bool(value)


def test_bool_typed_values():
    assert parse_bool(True) is True and parse_bool(False) is False
    assert parse_bool(1) is True and parse_bool(0) is False


def test_int():
    assert parse_int('12') == 12
    assert parse_int(' 7 ') == 7
    assert parse_int(3) == 3
    assert parse_int(4.0) == 4
    for bad in ('1.5', 'abc', '', True, 2.5, None):
        with pytest.raises(ValueError, match='integer'):
            parse_int(bad)


def test_float():
    assert parse_float('0.25') == 0.25
    assert parse_float('2') == 2.0
    assert parse_float(3) == 3.0
    for bad in ('abc', '', True, None):
        with pytest.raises(ValueError, match='number'):
            parse_float(bad)
    for bad in ('nan', 'inf', '-inf'):
        with pytest.raises(ValueError, match='finite'):
            parse_float(bad)


def test_str():
    assert parse_str('x y') == 'x y'
    assert parse_str(3) == '3'
    with pytest.raises(ValueError):
        parse_str(None)


def test_convert_declared_types():
    assert convert(bool, 'Off') is False
    assert convert(int, '42') == 42
    assert convert(float, '0.5') == 0.5
    assert convert(str, 'abc') == 'abc'
    with pytest.raises(ValueError, match='integer'):
        convert(int, '0.5')


def test_convert_callable_type():
    assert convert(Number(min=0), '0.5') == 0.5
    assert convert(Integer(min=1), '3') == 3
    with pytest.raises(ValueError, match='>= 0'):
        convert(Number(min=0), '-1')
    with pytest.raises(ValueError, match='integer'):
        convert(Integer(min=0), '1.5')
    # any other callable: its own ValueError message, or a generic one
    assert convert(lambda v: v.upper(), 'ab') == 'AB'

    def picky(value):
        raise ValueError

    with pytest.raises(ValueError, match='a valid picky'):
        convert(picky, 'x')


def test_number_bounds():
    assert Number(min=0)(0) == 0
    with pytest.raises(ValueError):
        Number(min=0, min_exclusive=True)(0)
    with pytest.raises(ValueError):
        Number(max=10)(11)
    assert str(Number(min=0, max=10)) == 'number >= 0 and <= 10'
    assert str(Integer()) == 'integer'


@pytest.mark.parametrize('text, expected', [
    ('localhost:8000', ('localhost', 8000)),
    ('127.0.0.1:1', ('127.0.0.1', 1)),
    ('[::1]:80', ('::1', 80)),
    (':8000', ('', 8000)),
    (' example.org:65535 ', ('example.org', 65535)),
])
def test_hostport(text, expected):
    assert parse_hostport(text) == expected


@pytest.mark.parametrize('text', ['localhost', 'localhost:', 'localhost:abc',
                                  'localhost:0', 'localhost:65536', '::1:80',
                                  'a b:80', '', 'host:80:90'])
def test_hostport_refused(text):
    with pytest.raises(ValueError, match='HOST:PORT'):
        parse_hostport(text)


def test_listen_hostport_allows_zero():
    assert parse_listen_hostport('127.0.0.1:0') == ('127.0.0.1', 0)
    with pytest.raises(ValueError):
        parse_listen_hostport('127.0.0.1:70000')


def test_format_hostport():
    assert format_hostport(('localhost', 80)) == 'localhost:80'
    assert format_hostport(('::1', 80)) == '[::1]:80'
    assert parse_hostport(format_hostport(('::1', 80))) == ('::1', 80)


def test_behavior():
    assert parse_behavior('20:delay,10:error') == [(20, 'delay'), (10, 'error')]
    assert parse_behavior(' 20 : delay , 10:error ') == [(20, 'delay'),
                                                        (10, 'error')]
    assert parse_behavior('100:pkg.mod:Class') == [(100, 'pkg.mod:Class')]
    assert parse_behavior('0:error') == [(0, 'error')]
    assert parse_behavior('') == []
    assert parse_behavior([(30, 'error')]) == [(30, 'error')]
    assert format_behavior([(20, 'delay'), (10, 'error')]) == '20:delay,10:error'


@pytest.mark.parametrize('text, words', [
    ('delay', 'PERCENT:NAME'),
    ('20:', 'PERCENT:NAME'),
    (':delay', 'PERCENT:NAME'),
    ('20:delay,,10:error', 'empty entry'),
    ('2.5:delay', 'whole number'),
    ('-5:delay', 'whole number'),
    ('abc:delay', 'whole number'),
    ('101:delay', 'whole number'),
    ('60:delay,50:error', 'add up to 110'),
])
def test_behavior_refused(text, words):
    with pytest.raises(BadValue, match=words):
        parse_behavior(text)


def test_log_level():
    assert parse_log_level('DEBUG') == 'debug'
    assert parse_log_level('Warning') == 'warning'
    with pytest.raises(ValueError, match='one of'):
        parse_log_level('verbose')


def test_setting_convert_messages():
    setting = config.SETTINGS_BY_NAME['bufsize']
    assert setting.convert('1024', '--bufsize') == 1024
    with pytest.raises(ConfigError) as info:
        setting.convert('big', '--bufsize')
    assert str(info.value) == "--bufsize expects an integer, got 'big'"
    with pytest.raises(ConfigError, match='above 0'):
        setting.convert('0', '--bufsize')
    behavior = config.SETTINGS_BY_NAME['behavior']
    with pytest.raises(ConfigError, match='^--behavior: .*add up to'):
        behavior.convert('90:delay,20:error', '--behavior')


def test_settings_table():
    names = [s.name for s in config.SETTINGS]
    for name in ('local', 'distant', 'behavior', 'bufsize', 'timeout', 'seed',
                 'log_level', 'log_output'):
        assert name in names
    defaults = config.defaults()
    assert defaults['local'] == ('localhost', 8000)
    assert defaults['distant'] == ('localhost', 80)
    assert defaults['behavior'] == [(100, 'dummy')]
    assert defaults['bufsize'] == 65536
    assert defaults['timeout'] == 30.0
    assert config.SETTINGS_BY_NAME['log_level'].flag == '--log-level'


# -- the INI reader ----------------------------------------------------------------

def write(tmp_path, text, name='vaurien.ini'):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_read_ini_values(tmp_path, monkeypatch):
    monkeypatch.setenv('VAURIEN_TEST_PORT', '4321')
    path = write(tmp_path, """
[vaurien]
distant = 127.0.0.1:${VAURIEN_TEST_PORT}
local = "127.0.0.1:0"
behavior = 20:delay, 10:error
bufsize = 1024
seed = 7
log-level = DEBUG

[handler:delay]
sleep = 0.5
before = false

[handler:foobar]
callable = mymod.Foo
name = 'quoted words'
""")
    ini = read_ini(path)
    assert ini.settings == {
        'distant': ('127.0.0.1', 4321), 'local': ('127.0.0.1', 0),
        'behavior': [(20, 'delay'), (10, 'error')], 'bufsize': 1024,
        'seed': 7, 'log_level': 'debug'}
    # handler option values stay strings: the handler's types convert them
    assert ini.handlers == {
        'delay': {'sleep': '0.5', 'before': 'false'},
        'foobar': {'callable': 'mymod.Foo', 'name': 'quoted words'}}
    assert ini.warnings == []


def test_read_ini_aliases_and_legacy(tmp_path):
    path = write(tmp_path, """
[vaurien]
proxy = 127.0.0.1:9000
backend = 127.0.0.1:9001
stay_connected = 1
""")
    ini = read_ini(path)
    assert ini.settings == {'local': ('127.0.0.1', 9000),
                            'distant': ('127.0.0.1', 9001)}
    assert len(ini.warnings) == 1 and 'stay_connected' in ini.warnings[0]


def test_read_ini_unset_env(tmp_path, monkeypatch):
    monkeypatch.delenv('VAURIEN_SURELY_UNSET', raising=False)
    path = write(tmp_path, '[vaurien]\ndistant = h:${VAURIEN_SURELY_UNSET}\n')
    with pytest.raises(ConfigError, match=r'\$\{VAURIEN_SURELY_UNSET\}.*not set'):
        read_ini(path)


@pytest.mark.parametrize('text, words', [
    ('[vaurien]\nbufsize = big\n', "bufsize expects an integer, got 'big'"),
    ('[vaurien]\ncolour = red\n', "unknown key 'colour' in \\[vaurien\\]"),
    ('[other]\nx = 1\n', 'unknown section \\[other\\]'),
    ('[handler:]\nx = 1\n', 'needs a name'),
    ('no section here\n', 'not valid INI'),
    ('[vaurien]\nlocal = a:1\nlocal = b:2\n', 'not valid INI'),
    ('[vaurien]\nbehavior = 80:delay,80:error\n', 'add up to 160'),
])
def test_read_ini_refused(tmp_path, text, words):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match=words) as info:
        read_ini(path)
    assert '\n' not in str(info.value)


def test_read_ini_missing_and_directory(tmp_path):
    with pytest.raises(ConfigError, match='no such file'):
        read_ini(str(tmp_path / 'missing.ini'))
    with pytest.raises(ConfigError, match='is a directory'):
        read_ini(str(tmp_path))


def test_read_ini_not_utf8(tmp_path):
    path = tmp_path / 'bad.ini'
    path.write_bytes(b'[vaurien]\nbehavior = \xff\xfe\n')
    with pytest.raises(ConfigError, match='UTF-8'):
        read_ini(str(path))


def test_read_ini_unreadable(tmp_path):
    prefix = support.unprivileged_prefix()
    if prefix is None:
        pytest.skip('root without setpriv reads any file')
    path = write(tmp_path, '[vaurien]\n')
    os.chmod(path, 0)
    # In a child process, where file permissions apply even to root.
    code = ('from vaurien.config import ConfigError, read_ini\n'
            'try:\n    read_ini(%r)\n'
            'except ConfigError as exc:\n    print(exc)\n' % path)
    result = subprocess.run(prefix + [sys.executable, '-c', code],
                            env=support.env_with_root(), capture_output=True,
                            text=True, timeout=30)
    assert result.stdout.strip() == 'config file %s: permission denied' % path
    assert result.returncode == 0, result.stderr


def test_one_address_formatter():
    from vaurien.config import format_hostport
    assert format_hostport(('localhost', 8000)) == 'localhost:8000'
    assert format_hostport(('::1', 80)) == '[::1]:80'
    assert format_hostport(('[::1]', '80')) == '[::1]:80'
    assert format_hostport(('fe80::1', 80, 0, 2)) == '[fe80::1]:80'
    # A Unix socket's path, as the settings write it (docs/endpoints.rst).
    assert format_hostport('/tmp/unix.sock') == 'unix:/tmp/unix.sock'


@pytest.mark.parametrize('text, expected', [
    ('unix:/run/app.sock', '/run/app.sock'),
    ('unix:relative.sock', 'relative.sock'),
    ('[::1]:8000', ('::1', 8000)),
    ('localhost:80', ('localhost', 80)),
])
def test_parse_endpoint(text, expected):
    from vaurien.config import format_hostport, parse_endpoint
    assert parse_endpoint(text) == expected
    assert format_hostport(parse_endpoint(text)) == text


@pytest.mark.parametrize('text, message', [
    ('unix:', 'unix:PATH with a path'),
    ('unix:/' + 'x' * 200, 'at most 107 bytes'),
    ('nope', 'or unix:PATH'),
])
def test_parse_endpoint_refuses(text, message):
    from vaurien.config import parse_endpoint
    with pytest.raises(ValueError) as info:
        parse_endpoint(text)
    assert message in str(info.value)
