"""--protocol mysql against a real MariaDB server, with PyMySQL."""
import struct
import subprocess

import pytest

from conftest import HERE, MYSQL_PASSWORD, MYSQL_USER, Timer

import support

pymysql = pytest.importorskip('pymysql')

pytestmark = pytest.mark.timeout(90)


def start(factory, backend, *args):
    return factory('--protocol', 'mysql', *args, backend=backend.address,
                   extra_paths=[HERE])


def connect(proxy, **kwargs):
    # The server offers TLS (see the last test) and PyMySQL takes it when
    # offered; inside TLS there is no protocol to see, so plain by default.
    kwargs.setdefault('ssl_disabled', True)
    return pymysql.connect(host=proxy.address[0], port=proxy.address[1],
                           user=MYSQL_USER, password=MYSQL_PASSWORD,
                           database='chaos', connect_timeout=30,
                           read_timeout=60, write_timeout=60, **kwargs)


QUIT = b'\x01\x00\x00\x00\x01'      # COM_QUIT, sequence 0
ROWS = ('WITH RECURSIVE seq(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq '
        'WHERE n < %d) SELECT n, REPEAT("r", 40) FROM seq')


def test_dummy_is_transparent(vaurien_inproc, mysql_backend, tmp_path):
    proxy = start(vaurien_inproc, mysql_backend)
    db = connect(proxy, local_infile=True,
                 client_flag=pymysql.constants.CLIENT.MULTI_STATEMENTS)
    with db.cursor() as cur:
        cur.execute('SET SESSION max_recursive_iterations = 1000000')
        cur.execute('DROP TABLE IF EXISTS t')
        cur.execute('CREATE TABLE t (id INT PRIMARY KEY, v LONGBLOB)')
        big = bytes(range(256)) * (20 * 4096)      # 20 MiB: > one packet
        cur.execute('INSERT INTO t VALUES (1, %s)', (big,))
        cur.execute('SELECT v FROM t WHERE id = 1')
        assert cur.fetchone()[0] == big
        cur.execute(ROWS % 100000)                 # a large result set
        rows = cur.fetchall()
        assert len(rows) == 100000 and rows[-1][0] == 100000
        cur.execute('SELECT 1; SELECT 2, 3; UPDATE t SET id = 1 WHERE id = 1')
        assert cur.fetchall() == ((1,),)
        assert cur.nextset() and cur.fetchall() == ((2, 3),)
        assert cur.nextset()
        cur.execute('DROP PROCEDURE IF EXISTS p')
        cur.execute('CREATE PROCEDURE p() BEGIN SELECT 1; SELECT 2; END')
        cur.execute('CALL p()')
        assert cur.fetchall() == ((1,),)
        csv = tmp_path / 'rows.csv'
        csv.write_text(''.join('%d,x\n' % i for i in range(10, 5000)))
        cur.execute("LOAD DATA LOCAL INFILE '%s' INTO TABLE t "
                    "FIELDS TERMINATED BY ','" % csv)
    db.commit()
    with db.cursor() as cur:                       # still in step after all
        cur.execute('SELECT COUNT(*) FROM t')
        assert cur.fetchone() == (4991,)
        with pytest.raises(pymysql.err.ProgrammingError):
            cur.execute('SELECT * FROM no_such_table')
        cur.execute('SELECT 42')
        assert cur.fetchone() == (42,)
    db.ping()
    db.close()


def test_a_result_set_is_one_message(vaurien_inproc, mysql_backend, recorder):
    args, records = recorder
    proxy = start(vaurien_inproc, mysql_backend, *args)
    db = connect(proxy)
    with db.cursor() as cur:
        cur.execute(ROWS % 800)
        assert len(cur.fetchall()) == 800
        cur.execute('SELECT 7')
    db.close()
    # COM_QUIT gets no answer: the client closes at once, so its record may
    # land a moment later.
    got = support.wait_until(
        lambda: (lambda got: got if [d for k, d in got if k == 'up'][-1:]
                 == [QUIT] else None)(records()),
        what='the COM_QUIT record')
    downs = [d for k, d in got if k == 'down']
    ups = [d for k, d in got if k == 'up']
    assert downs[0][4] == 10                       # the greeting, alone
    assert ups[-1] == QUIT
    query = next(i for i, d in enumerate(ups) if b'WITH RECURSIVE' in d)
    # One message per response: the 800 rows came as one, with every packet
    # (column count, 2 definitions, EOF, 800 rows, EOF) in it.
    results = downs[-2:]
    packets = []
    data = results[0]
    while data:
        length = struct.unpack('<I', data[:3] + b'\x00')[0]
        packets.append(data[4:4 + length])
        data = data[4 + length:]
    assert len(packets) == 1 + 2 + 1 + 800 + 1
    assert packets[-1][0] == 0xFE
    assert query == len(ups) - 3


