"""Subscribers for the SNS end-to-end tests: HTTP endpoints on the loopback that record what
they are sent (one can be made to fail), a small SMTP server that records the mails it is
given, the check of an SNS signature against the certificate at SigningCertURL (with the
`rsa` package that awscli brings, and a DER walk to find the certificate's key), and the
agent's delivery log read from its database."""

import base64
import email
import http.server
import json
import socketserver
import sqlite3
import threading
import time
import urllib.request

import rsa


class Recorder:
    """What an endpoint was sent, safe to read from the test's thread."""

    def __init__(self):
        self.items = []
        self.cond = threading.Condition()

    def add(self, item):
        with self.cond:
            self.items.append(item)
            self.cond.notify_all()

    def wait_for(self, pred, timeout=20.0, what="a delivery"):
        """The first recorded item for which pred is true, waiting up to `timeout`."""
        end = time.monotonic() + timeout
        with self.cond:
            while True:
                for item in self.items:
                    if pred(item):
                        return item
                left = end - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no {what} within {timeout}s; got {self.items!r}")
                self.cond.wait(left)

    def count(self, pred):
        with self.cond:
            return sum(1 for i in self.items if pred(i))


class HttpEndpoint:
    """An HTTP server on 127.0.0.1 recording each POST as (path, headers, body); answers
    `status` (after `delay` seconds)."""

    def __init__(self, status=200, delay=0.0, port=0):
        self.status, self.delay = status, delay
        self.got = Recorder()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(n).decode()
                outer.got.add((self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                if outer.delay:
                    time.sleep(outer.delay)
                self.send_response(outer.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.server = Server(("127.0.0.1", port), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class SmtpServer:
    """A plain SMTP server on 127.0.0.1:`port` (RFC 5321's commands a client sends for one
    mail) recording each mail as (mail from, rcpt to list, email.message.Message)."""

    def __init__(self, port):
        self.got = Recorder()
        outer = self

        class Handler(socketserver.StreamRequestHandler):
            def reply(self, line):
                self.wfile.write((line + "\r\n").encode())

            def handle(self):
                self.reply("220 kec2-test ESMTP")
                sender, rcpts = None, []
                while True:
                    line = self.rfile.readline()
                    if not line:
                        return
                    cmd = line.decode(errors="replace").strip()
                    verb = cmd[:4].upper()
                    if verb == "EHLO":
                        self.reply("250-kec2-test")
                        self.reply("250 8BITMIME")
                    elif verb == "HELO":
                        self.reply("250 kec2-test")
                    elif verb == "MAIL":
                        sender, rcpts = cmd.split(":", 1)[1].strip(), []
                        self.reply("250 OK")
                    elif verb == "RCPT":
                        rcpts.append(cmd.split(":", 1)[1].strip())
                        self.reply("250 OK")
                    elif verb == "DATA":
                        self.reply("354 End data with <CR><LF>.<CR><LF>")
                        lines = []
                        while True:
                            l = self.rfile.readline()
                            if l in (b".\r\n", b".\n", b""):
                                break
                            lines.append(l[1:] if l.startswith(b"..") else l)
                        outer.got.add((sender, rcpts, email.message_from_bytes(b"".join(lines))))
                        self.reply("250 OK queued")
                    elif verb == "RSET":
                        sender, rcpts = None, []
                        self.reply("250 OK")
                    elif verb == "NOOP":
                        self.reply("250 OK")
                    elif verb == "QUIT":
                        self.reply("221 Bye")
                        return
                    else:
                        self.reply("502 Command not implemented")

        class Server(socketserver.ThreadingMixIn, socketserver.TCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.server = Server(("127.0.0.1", port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def mail_text(msg):
    """A mail's text, its transfer encoding undone."""
    return msg.get_payload(decode=True).decode()


def der_children(b):
    """The (tag, contents, whole encoding) of each DER element in `b`."""
    out, i = [], 0
    while i < len(b):
        start, tag, n = i, b[i], b[i + 1]
        i += 2
        if n & 0x80:
            k = n & 0x7F
            n = int.from_bytes(b[i:i + k], "big")
            i += k
        out.append((tag, b[i:i + n], b[start:i + n]))
        i += n
    return out


def certificate_key(pem):
    """The RSA public key of a PEM certificate, after checking that the certificate's own
    signature verifies with it (it is self-signed)."""
    body = "".join(l for l in pem.strip().splitlines() if not l.startswith("-----"))
    [(tag, cert, _)] = der_children(base64.b64decode(body))
    assert tag == 0x30, "a certificate is a SEQUENCE"
    (_, tbs, tbs_der), _alg, (_, sig_bits, _) = der_children(cert)
    fields = der_children(tbs)
    if fields[0][0] == 0xA0:  # [0] version
        fields = fields[1:]
    _serial, _sigalg, _issuer, _validity, _subject, (_, spki, _) = fields[:6]
    _alg, (_, key_bits, _) = der_children(spki)
    key = rsa.PublicKey.load_pkcs1(key_bits[1:], "DER")
    assert rsa.verify(tbs_der, sig_bits[1:], key) == "SHA-256"
    return key


SIGNED = {
    "Notification": ["Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"],
    "SubscriptionConfirmation": ["Message", "MessageId", "SubscribeURL", "Timestamp", "Token",
                                 "TopicArn", "Type"],
}


def verify_signature(doc):
    """Checks an SNS document's SignatureVersion 2 signature against the certificate its
    SigningCertURL serves (fetched without credentials)."""
    assert doc["SignatureVersion"] == "2", doc
    pem = urllib.request.urlopen(doc["SigningCertURL"], timeout=10).read().decode()
    key = certificate_key(pem)
    text = "".join(f"{f}\n{doc[f]}\n" for f in SIGNED[doc["Type"]] if f in doc)
    assert rsa.verify(text.encode(), base64.b64decode(doc["Signature"]), key) == "SHA-256"
    tampered = dict(doc, Message=doc["Message"] + "!")
    text = "".join(f"{f}\n{tampered[f]}\n" for f in SIGNED[doc["Type"]] if f in tampered)
    try:
        rsa.verify(text.encode(), base64.b64decode(doc["Signature"]), key)
    except rsa.VerificationError:
        pass
    else:
        raise AssertionError("a changed message still verifies")


def confirm_by_url(url):
    """GETs a SubscribeURL as a subscriber does: no credentials. Gives the response's text."""
    with urllib.request.urlopen(url, timeout=10) as r:
        assert r.status == 200, r.status
        return r.read().decode()


def delivery_log(state_dir, message_id):
    """The agent's delivery log for a message: (endpoint, attempt, outcome, detail) rows."""
    db = sqlite3.connect(f"file:{state_dir}/state.db?mode=ro", uri=True, timeout=10)
    try:
        return db.execute(
            "SELECT endpoint, attempt, outcome, detail FROM sns_delivery_log "
            "WHERE message_id = ? ORDER BY seq", (message_id,)).fetchall()
    finally:
        db.close()


def endpoint_log(state_dir, url):
    """The agent's delivery log for an endpoint: (attempt, outcome, detail) rows."""
    db = sqlite3.connect(f"file:{state_dir}/state.db?mode=ro", uri=True, timeout=10)
    try:
        return db.execute(
            "SELECT attempt, outcome, detail FROM sns_delivery_log WHERE endpoint = ? "
            "ORDER BY seq", (url,)).fetchall()
    finally:
        db.close()


def https_endpoint(workdir):
    """An HTTPS endpoint on 127.0.0.1 whose certificate is self-signed (made by the openssl
    command); gives its HttpEndpoint."""
    import ssl
    import subprocess
    key, cert = f"{workdir}/hook.key", f"{workdir}/hook.crt"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-keyout", key, "-out", cert],
                   check=True, capture_output=True)
    hook = HttpEndpoint()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    hook.server.socket = ctx.wrap_socket(hook.server.socket, server_side=True)
    hook.url = hook.url.replace("http://", "https://")
    return hook


def wait_for_log(state_dir, message_id, pred, timeout=30.0):
    """The delivery log of a message once `pred` holds of it (an attempt is logged after the
    endpoint answered, so after the endpoint saw it)."""
    end = time.monotonic() + timeout
    while True:
        rows = delivery_log(state_dir, message_id)
        if pred(rows):
            return rows
        if time.monotonic() > end:
            raise AssertionError(f"delivery log of {message_id} never as expected: {rows!r}")
        time.sleep(0.1)


def json_body(item):
    return json.loads(item[2])
