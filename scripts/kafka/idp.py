#!/usr/bin/env python3
"""A minimal stand-in OAuth 2.0 identity provider for the Kafka OAUTHBEARER tests (scripts/kafka.sh starts it).

Python standard library plus the `openssl` command; serves on 127.0.0.1 only.

  python3 scripts/kafka/idp.py --port P --dir D [--secret S] [--lifetime CLIENT=SECONDS ...]

Files in D: idp-key.pem (RSA 2048, made once, reused on a restart), idp.pid (written once the port is bound),
idp.log (one line a request: method, path without query, status, client id; never a secret or a token).

  GET  /jwks   {"keys":[{"kty":"RSA","kid":"kc1","use":"sig","alg":"RS256","n":...,"e":"AQAB"}]}
  POST /token  client_credentials grant, form-encoded; client authentication by HTTP Basic (client_secret_basic,
               id and secret raw or URL-encoded) or by the form fields client_id/client_secret (client_secret_post).
               200 {"access_token":JWT,"token_type":"Bearer","expires_in":N[,"scope":...]}
               JWT: header {"alg":"RS256","typ":"JWT","kid":"kc1"}; claims iss=http://127.0.0.1:P, sub=client_id=
               the client id, aud=the `audience` form field or else kc-kafka, iat, exp, jti, scope if asked for.
               401 {"error":"invalid_client","error_description":...}   unknown client, wrong or missing secret
               400 {"error":"unsupported_grant_type",...}               grant_type other than client_credentials
               400 {"error":"invalid_request","error_description":...}  no grant_type, repeated field, bad body
  anything else: 404 (text/html) for another path, 405 for another method on /jwks or /token.

Clients (all three share the secret, default DEFAULT_SECRET, --secret to change it):
  kc-client    tokens valid 300 s
  kc-short     tokens valid 15 s (token refresh and re-authentication tests)
  kc-noaccess  answers 200 with a JSON body that has no access_token
"""

import argparse
import base64
import binascii
import errno
import hmac
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, unquote_plus

