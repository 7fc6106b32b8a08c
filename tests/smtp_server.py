"""A real SMTP server for the tests (aiosmtpd from PyPI): STARTTLS required, AUTH required,
every accepted message stored in a Maildir. Prints "ready PORT" once it listens.

While a file MAILDIR.defer exists, every recipient is answered 451 (as a greylisting server
does); while MAILDIR.reject exists, 550 (no such user). Each refusal is appended to
MAILDIR.refused, one line per RCPT.

Usage: smtp_server.py MAILDIR CERT KEY USER PASSWORD
       smtp_server.py MAILDIR --plain      (no TLS, no AUTH: the benchmark's sink)
"""
import os
import signal
import socket
import ssl
import sys

from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Mailbox
from aiosmtpd.smtp import AuthResult, LoginPassword

maildir = sys.argv[1]
plain = sys.argv[2:3] == ["--plain"]
if not plain:
    cert, key, user, password = sys.argv[2:6]


def authenticate(server, session, envelope, mechanism, auth_data):
    ok = isinstance(auth_data, LoginPassword) and auth_data.login.decode() == user \
        and auth_data.password.decode() == password
    return AuthResult(success=ok)


class Mail(Mailbox):
    """The Maildir, behind refusals the test switches on and off with files."""

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        for flag, answer in (("defer", "451 4.7.1 Greylisted, try again later"),
                             ("reject", "550 5.1.1 No such user here")):
            if os.path.exists(f"{maildir}.{flag}"):
                with open(f"{maildir}.refused", "a") as log:
                    log.write(f"{answer}\n")
                return answer
        envelope.rcpt_tos.append(address)
        return "250 OK"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


if plain:
    controller = Controller(Mail(maildir), hostname="127.0.0.1", port=free_port())
else:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    controller = Controller(
        Mail(maildir), hostname="127.0.0.1", port=free_port(), tls_context=context,
        require_starttls=True, authenticator=authenticate, auth_required=True,
        auth_require_tls=True,
    )
controller.start()
print(f"ready {controller.port}", flush=True)
signal.sigwait([signal.SIGTERM, signal.SIGINT])
controller.stop()