def test_delay_holds_each_message_once(vaurien_inproc, mysql_backend):
    slow = start(vaurien_inproc, mysql_backend, '--behavior', '100:delay',
                 '--handlers.delay.sleep', '0.5', '--handlers.delay.before',
                 'false')
    db = connect(slow)
    with db.cursor() as cur:
        with Timer() as t:
            cur.execute('SELECT REPEAT("z", 8 * 1024 * 1024)')
            assert len(cur.fetchone()[0]) == 8 << 20
        # An 8 MiB result is one message: one delay, not one per read.
        assert 0.5 - 0.05 <= t.elapsed < 20
    before = start(vaurien_inproc, mysql_backend, '--behavior', '100:delay',
                   '--handlers.delay.sleep', '0.3')
    db = connect(before)
    with db.cursor() as cur:
        with Timer() as t:
            for i in range(3):
                cur.execute('SELECT %s', (i,))
    assert t.elapsed >= 3 * 0.3 - 0.05


def test_error_is_a_server_error_and_the_session_stays_in_step(
        vaurien_inproc, mysql_backend):
    broken = start(vaurien_inproc, mysql_backend, '--behavior', '100:error')
    with pytest.raises(pymysql.err.OperationalError) as caught:
        connect(broken)
    assert caught.value.args[0] == 1040            # "Too many connections"
    flaky = start(vaurien_inproc, mysql_backend, '--behavior', '25:error',
                  '--handlers.error.direction', 'downstream', '--seed', '1')
    outcomes = set()
    db = None
    for i in range(60):
        if db is None:
            try:
                db = connect(flaky)
            except pymysql.err.OperationalError as exc:
                assert exc.args[0] in (1040, 1205, 1213, 1317)
                outcomes.add('login error')
                continue
        try:
            with db.cursor() as cur:
                cur.execute('SELECT %s, REPEAT("q", %s)', (i, i * 10))
                assert cur.fetchone() == (i, 'q' * (i * 10))
            outcomes.add('ok')
        except pymysql.err.OperationalError as exc:
            assert exc.args[0] in (1205, 1213, 1317)
            assert 'vaurien' in exc.args[1]
            outcomes.add('error')
    assert {'ok', 'error'} <= outcomes


def test_tls_sessions_are_relayed_raw(vaurien_inproc, mysql_backend, tls_cert):
    proxy = start(vaurien_inproc, mysql_backend, '--behavior', '50:delay',
                  '--handlers.delay.sleep', '0.01')
    db = connect(proxy, ssl_disabled=False, ssl_ca=tls_cert[0],
                 ssl_verify_identity=False)
    with db.cursor() as cur:
        cur.execute('SET SESSION max_recursive_iterations = 10000')
        cur.execute("SHOW SESSION STATUS LIKE 'Ssl_cipher'")
        assert cur.fetchone()[1]                  # encrypted indeed
        cur.execute(ROWS % 5000)
        assert len(cur.fetchall()) == 5000
    db.close()
    assert 'raw bytes' not in proxy.log()     # announced: no warning


def test_the_mariadb_command_line_client(vaurien_inproc, mysql_backend,
                                         recorder):
    """A second real client library: libmariadb, through the ``mariadb``
    command-line client (multi-statements, a large result)."""
    from conftest import need_binary
    client = need_binary('mariadb', 'mysql')
    args, records = recorder
    proxy = start(vaurien_inproc, mysql_backend, *args)
    sql = ('SET SESSION max_recursive_iterations = 100000; '
           + (ROWS % 3000) + '; SELECT "after", 1 + 1;')
    done = subprocess.run(
        [client, '--no-defaults', '-h', proxy.address[0],
         '-P', str(proxy.address[1]), '-u', MYSQL_USER,
         '-p' + MYSQL_PASSWORD, '--skip-ssl', '--batch', '--skip-column-names',
         'chaos', '-e', sql],
        capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 3001 and lines[-1] == 'after\t2'
    got = records()
    downs = [d for k, d in got if k == 'down']
    big = [d for d in downs if d.count(b'rrrr') >= 3000]
    assert len(big) == 1                           # 3000 rows, one message
