"""--protocol smtp against a real SMTP server (aiosmtpd), with smtplib."""
import email.message
import smtplib
import ssl

import pytest

from conftest import HERE, Timer

pytest.importorskip('aiosmtpd')

pytestmark = pytest.mark.timeout(90)


def start(factory, backend, *args):
    return factory('--protocol', 'smtp', *args, backend=backend.address,
                   extra_paths=[HERE])


def mail(subject, body='Hello.\n'):
    msg = email.message.EmailMessage()
    msg['From'] = 'chaos@example.com'
    msg['To'] = 'ops@example.com'
    msg['Subject'] = subject
    msg.set_content(body)
    return msg


def send(proxy, msg):
    with smtplib.SMTP(*proxy.address, timeout=30) as smtp:
        smtp.send_message(msg)


def received(backend, subject):
    return [e for e in backend.messages
            if b'Subject: %s' % subject.encode() in e.original_content]


def test_dummy_is_transparent(vaurien_inproc, smtp_backend):
    proxy = start(vaurien_inproc, smtp_backend)
    # Dot-stuffed lines, a line with only a dot, and a large body.
    body = 'line one\n.\n..two dots\n' + ('x' * 998 + '\n') * 20000
    with smtplib.SMTP(*proxy.address, timeout=30) as smtp:
        assert smtp.ehlo()[0] == 250       # a multi-line reply
        assert smtp.noop()[0] == 250
        smtp.send_message(mail('first', body))
        smtp.send_message(mail('second'))   # same session, again
        assert smtp.rset()[0] == 250
    first = received(smtp_backend, 'first')
    assert len(first) == 1
    assert b'\r\n.\r\n..two dots\r\n' in first[0].original_content
    assert len(received(smtp_backend, 'second')) == 1


def test_each_call_gets_one_whole_message(vaurien_inproc, smtp_backend,
                                          recorder):
    args, records = recorder
    proxy = start(vaurien_inproc, smtp_backend, *args, '--max-message', '8M')
    with smtplib.SMTP(*proxy.address, timeout=30) as smtp:
        smtp.ehlo('tester')
        smtp.sendmail('a@example.com', ['b@example.com'],
                      'Subject: recorded\r\n\r\nbody\r\n.dot\r\n')
    ups = [d for k, d in records() if k == 'up']
    downs = [d for k, d in records() if k == 'down']
    assert ups[:4] == [b'ehlo tester\r\n', b'mail FROM:<a@example.com> size=33'
                       b'\r\n', b'rcpt TO:<b@example.com>\r\n', b'data\r\n']
    assert ups[4] == b'Subject: recorded\r\n\r\nbody\r\n..dot\r\n.\r\n'
    assert ups[5].lower() == b'quit\r\n'
    assert downs[0].startswith(b'220 ')
    ehlo = downs[1].split(b'\r\n')
    assert ehlo[0].startswith(b'250-') and ehlo[-2].startswith(b'250 ')
    assert downs[4].startswith(b'354')
    assert downs[5].startswith(b'250 ') and downs[6].startswith(b'221')


def test_delay_holds_each_message_once(vaurien_inproc, smtp_backend):
    proxy = start(vaurien_inproc, smtp_backend, '--behavior', '100:delay',
                  '--handlers.delay.sleep', '0.3')
    with smtplib.SMTP(*proxy.address, timeout=30) as smtp:
        smtp.ehlo()
        with Timer() as t:
            # MAIL, RCPT, DATA, the body, then RSET: five client messages.
            smtp.sendmail('a@example.com', ['b@example.com'],
                          'Subject: slow\r\n\r\n' + ('y' * 70 + '\r\n') * 60000)
            smtp.rset()
    assert 5 * 0.3 - 0.05 <= t.elapsed < 30
    assert len(received(smtp_backend, 'slow')) == 1


def test_error_is_a_451_and_the_next_session_works(vaurien_inproc,
                                                   smtp_backend):
    broken = start(vaurien_inproc, smtp_backend, '--behavior', '100:error')
    with pytest.raises(smtplib.SMTPConnectError) as caught:
        smtplib.SMTP(*broken.address, timeout=30)    # the greeting is a 451
    assert caught.value.smtp_code == 451
    flaky = start(vaurien_inproc, smtp_backend, '--behavior', '30:error',
                  '--handlers.error.direction', 'downstream', '--seed', '11')
    outcomes = set()
    for i in range(40):
        try:
            send(flaky, mail('flaky %d' % i))
            outcomes.add('ok')
            assert len(received(smtp_backend, 'flaky %d' % i)) == 1
        except smtplib.SMTPResponseException as exc:
            assert exc.smtp_code == 451
            outcomes.add('error')
        except smtplib.SMTPRecipientsRefused as exc:
            assert all(code == 451 for code, _ in exc.recipients.values())
            outcomes.add('error')
        except smtplib.SMTPServerDisconnected:
            # The connection was closed after a 451 that left the dialogue
            # out of step (a replaced 354 or QUIT reply).
            outcomes.add('error')
    assert outcomes == {'ok', 'error'}


def test_starttls_switches_to_raw(vaurien_inproc, smtp_tls_backend, tls_cert):
    proxy = vaurien_inproc('--protocol', 'smtp', '--behavior', '50:delay',
                           '--handlers.delay.sleep', '0.01',
                           backend=smtp_tls_backend.address)
    context = ssl.create_default_context(cafile=tls_cert[0])
    context.check_hostname = False
    with smtplib.SMTP(*proxy.address, timeout=30) as smtp:
        smtp.ehlo()
        assert smtp.starttls(context=context)[0] == 220
        smtp.ehlo()
        smtp.send_message(mail('over tls'))
    assert len(received(smtp_tls_backend, 'over tls')) == 1
    assert 'raw bytes' not in proxy.log()     # announced: no warning
