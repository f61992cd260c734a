"""Keys, tokens and configurations for the token tests (test_auth.py).

Keys are generated fresh for each test session with python3-cryptography;
tokens are minted with PyJWT (python3-jwt), or by hand where PyJWT refuses
to make them (alg: none, HMAC keyed with a public key).
"""

import base64
import hashlib
import hmac
import json
import os
import secrets
import time
from pathlib import Path

import jwt  # PyJWT, Debian python3-jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

ISSUER = "https://platform.example"
AUDIENCE = "talas"


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _pem_pair(private_key):
    priv = private_key.private_bytes(serialization.Encoding.PEM,
                                     serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption())
    pub = private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return priv, pub


class Keys:
    """Every key the tests use, written as files into directory D."""

    def __init__(self, d):
        self.dir = Path(d)
        self.dir.mkdir(parents=True, exist_ok=True)
        # HMAC secrets as long as their hash, as RFC 7518 3.2 asks
        self.secret = {
            "HS256": secrets.token_urlsafe(32).encode(),
            "HS256_old": secrets.token_urlsafe(32).encode(),
            "HS384": secrets.token_urlsafe(48).encode(),
            "HS512": secrets.token_urlsafe(64).encode(),
        }
        self.rsa_priv, self.rsa_pub = _pem_pair(rsa.generate_private_key(65537, 2048))
        self.ec_priv, self.ec_pub = _pem_pair(ec.generate_private_key(ec.SECP256R1()))
        self.other_rsa_priv, _ = _pem_pair(rsa.generate_private_key(65537, 2048))
        self.backend_key = secrets.token_urlsafe(32)
        self.files = {}
        for name, data in self.secret.items():
            # written the way an operator would: echo SECRET > file
            self.files[name] = self._write(f"{name.lower()}.secret", data + b"\n")
        self.files["rsa_priv"] = self._write("rsa.key", self.rsa_priv)
        self.files["rsa_pub"] = self._write("rsa.pub", self.rsa_pub)
        self.files["ec_priv"] = self._write("ec.key", self.ec_priv)
        self.files["ec_pub"] = self._write("ec.pub", self.ec_pub)
        self.files["other_rsa_priv"] = self._write("other_rsa.key", self.other_rsa_priv)
        self.files["backend"] = self._write("backend.key", self.backend_key.encode() + b"\n")

    def _write(self, name, data):
        p = self.dir / name
        p.write_bytes(data)
        os.chmod(p, 0o600)
        return p

    def signing_key(self, alg, which=None):
        if alg.startswith("HS"):
            return self.secret[which or alg]
        return {"RS256": self.rsa_priv, "ES256": self.ec_priv}[alg]

    def verify_key(self, alg, which=None):
        if alg.startswith("HS"):
            return self.secret[which or alg]
        return {"RS256": self.rsa_pub, "ES256": self.ec_pub}[alg]


def claims(track, ttl=300, scope=None, **extra):
    """The claims of a media token for TRACK, valid for TTL seconds."""
    c = {"exp": int(time.time()) + ttl, "track": track, "iss": ISSUER, "aud": AUDIENCE}
    if scope is not None:
        c["scope"] = scope
    c.update(extra)
    return {k: v for k, v in c.items() if v is not None}


def pyjwt_token(keys, alg, payload, kid=None, which=None, key=None):
    headers = {"kid": kid} if kid else None
    return jwt.encode(payload, key if key is not None else keys.signing_key(alg, which),
                      algorithm=alg, headers=headers)


def hand_token(header, payload, secret=None, signature=None):
    """A token built by hand: HS256 over SECRET (any bytes, a PEM too), the
    given SIGNATURE bytes, or none at all."""
    signing_input = (b64url(json.dumps(header, separators=(",", ":")).encode()) + "."
                     + b64url(json.dumps(payload, separators=(",", ":")).encode()))
    if secret is not None:
        signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + (b64url(signature) if signature else "")


def auth_yaml(keys, required=True, main="HS256", kid="k2", extra_keys=True,
              issuer=ISSUER, audience=AUDIENCE, leeway="0s", max_ttl="1h",
              backend=True, extra=""):
    """An auth: section. MAIN is the main key's algorithm; HS256 uses the
    "new" secret. EXTRA_KEYS adds the old HS256 secret (kid k1) and one key
    per other algorithm (kids rs, es, h384, h512) for rotation and interop."""
    q = json.dumps
    lines = ["auth:", f"  required: {'true' if required else 'false'}", f"  algorithm: {main}"]
    if kid:
        lines.append(f"  kid: {q(kid)}")
    if main.startswith("HS"):
        lines.append(f"  secret_file: {q(str(keys.files[main]))}")
    elif main == "RS256":
        lines += [f"  public_key_file: {q(str(keys.files['rsa_pub']))}",
                  f"  private_key_file: {q(str(keys.files['rsa_priv']))}"]
    else:
        lines += [f"  public_key_file: {q(str(keys.files['ec_pub']))}",
                  f"  private_key_file: {q(str(keys.files['ec_priv']))}"]
    if extra_keys:
        lines += [
            "  keys:",
            f"    - {{kid: k1, algorithm: HS256, secret_file: {q(str(keys.files['HS256_old']))}}}",
            f"    - {{kid: rs, algorithm: RS256, public_key_file: {q(str(keys.files['rsa_pub']))}}}",
            f"    - {{kid: es, algorithm: ES256, public_key_file: {q(str(keys.files['ec_pub']))}}}",
            f"    - {{kid: h384, algorithm: HS384, secret_file: {q(str(keys.files['HS384']))}}}",
            f"    - {{kid: h512, algorithm: HS512, secret_file: {q(str(keys.files['HS512']))}}}",
        ]
    if backend:
        lines.append(f"  backend_key_file: {q(str(keys.files['backend']))}")
    if issuer:
        lines.append(f"  issuer: {q(issuer)}")
    if audience:
        lines.append(f"  audience: {q(audience)}")
    lines += [f"  leeway: {leeway}", "  default_ttl: 5m", f"  max_ttl: {max_ttl}"]
    text = "\n".join(lines) + "\n"
    return text + extra


def config_with_auth(srv, auth_section):
    """SRV's generated configuration with its auth: section replaced."""
    text = srv.config_text()
    default = "auth:\n  required: false\n"
    assert default in text
    return text.replace(default, auth_section)


def configure(srv, keys, extra="", **auth):
    """Writes SRV's configuration: the auth section of KEYS (auth_yaml's
    AUTH arguments, its extra keys off), then EXTRA; sets srv.keys and
    srv.backend (the headers of a request made with the backend key)."""
    srv.write_config(text=config_with_auth(srv, auth_yaml(keys, extra_keys=False, **auth)) + extra)
    srv.keys = keys
    srv.backend = {"Authorization": f"Bearer {keys.backend_key}"}


def tracks_by_title(srv):
    """SRV's tracks by title, as GET /api/tracks lists them to the backend
    key (srv.backend, set by configure)."""
    st, _, body = srv.get("/api/tracks?limit=100", headers=srv.backend)
    assert st == 200, body
    return {t["title"]: t for t in json.loads(body)["tracks"]}
