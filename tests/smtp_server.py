"""A real SMTP server for the tests (aiosmtpd from PyPI): STARTTLS required, AUTH required,
every accepted message stored in a Maildir. Prints "ready PORT" once it listens.

Usage: smtp_server.py MAILDIR CERT KEY USER PASSWORD
       smtp_server.py MAILDIR --plain      (no TLS, no AUTH: the benchmark's sink)
"""
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


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


if plain:
    controller = Controller(Mailbox(maildir), hostname="127.0.0.1", port=free_port())
else:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    controller = Controller(
        Mailbox(maildir), hostname="127.0.0.1", port=free_port(), tls_context=context,
        require_starttls=True, authenticator=authenticate, auth_required=True,
        auth_require_tls=True,
    )
controller.start()
print(f"ready {controller.port}", flush=True)
signal.sigwait([signal.SIGTERM, signal.SIGINT])
controller.stop()
