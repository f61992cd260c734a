"""talasctl sign: signed media URLs minted from the command line.

One server (module scope) runs with auth.required: true, an HS256 main key
(kid k2) read from a secret_file, iss/aud configured, default_ttl 5m and
max_ttl 1h (auth_keys.auth_yaml). talasctl reads the same configuration,
so the URLs it prints must open the running server's media routes, and
their tokens must decode with PyJWT and the same secret.

The refusals (unknown track, lifetime over auth.max_ttl, a key that can
only verify, bad usage) must exit non-zero and print no URL.
"""

import base64
import calendar
import hashlib
import json
import os
import re
import time
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest

import auth_keys as ak
import talas_fixtures as tf


MAX_TTL = 3600  # ak.auth_yaml(max_ttl="1h")
DEFAULT_TTL = 300  # ak.auth_yaml: default_ttl: 5m
RFC3339 = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"


# ------------------------------------------------------------------ fixtures

@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    return ak.Keys(tmp_path_factory.mktemp("signkeys"))


@pytest.fixture(scope="module")
def signlib(tmp_path_factory):
    d = tmp_path_factory.mktemp("signlib")
    files = {
        "A": tf.make_track(d / "a.mp3", "Sign A", seconds=3, freq=310),
        "B": tf.make_track(d / "b.ogg", "Sign B", seconds=3, freq=410),
        "bad": d / "broken.mp3",
    }
    files["bad"].write_text("not audio at all\n" * 40)
    # a file whose track id begins with "-" (one id in 64 does): talasctl
    # must take it as an id, not as options
    real = os.path.realpath(d)
    for n in range(100000):
        name = f"dash{n}.mp3"
        # the id: the library's name (its folder's base name) and the path below it
        tid = base64.urlsafe_b64encode(
            hashlib.sha256(f"{os.path.basename(real)}/{name}".encode()).digest()[:12]).decode()
        if tid.startswith("-"):
            files["dash"] = tf.make_track(d / name, "Sign Dash", seconds=2, freq=510)
            break
    return d, files


def auth_section(keys, **kw):
    kw.setdefault("extra_keys", False)
    kw.setdefault("backend", False)
    return ak.auth_yaml(keys, **kw)


@pytest.fixture(scope="module")
def ssrv(tmp_path_factory, keys, signlib):
    d, files = signlib
    srv = tf.TalasServer(tmp_path_factory.mktemp("signsrv"), [d], workers=2)
    srv.write_config(text=ak.config_with_auth(srv, auth_section(keys)))
    srv.start(wait_scan=True)
    try:
        ids = {t["title"]: t["id"] for t in srv.tracks()}
        srv.ids = {"A": ids["Sign A"], "B": ids["Sign B"], "dash": ids["Sign Dash"]}
        srv.files = files
        yield srv
    finally:
        srv.kill()


def bad_id(srv):
    """The id of the file that failed to probe, from talasctl tracks --errors."""
    cp = srv.talasctl("tracks", "--errors")
    assert cp.returncode == 0, cp.stderr
    rows = [l.split("\t") for l in cp.stdout.splitlines() if "broken.mp3" in l]
    assert len(rows) == 1, cp.stdout
    return rows[0][0]


def sign(srv, *args):
    return srv.talasctl("sign", *args)


def signed(srv, *args):
    """Runs sign, checks its output; returns (url, token, expires epoch)."""
    cp = sign(srv, *args)
    assert cp.returncode == 0, f"exit {cp.returncode}: {cp.stderr}"
    lines = cp.stdout.splitlines()
    assert len(lines) == 1, f"stdout is not one URL: {cp.stdout!r}"
    url = lines[0]
    m = re.search(rf"^expires: ({RFC3339})$", cp.stderr, re.M)
    assert m, f"no 'expires: <RFC 3339>' on stderr: {cp.stderr!r}"
    expires = calendar.timegm(time.strptime(m.group(1), "%Y-%m-%dT%H:%M:%SZ"))
    q = parse_qs(urlsplit(url).query)
    assert list(q) == ["token"] and len(q["token"]) == 1, url
    return url, q["token"][0], expires


def decode(keys, token):
    return jwt.decode(token, keys.secret["HS256"], algorithms=["HS256"],
                      audience=ak.AUDIENCE, issuer=ak.ISSUER)


def path_of(url):
    u = urlsplit(url)
    return u.path + "?" + u.query


# ------------------------------------------------------------ the happy path

