"""Money transfers that retry on deadlocks: the total must not change.

    python mysql_deadlocks.py HOST PORT USER PASSWORD DATABASE

An error on COMMIT may hide a commit that did happen: the transfer is then
done twice. The total is still right, which is the invariant checked here
(a real application would make its transfers idempotent).
"""
import sys

import pymysql

RETRYABLE = {1040, 1205, 1213, 1317}


def retry(action, attempts=20):
    for _ in range(attempts):
        try:
            return action()
        except pymysql.err.OperationalError as exc:
            if exc.args[0] not in RETRYABLE:
                raise
    raise SystemExit('bank failed: %d errors in a row' % attempts)


def main(host, port, user, password, database, count=40):
    def connect():
        # Plain connections: inside TLS the proxy sees no packets to fault
        # (it relays TLS sessions untouched).
        return pymysql.connect(host=host, port=int(port), user=user,
                               password=password, database=database,
                               connect_timeout=10, read_timeout=30,
                               ssl_disabled=True)
    db = retry(connect)

    def setup():
        with db.cursor() as cur:
            cur.execute('DROP TABLE IF EXISTS accounts')
            cur.execute('CREATE TABLE accounts (id INT PRIMARY KEY, '
                        'balance INT) ENGINE=InnoDB')
            cur.execute('INSERT INTO accounts VALUES (1, 1000), (2, 1000)')
        db.commit()
    retry(setup)

    def transfer(i):
        def run():
            db.begin()
            try:
                with db.cursor() as cur:
                    cur.execute('UPDATE accounts SET balance = balance - %s '
                                'WHERE id = 1', (i,))
                    cur.execute('UPDATE accounts SET balance = balance + %s '
                                'WHERE id = 2', (i,))
                db.commit()
            except pymysql.err.OperationalError:
                db.rollback()
                raise
        return run
    errors = 0
    for i in range(count):
        try:
            transfer(i)()
        except pymysql.err.OperationalError:
            errors += 1
            retry(transfer(i))

    def total():
        with db.cursor() as cur:
            cur.execute('SELECT SUM(balance) FROM accounts')
            return cur.fetchone()[0]
    money = retry(total)
    if money != 2000:
        raise SystemExit('bank failed: the total is %s' % money)
    print('bank passed: %d transfers, %d retried, total still 2000'
          % (count, errors))


if __name__ == '__main__':
    main(*sys.argv[1:])
