"""A local Web Push service for the tests, as browsers' push services behave (RFC 8030): it hands
out subscriptions like a browser would (a fresh P-256 key pair and auth secret each), and for every
push it checks the VAPID token (RFC 8292: ES256 signature by the key in `k`, audience = this
origin, expiry within 24 h) and decrypts the body with the subscription's private key (RFC 8291,
through Mozilla's http_ece). A good push is answered 201 and recorded; a push to a subscription
made "gone" is answered 410; anything that fails a check is answered 400 or 401 and recorded with
the reason. Prints "ready PORT" once it listens.

GET  /new[?gone=1]   a subscription, as PushSubscription.toJSON() gives it
POST /push/ID        a push message
GET  /received       what arrived, as a JSON list
"""
import base64
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import http_ece
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature


def b64d(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def b64e(data):
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


subscriptions = {}
received = []
lock = threading.Lock()


def check_vapid(header, origin):
    """The reason the Authorization header is wrong, or None and the key and claims."""
    if not header.startswith("vapid "):
        return "Authorization is not 'vapid t=…, k=…'", None
    params = dict(part.strip().split("=", 1) for part in header[6:].split(","))
    token, key = params.get("t", ""), params.get("k", "")
    try:
        public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b64d(key))
        head, claims, signature = token.split(".")
        if json.loads(b64d(head)).get("alg") != "ES256":
            return "the JWT is not ES256", None
        raw = b64d(signature)
        der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
        public.verify(der, f"{head}.{claims}".encode(), ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError) as e:
        return f"the VAPID signature does not verify: {e!r}", None
    claims = json.loads(b64d(claims))
    if claims.get("aud") != origin:
        return f"aud {claims.get('aud')!r} is not {origin!r}", None
    if not time.time() < claims.get("exp", 0) <= time.time() + 24 * 3600:
        return "exp is not within the next 24 hours", None
    if not str(claims.get("sub", "")).startswith(("mailto:", "https:", "http:")):
        return "sub is not a mailto: or http(s): URL", None
    return None, (key, claims)


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def answer(self, status, body=b"", kind="application/json"):
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path.startswith("/new"):
            private = ec.generate_private_key(ec.SECP256R1())
            public = private.public_key().public_bytes(
                serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
            auth = os.urandom(16)
            with lock:
                n = len(subscriptions) + 1
                subscriptions[str(n)] = (private, auth, "gone=1" in self.path)
            port = self.server.server_address[1]
            sub = {"endpoint": f"http://127.0.0.1:{port}/push/{n}",
                   "keys": {"p256dh": b64e(public), "auth": b64e(auth)}}
            return self.answer(200, json.dumps(sub).encode())
        if self.path == "/received":
            with lock:
                return self.answer(200, json.dumps(received).encode())
        self.answer(404)

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        sid = self.path.rsplit("/", 1)[-1]
        with lock:
            sub = subscriptions.get(sid)
        if sub is None or not self.path.startswith("/push/"):
            return self.answer(404)
        private, auth, gone = sub
        if gone:
            return self.answer(410)
        record = {"subscription": sid, "urgency": self.headers.get("Urgency"),
                  "ttl": self.headers.get("TTL"), "topic": self.headers.get("Topic")}
        origin = f"http://127.0.0.1:{self.server.server_address[1]}"
        problem, vapid = check_vapid(self.headers.get("Authorization", ""), origin)
        if problem is None and self.headers.get("Content-Encoding") != "aes128gcm":
            problem = "Content-Encoding is not aes128gcm"
        if problem is None and self.headers.get("TTL") is None:
            problem = "no TTL header"
        if problem is None:
            try:
                plain = http_ece.decrypt(body, private_key=private, auth_secret=auth,
                                         version="aes128gcm")
                record["payload"] = json.loads(plain)
                record["vapid_key"], record["claims"] = vapid
            except Exception as e:  # anything that does not decrypt is the sender's fault
                problem = f"the body does not decrypt: {e!r}"
        record["problem"] = problem
        with lock:
            received.append(record)
        self.answer(201 if problem is None else 400)


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(f"ready {server.server_address[1]}", flush=True)
try:
    server.serve_forever()
except KeyboardInterrupt:
    sys.exit(0)
