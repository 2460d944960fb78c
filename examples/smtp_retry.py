"""A mailer that retries on transient (4xx) SMTP failures.

    python smtp_retry.py localhost 10025

Every mail is delivered at least once (a 451 replacing the final 250 makes
the mailer send again: at-least-once, as with real relays).
"""
import smtplib
import sys


def send(host, port, number):
    with smtplib.SMTP(host, int(port), timeout=10) as smtp:
        smtp.sendmail('drill@example.com', ['ops@example.com'],
                      'Subject: drill %d\r\n\r\nmail number %d\r\n'
                      % (number, number))


def main(host, port, count=20):
    retried = 0
    for number in range(count):
        for attempt in range(20):
            try:
                send(host, port, number)
                break
            except smtplib.SMTPResponseException as exc:
                if not 400 <= exc.smtp_code < 500:
                    raise
            except smtplib.SMTPRecipientsRefused as exc:
                if any(not 400 <= code < 500
                       for code, _ in exc.recipients.values()):
                    raise
            except smtplib.SMTPServerDisconnected:
                pass
            retried += 1
        else:
            raise SystemExit('mailer failed: mail %d never went' % number)
    print('mailer passed: %d mails, %d retries' % (count, retried))


if __name__ == '__main__':
    main(*sys.argv[1:])