KID = "kc1"
DEFAULT_AUDIENCE = "kc-kafka"
DEFAULT_SECRET = "kc-client-secret-7f3a9c2e5b"
# client id -> (token lifetime in seconds, whether the answer carries an access_token)
CLIENTS = {
    "kc-client": (300, True),
    "kc-short": (15, True),
    "kc-noaccess": (300, False),
}
MAX_BODY = 64 * 1024


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def ensure_key(path):
    if not os.path.exists(path):
        tmp = "%s.tmp.%d" % (path, os.getpid())
        old = os.umask(0o077)
        try:
            subprocess.run(["openssl", "genrsa", "-out", tmp, "2048"], check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        finally:
            os.umask(old)
        os.replace(tmp, path)
    out = subprocess.run(["openssl", "rsa", "-in", path, "-noout", "-modulus"], check=True,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE).stdout.decode().strip()
    if not out.startswith("Modulus="):
        raise RuntimeError("unexpected `openssl rsa -modulus` output")
    n = binascii.unhexlify(out[len("Modulus="):])
    # `openssl genrsa` uses the public exponent 65537 (F4).
    return {"kty": "RSA", "kid": KID, "use": "sig", "alg": "RS256", "n": b64url(n), "e": "AQAB"}


class Idp:
    def __init__(self, port, directory, secret, lifetimes):
        self.issuer = "http://127.0.0.1:%d" % port
        self.key = os.path.join(directory, "idp-key.pem")
        self.jwk = ensure_key(self.key)
        self.jwks_body = json.dumps({"keys": [self.jwk]}).encode()
        self.secret = secret
        self.lifetimes = lifetimes
        self.log_path = os.path.join(directory, "idp.log")
        self.log_lock = threading.Lock()

    def log(self, line):
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
        with self.log_lock:
            try:
                with open(self.log_path, "a") as f:
                    f.write("[%s] %s\n" % (stamp, line))
            except OSError:
                pass

    def sign(self, claims):
        header = b64url(json.dumps({"alg": "RS256", "typ": "JWT", "kid": KID}, separators=(",", ":")).encode())
        payload = b64url(json.dumps(claims, separators=(",", ":")).encode())
        signing_input = ("%s.%s" % (header, payload)).encode("ascii")
        sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", self.key], input=signing_input, check=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE).stdout
        return "%s.%s" % (signing_input.decode("ascii"), b64url(sig))

    def check_client(self, client_id, secret):
        """True when client_id is known and secret is its secret."""
        if client_id not in CLIENTS or secret is None:
            return False
        return hmac.compare_digest(secret.encode("utf-8", "surrogateescape"), self.secret.encode())


def printable(text, limit):
    return "".join(c if c.isprintable() and c != " " else "?" for c in str(text)[:limit])


class OAuthError(Exception):
    def __init__(self, status, error, description):
        super().__init__(description)
        self.status, self.error, self.description = status, error, description


def basic_credentials(header):
    """(id, secret) candidates from an Authorization: Basic header: raw, then URL-decoded (RFC 6749 2.3.1)."""
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "basic":
        raise OAuthError(401, "invalid_client", "unsupported Authorization scheme, use Basic")
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        raise OAuthError(401, "invalid_client", "malformed Basic credentials")
    if ":" not in decoded:
        raise OAuthError(401, "invalid_client", "malformed Basic credentials")
    cid, _, secret = decoded.partition(":")
    candidates = [(cid, secret)]
    try:
        unq = (unquote_plus(cid, errors="strict"), unquote_plus(secret, errors="strict"))
        if unq != (cid, secret):
            candidates.append(unq)
    except UnicodeDecodeError:
        pass
    return candidates


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "kc-idp"
    sys_version = ""
    timeout = 15
    idp = None  # set in main()

    # --- logging: never the query string, the body or a header value ---
    def log_request(self, code="-", size="-"):
        pass

    def log_error(self, format, *args):
        pass

    def log_message(self, format, *args):
        pass

    def note(self, status, client=None):
        path = (getattr(self, "path", "") or "").split("?", 1)[0]
        method = getattr(self, "command", "") or ""
        self.idp.log("%s %s %s %s%s" % (self.client_address[0], printable(method, 16), printable(path, 200), status,
                                        " client=%s" % printable(client, 64) if client else ""))

    def send_error(self, code, message=None, explain=None):
        # Malformed request lines and unknown methods end up here (BaseHTTPRequestHandler); answer and log briefly.
        self.close_connection = True
        self.reply(code, b"<html><body>%d</body></html>\n" % code, "text/html")
        self.note(code)

    def reply(self, status, body, ctype, extra=()):
        try:
            self.send_response_only(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.send_header("Pragma", "no-cache")
            for k, v in extra:
                self.send_header(k, v)
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
        except OSError:
            self.close_connection = True

    def json_reply(self, status, obj, extra=()):
        self.reply(status, json.dumps(obj).encode(), "application/json", extra)

    def not_found(self):
        self.reply(404, b"<html><body><h1>404 Not Found</h1></body></html>\n", "text/html")
        self.note(404)

    def route(self):
        try:
            path = self.path.split("?", 1)[0]
            if path == "/jwks":
                if self.command in ("GET", "HEAD"):
                    self.reply(200, self.idp.jwks_body, "application/json")
                    self.note(200)
                else:
                    self.discard_body()
                    self.reply(405, b"<html><body>405</body></html>\n", "text/html", [("Allow", "GET")])
                    self.note(405)
            elif path == "/token":
                if self.command == "POST":
                    self.token()
                else:
                    self.discard_body()
                    self.reply(405, b"<html><body>405</body></html>\n", "text/html", [("Allow", "POST")])
                    self.note(405)
            else:
                self.discard_body()
                self.not_found()
        except Exception as e:  # never let a request take the server down
            self.close_connection = True
            self.json_reply(500, {"error": "server_error"})
            self.note(500)
            self.idp.log("internal error: %s" % type(e).__name__)

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = route

    def read_body(self):
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            self.close_connection = True
            raise OAuthError(400, "invalid_request", "chunked request bodies are not supported")
        raw = self.headers.get("Content-Length")
        if raw is None:
            return b""
        try:
            length = int(raw)
        except ValueError:
            self.close_connection = True
            raise OAuthError(400, "invalid_request", "bad Content-Length")
        if length < 0 or length > MAX_BODY:
            self.close_connection = True
            raise OAuthError(400, "invalid_request", "request body too large")
        data = b""
        while len(data) < length:
            chunk = self.rfile.read(length - len(data))
            if not chunk:
                self.close_connection = True
                raise OAuthError(400, "invalid_request", "truncated request body")
            data += chunk
        return data

    def discard_body(self):
        try:
            self.read_body()
        except OAuthError:
            self.close_connection = True

    def token(self):
        client = None
        try:
            body = self.read_body()
            ctype = (self.headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()
            if ctype != "application/x-www-form-urlencoded":
                raise OAuthError(400, "invalid_request", "use Content-Type application/x-www-form-urlencoded")
            try:
                form = parse_qs(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False,
                                errors="strict")
            except (UnicodeDecodeError, ValueError):
                raise OAuthError(400, "invalid_request", "malformed form body")
            for k, v in form.items():
                if len(v) > 1:
                    raise OAuthError(400, "invalid_request", "parameter %s repeated" % k[:40])
            field = {k: v[0] for k, v in form.items()}

            auth = self.headers.get("Authorization")
            if auth is not None:
                candidates = basic_credentials(auth)
                client = candidates[0][0]
                if "client_id" in field and field["client_id"] not in (c for c, _ in candidates):
                    raise OAuthError(401, "invalid_client", "client_id does not match the Basic credentials")
                if "client_secret" in field:
                    raise OAuthError(400, "invalid_request", "more than one client authentication method")
                ok = [c for c, s in candidates if self.idp.check_client(c, s)]
                if not ok:
                    raise OAuthError(401, "invalid_client", "unknown client or wrong secret")
                client = ok[0]
            elif "client_id" in field:
                client = field["client_id"]
                if not self.idp.check_client(client, field.get("client_secret")):
                    raise OAuthError(401, "invalid_client", "unknown client or wrong secret")
            else:
                raise OAuthError(401, "invalid_client", "client authentication required (Basic or client_id)")

            grant = field.get("grant_type")
            if grant is None:
                raise OAuthError(400, "invalid_request", "grant_type is required")
            if grant != "client_credentials":
                raise OAuthError(400, "unsupported_grant_type", "only client_credentials is supported")

            default_lifetime, gives_token = CLIENTS[client]
            lifetime = self.idp.lifetimes.get(client, default_lifetime)
            now = int(time.time())
            answer = {"token_type": "Bearer", "expires_in": lifetime}
            if "scope" in field:
                answer["scope"] = field["scope"]
            if gives_token:
                claims = {
                    "iss": self.idp.issuer,
                    "sub": client,
                    "client_id": client,
                    "aud": field.get("audience") or DEFAULT_AUDIENCE,
                    "iat": now,
                    "exp": now + lifetime,
                    "jti": uuid.uuid4().hex,
                }
                if "scope" in field:
                    claims["scope"] = field["scope"]
                answer = dict({"access_token": self.idp.sign(claims)}, **answer)
            self.json_reply(200, answer)
            self.note(200, client)
        except OAuthError as e:
            extra = [("WWW-Authenticate", 'Basic realm="kc-idp"')] if e.status == 401 else []
            self.json_reply(e.status, {"error": e.error, "error_description": e.description}, extra)
            self.note("%d %s" % (e.status, e.error), client)


def main():
    ap = argparse.ArgumentParser(description="stand-in OAuth 2.0 identity provider on 127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--dir", required=True, help="folder for the key, the pid file and the log")
    ap.add_argument("--secret", default=os.environ.get("KC_IDP_CLIENT_SECRET", DEFAULT_SECRET),
                    help="the secret of every client (default: $KC_IDP_CLIENT_SECRET or a built-in value)")
    ap.add_argument("--lifetime", action="append", default=[], metavar="CLIENT=SECONDS",
                    help="override a client's token lifetime")
    args = ap.parse_args()

    lifetimes = {}
    for item in args.lifetime:
        cid, _, secs = item.partition("=")
        if cid not in CLIENTS or not secs.isdigit() or int(secs) <= 0:
            ap.error("--lifetime wants CLIENT=SECONDS with CLIENT one of %s" % ", ".join(CLIENTS))
        lifetimes[cid] = int(secs)

    os.makedirs(args.dir, exist_ok=True)
    Handler.idp = Idp(args.port, args.dir, args.secret, lifetimes)

    ThreadingHTTPServer.daemon_threads = True
    ThreadingHTTPServer.allow_reuse_address = True
    try:
        server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    except OSError as e:
        if e.errno == errno.EADDRINUSE:
            print("idp: 127.0.0.1:%d: Address already in use" % args.port, file=sys.stderr)
            sys.exit(2)
        raise
    pid_path = os.path.join(args.dir, "idp.pid")
    with open(pid_path + ".tmp", "w") as f:
        f.write("%d\n" % os.getpid())
    os.replace(pid_path + ".tmp", pid_path)
    Handler.idp.log("listening on %s (pid %d)" % (Handler.idp.issuer, os.getpid()))
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
