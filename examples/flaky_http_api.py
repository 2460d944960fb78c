"""A client that survives the flaky HTTP API: urllib3 retries on 5xx.

    python flaky_http_api.py localhost 18080

Exit status 0 and "client passed" when every request got its answer.
"""
import sys

import urllib3


def main(host, port, count=50):
    retry = urllib3.Retry(total=10, status_forcelist=[500, 502, 503, 504],
                          allowed_methods=None, backoff_factor=0)
    http = urllib3.PoolManager(retries=retry)
    retried = 0
    for i in range(count):
        response = http.request('GET', 'http://%s:%s/item/%d'
                                % (host, port, i))
        if response.status != 200:
            raise SystemExit('client failed: status %d' % response.status)
        retried += len(response.retries.history)
    print('client passed: %d requests, %d retried after a 5xx'
          % (count, retried))


if __name__ == '__main__':
    main(*sys.argv[1:])