def test_sign_url_streams_the_track(ssrv, keys):
    a = ssrv.ids["A"]
    # auth.required is on: without a token the stream is refused
    st, _, _ = ssrv.get(f"/stream/{a}")
    assert st == 401, st
    url, token, _ = signed(ssrv, a)
    assert url.startswith(f"{ssrv.base_url}/stream/{a}?token="), url
    st, hdrs, body = ssrv.get(path_of(url))
    assert st == 200, (st, body[:300])
    assert body == ssrv.files["A"].read_bytes()
    # the token is for A only
    st, _, _ = ssrv.get(f"/stream/{ssrv.ids['B']}?token={token}")
    assert st == 403, st


def test_sign_an_id_beginning_with_a_dash(ssrv, keys):
    dash = ssrv.ids["dash"]
    assert dash.startswith("-"), dash
    # as copied from "talasctl tracks", with options before and after it
    url, token, _ = signed(ssrv, dash, "--ttl", "60")
    assert decode(keys, token)["track"] == dash
    st, _, body = ssrv.get(path_of(url))
    assert st == 200 and body == ssrv.files["dash"].read_bytes()
    url, token, _ = signed(ssrv, "--kind", "preview", dash)
    assert decode(keys, token)["scope"] == "preview"
    cp = ssrv.talasctl("cache", "purge", dash)
    assert cp.returncode == 0, cp.stderr


def test_sign_token_claims(ssrv, keys):
    a = ssrv.ids["A"]
    before = int(time.time())
    _, token, expires = signed(ssrv, a)
    after = int(time.time())
    claims = decode(keys, token)
    assert claims["track"] == a
    assert claims["scope"] == "stream"
    assert "sub" not in claims
    assert jwt.get_unverified_header(token).get("kid") == "k2"
    # no --ttl: auth.default_ttl
    assert before + DEFAULT_TTL <= claims["exp"] <= after + DEFAULT_TTL, claims
    assert claims["exp"] == expires


def test_sign_ttl(ssrv, keys):
    before = int(time.time())
    _, token, expires = signed(ssrv, ssrv.ids["B"], "--ttl", "60")
    after = int(time.time())
    exp = decode(keys, token)["exp"]
    assert before + 60 <= exp <= after + 60, (before, exp, after)
    assert exp == expires
    # --ttl 0 is the default lifetime; the option may come first, or as --ttl=N
    _, token, _ = signed(ssrv, "--ttl=0", ssrv.ids["B"])
    assert decode(keys, token)["exp"] >= before + DEFAULT_TTL
    # exactly auth.max_ttl is allowed
    _, token, _ = signed(ssrv, ssrv.ids["B"], "--ttl", str(MAX_TTL))
    assert decode(keys, token)["exp"] >= before + MAX_TTL


def test_sign_preview(ssrv, keys):
    a = ssrv.ids["A"]
    url, token, _ = signed(ssrv, a, "--kind", "preview")
    assert url.startswith(f"{ssrv.base_url}/preview/{a}?token="), url
    claims = decode(keys, token)
    assert claims["scope"] == "preview"
    assert claims["track"] == a
    # a preview token does not open the full stream
    st, _, _ = ssrv.get(f"/stream/{a}?token={token}")
    assert st == 403, st


def test_sign_hls_and_user(ssrv, keys):
    a = ssrv.ids["A"]
    url, token, _ = signed(ssrv, a, "--kind", "hls", "--user", "alice@example")
    assert url.startswith(f"{ssrv.base_url}/hls/{a}/master.m3u8?token="), url
    claims = decode(keys, token)
    assert claims["scope"] == "hls"
    assert claims["sub"] == "alice@example"
    assert claims["track"] == a


def test_sign_json(ssrv, keys):
    """--json (before or after the command): one JSON document on stdout
    with the URL and its expiry, nothing else on stderr."""
    a = ssrv.ids["A"]
    for argv in (("--json", "sign", a, "--kind", "hls", "--user", "bob"),
                 ("sign", a, "--kind", "hls", "--user", "bob", "--json")):
        cp = ssrv.talasctl(*argv)
        assert cp.returncode == 0, cp.stderr
        assert cp.stderr == "", cp.stderr
        lines = cp.stdout.splitlines()
        assert len(lines) == 1, cp.stdout
        doc = json.loads(lines[0])
        # the names and formats of POST /api/stream-url's answer
        assert set(doc) == {"url_signed", "expires_at", "track_id", "kind", "user"}, doc
        assert doc["url_signed"].startswith(f"{ssrv.base_url}/hls/{a}/master.m3u8?token="), doc
        assert (doc["track_id"], doc["kind"], doc["user"]) == (a, "hls", "bob"), doc
        claims = decode(keys, parse_qs(urlsplit(doc["url_signed"]).query)["token"][0])
        assert (claims["scope"], claims["sub"], claims["track"]) == ("hls", "bob", a)
        assert re.fullmatch(RFC3339, doc["expires_at"]), doc
        assert calendar.timegm(time.strptime(doc["expires_at"], "%Y-%m-%dT%H:%M:%SZ")) == claims["exp"]
    doc = json.loads(ssrv.talasctl("--json", "sign", a).stdout)
    assert doc["kind"] == "stream" and doc["user"] is None, doc
    # errors stay messages on stderr, with the exit code of the text mode
    cp = ssrv.talasctl("--json", "sign", "AAAAAAAAAAAAAAAA")
    assert cp.returncode == 1 and cp.stdout == "" and "no such track" in cp.stderr, cp


def test_sign_works_without_auth_required(tmp_path, keys, signlib):
    """URLs can be prepared before auth.required is switched on, with the
    master stopped."""
    d, files = signlib
    srv = tf.TalasServer(tmp_path / "off", [d])
    srv.write_config(text=ak.config_with_auth(srv, auth_section(keys, required=False)))
    cp = srv.talasctl("scan", timeout=120)
    assert cp.returncode == 0, cp.stderr
    rows = [l.split("\t") for l in srv.talasctl("tracks").stdout.splitlines()]
    ids = {r[3]: r[0] for r in rows}
    _, token, _ = signed(srv, ids["Sign A"])
    assert decode(keys, token)["track"] == ids["Sign A"]


# --------------------------------------------------------------- refusals

def assert_refused(cp, code, pattern):
    out = cp.stdout + cp.stderr
    assert cp.returncode == code, f"exit {cp.returncode}, expected {code}: {out}"
    assert "token=" not in cp.stdout, cp.stdout
    assert re.search(pattern, cp.stderr, re.I), cp.stderr


def test_sign_unknown_track(ssrv):
    assert_refused(sign(ssrv, "AAAAAAAAAAAAAAAA"), 1, r"no such track")
    assert_refused(sign(ssrv, "not-an-id"), 1, r"no such track")
    # a file that failed to probe is in the catalog but is not a track
    assert_refused(sign(ssrv, bad_id(ssrv)), 1, r"no such track")


def test_sign_ttl_over_max(ssrv):
    assert_refused(sign(ssrv, ssrv.ids["A"], "--ttl", str(MAX_TTL + 1)), 1, r"max_ttl")
    assert_refused(sign(ssrv, ssrv.ids["A"], "--ttl", "999999999"), 1, r"max_ttl")


def test_sign_without_a_signing_key(tmp_path, keys, signlib, ssrv):
    d, _ = signlib
    a = ssrv.ids["A"]
    srv = tf.TalasServer(tmp_path / "pub", [d])
    q = '"{}"'.format
    # RS256 with only the public key: tokens can be verified, not minted
    section = ("auth:\n  required: true\n  algorithm: RS256\n"
               f"  public_key_file: {q(keys.files['rsa_pub'])}\n")
    srv.write_config(text=ak.config_with_auth(srv, section))
    cp = srv.talasctl("scan", timeout=120)
    assert cp.returncode == 0, cp.stderr
    assert_refused(sign(srv, a), 1, r"private_key_file")
    # the same with the private key signs (the track and config are fine)
    section += f"  private_key_file: {q(keys.files['rsa_priv'])}\n"
    srv.write_config(text=ak.config_with_auth(srv, section))
    cp = sign(srv, a)
    assert cp.returncode == 0, cp.stderr
    token = parse_qs(urlsplit(cp.stdout.strip()).query)["token"][0]
    assert jwt.decode(token, keys.rsa_pub, algorithms=["RS256"])["track"] == a
    # no key at all
    srv.write_config(text=ak.config_with_auth(srv, "auth:\n  required: false\n"))
    assert_refused(sign(srv, a), 1, r"no key")


@pytest.mark.parametrize("args", [
    [],
    ["AAAAAAAAAAAAAAAA", "BBBBBBBBBBBBBBBB"],
    ["AAAAAAAAAAAAAAAA", "--ttl", "soon"],
    ["AAAAAAAAAAAAAAAA", "--ttl", "-5"],
    ["AAAAAAAAAAAAAAAA", "--ttl"],
    ["AAAAAAAAAAAAAAAA", "--kind", "download"],
    ["AAAAAAAAAAAAAAAA", "--bogus"],
    ["AAAAAAAAAAAAAAAA", "--fix"],
], ids=["no id", "two ids", "ttl word", "ttl negative", "ttl no value", "bad kind",
        "unknown option", "fix"])
def test_sign_usage(ssrv, args):
    cp = sign(ssrv, *args)
    assert cp.returncode == 2, f"exit {cp.returncode}: {cp.stderr}"
    assert cp.stdout == "", cp.stdout
    assert cp.stderr.strip()


def test_sign_options_only_for_sign(ssrv):
    cp = ssrv.talasctl("tracks", "--ttl", "60")
    assert cp.returncode == 2, cp.stderr
    assert cp.stdout == ""
