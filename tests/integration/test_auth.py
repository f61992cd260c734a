"""Tokens on media URLs (auth.*): verification, minting, the backend key.

One server (module scope) runs with auth.required: true, an HS256 main key
(kid k2) and five more keys by kid (k1: the previous HS256 secret; rs, es,
h384, h512), iss/aud configured and no leeway. Its library has tracks A and
B, a big WAV for long downloads, and track C whose file is deleted after the
scan: every refused request for C must still be a 401/403, never the
404 file_missing that opening the file gives, which shows that the check
comes before any file is opened.
"""

import http.client
import json
import re
import socket
import time
from pathlib import Path

import jwt
import pytest

import auth_keys as ak
import talas_fixtures as tf


# ------------------------------------------------------------------ fixtures

@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    return ak.Keys(tmp_path_factory.mktemp("keys"))


@pytest.fixture(scope="module")
def authlib(tmp_path_factory):
    d = tmp_path_factory.mktemp("authlib")
    files = {
        "A": tf.make_track(d / "a.mp3", "Track A", seconds=4, freq=300),
        "B": tf.make_track(d / "b.mp3", "Track B", seconds=4, freq=400),
        "C": tf.make_track(d / "c.mp3", "Track C", seconds=3, freq=500),
        "big": tf.make_big_wav(d / "big.wav", seconds=60),
    }
    return d, files


@pytest.fixture(scope="module")
def asrv(tmp_path_factory, keys, authlib):
    d, files = authlib
    srv = tf.TalasServer(tmp_path_factory.mktemp("authsrv"), [d], workers=2)
    srv.write_config(text=ak.config_with_auth(srv, ak.auth_yaml(keys)))
    srv.start(wait_scan=True)
    try:
        ids = {t["title"]: t["id"] for t in srv.tracks()}
        srv.ids = {"A": ids["Track A"], "B": ids["Track B"], "C": ids["Track C"],
                   "big": ids["Big WAV"]}
        srv.files = files
        files["C"].unlink()
        yield srv
    finally:
        srv.kill()


def hs(keys, track, kid="k2", which="HS256", **kw):
    return ak.pyjwt_token(keys, "HS256", ak.claims(track, **kw), kid=kid, which=which)


ROUTES = {  # the media routes the negative table is tried on
    "stream": "/stream/{id}",
    "hls-master": "/hls/{id}/master.m3u8",
    "hls-playlist": "/hls/{id}/mobile/playlist.m3u8",
    "hls-segment": "/hls/{id}/high/3.m4s",
}


def get_stream(srv, track_id, token=None, bearer=None, rng="bytes=0-1023", method="GET",
               headers=None, route="stream"):
    path = ROUTES[route].format(id=track_id)
    if token is not None:
        path += f"?token={token}"
    h = dict(headers or {})
    if rng:
        h["Range"] = rng
    if bearer is not None:
        h["Authorization"] = f"Bearer {bearer}"
    return srv.get(path, headers=h, method=method)


def error_code(body):
    return json.loads(body)["error"]["code"]


# ------------------------------------------------------- the negative table

def _table(keys, srv, target):
    """(name, kwargs for get_stream, status, challenge) for TARGET's id."""
    now = int(time.time())
    other = srv.ids["B"] if target != srv.ids["B"] else srv.ids["A"]
    rsa_pub = keys.rsa_pub
    none_hdr = {"alg": "none", "typ": "JWT", "kid": "k2"}
    big = hs(keys, target, pad="x" * (100 * 1024))
    long5k = hs(keys, target, pad="x" * 5000)
    return [
        ("no token", {}, 401, 'Bearer realm="talas"'),
        ("expired", {"token": hs(keys, target, ttl=-10)}, 401, "invalid_token"),
        ("not yet valid", {"token": hs(keys, target, nbf=now + 120)}, 401, "invalid_token"),
        ("bad signature", {"token": ak.pyjwt_token(keys, "HS256", ak.claims(target), kid="k2",
                                                   key=b"y" * 32)}, 401, "invalid_token"),
        ("alg none", {"token": ak.hand_token(none_hdr, ak.claims(target))}, 401, "invalid_token"),
        ("alg none, no kid", {"token": ak.hand_token({"alg": "none"}, ak.claims(target))},
         401, "invalid_token"),
        ("alg none with a signature", {"token": ak.hand_token(none_hdr, ak.claims(target),
                                                              signature=b"x" * 32)},
         401, "invalid_token"),
        ("HS256 keyed with the RS256 public key",
         {"token": ak.hand_token({"alg": "HS256", "typ": "JWT", "kid": "rs"}, ak.claims(target),
                                 secret=rsa_pub)}, 401, "invalid_token"),
        ("HS256 keyed with the RS256 public key, no kid",
         {"token": ak.hand_token({"alg": "HS256", "typ": "JWT"}, ak.claims(target),
                                 secret=rsa_pub)}, 401, "invalid_token"),
        ("RS256 token under an HS256 kid",
         {"token": ak.pyjwt_token(keys, "RS256", ak.claims(target), kid="k2")}, 401,
         "invalid_token"),
        ("wrong kid", {"token": hs(keys, target, kid="nope")}, 401, "invalid_token"),
        ("old secret under the new kid", {"token": hs(keys, target, kid="k2", which="HS256_old")},
         401, "invalid_token"),
        ("wrong track", {"token": hs(keys, other)}, 403, "insufficient_scope"),
        ("no track claim", {"token": ak.pyjwt_token(
            keys, "HS256", ak.claims(None), kid="k2")}, 403, "insufficient_scope"),
        ("wrong scope", {"token": hs(keys, target, scope="preview")}, 403, "insufficient_scope"),
        ("wrong scope list", {"token": hs(keys, target, scope="hls preview other")}, 403,
         "insufficient_scope"),
        ("wrong ip", {"token": hs(keys, target, ip="10.9.8.7")}, 403, "insufficient_scope"),
        ("wrong aud", {"token": hs(keys, target, aud="someone-else")}, 401, "invalid_token"),
        ("wrong aud list", {"token": hs(keys, target, aud=["a", "b"])}, 401, "invalid_token"),
        ("no aud", {"token": hs(keys, target, aud=None)}, 401, "invalid_token"),
        ("wrong iss", {"token": hs(keys, target, iss="https://evil.example")}, 401,
         "invalid_token"),
        ("no exp", {"token": ak.pyjwt_token(keys, "HS256", {
            "track": target, "iss": ak.ISSUER, "aud": ak.AUDIENCE}, kid="k2")}, 401,
         "invalid_token"),
        ("exp not an integer", {"token": hs(keys, target, exp="tomorrow")}, 401, "invalid_token"),
        ("exp a real", {"token": hs(keys, target, exp=now + 300.5)}, 401, "invalid_token"),
        ("nbf not an integer", {"token": hs(keys, target, nbf="tomorrow")}, 401, "invalid_token"),
        ("track not a string", {"token": ak.pyjwt_token(
            keys, "HS256", {**ak.claims(target), "track": [target]}, kid="k2")}, 401,
         "invalid_token"),
        ("scope not a string", {"token": hs(keys, target, scope=["stream"])}, 401,
         "invalid_token"),
        ("unknown crit header", {"token": ak.hand_token(
            {"alg": "HS256", "kid": "k2", "crit": ["x"], "x": 1}, ak.claims(target),
            secret=keys.secret["HS256"])}, 401, "invalid_token"),
        ("garbage", {"token": "not-a-token"}, 401, "invalid_token"),
        ("garbage in three parts", {"token": "a.b.c"}, 401, "invalid_token"),
        ("garbage bearer", {"bearer": "%%%"}, 401, "invalid_token"),
        ("5 KB token", {"token": long5k}, 401, "invalid_token"),
        ("100 KB token in Authorization", {"bearer": big}, 431, None),
        ("token in both places, disagreeing",
         {"token": hs(keys, target), "bearer": hs(keys, target, ttl=200)}, 401, "invalid_token"),
        ("token twice in the query", {"token": hs(keys, target) + "&token=" + hs(keys, target)},
         401, "invalid_token"),
    ]


@pytest.mark.parametrize("route", list(ROUTES))
@pytest.mark.parametrize("which", ["A", "C"])
def test_negative_table(asrv, keys, which, route):
    """Every bad token is refused with its status and challenge, on every
    media route; for track C, whose file is gone, the refusal still comes
    first (never 404)."""
    target = asrv.ids[which]
    failures = []
    for name, kw, status, challenge in _table(keys, asrv, target):
        if route.startswith("hls") and name == "wrong scope list":
            kw = {"token": hs(keys, target, scope="stream preview other")}
        st, hdrs, body = get_stream(asrv, target, route=route, **kw)
        if st != status:
            failures.append(f"{name}: status {st}, want {status}: {body[:200]!r}")
            continue
        if challenge is None:
            continue
        www = hdrs.get("WWW-Authenticate") or ""
        if challenge.startswith("Bearer"):
            ok = www == challenge
        else:
            ok = www.startswith("Bearer ") and f'error="{challenge}"' in www
        if not ok:
            failures.append(f"{name}: WWW-Authenticate {www!r}, want {challenge!r}")
        if hdrs.get("Content-Type", "").split(";")[0] != "application/json" or "error" not in json.loads(body):
            failures.append(f"{name}: not a JSON error body: {body[:200]!r}")
        if hdrs.get("Cache-Control") != "no-store":
            failures.append(f"{name}: Cache-Control {hdrs.get('Cache-Control')!r}")
    assert not failures, "\n".join(failures)
    # the positive control: the same route with a good token gets past the
    # check, to the file (206) or to its absence (404 file_missing)
    st, _, body = get_stream(asrv, target, token=hs(keys, target), route=route)
    if which == "A":
        assert st == (206 if route == "stream" else 200), body[:200]
    else:
        assert st == 404 and error_code(body) == "file_missing", (st, body[:200])


def test_head_needs_a_token_too(asrv, keys):
    a = asrv.ids["A"]
    st, hdrs, _ = get_stream(asrv, a, method="HEAD", rng=None)
    assert st == 401 and hdrs.get("WWW-Authenticate") == 'Bearer realm="talas"'
    st, _, _ = get_stream(asrv, a, token=hs(keys, a), method="HEAD", rng=None)
    assert st == 200


def test_refusals_are_logged_without_the_token(asrv, keys):
    a = asrv.ids["A"]
    tok = hs(keys, a, ttl=-5)
    assert get_stream(asrv, a, token=tok)[0] == 401
    tok403 = hs(keys, asrv.ids["B"])
    assert get_stream(asrv, a, token=tok403)[0] == 403

    def logged():
        text = tf.read_text(asrv.error_log, 200000)
        return (f"auth: 401 for GET /stream/{a} from 127.0.0.1: expired" in text
                and f"auth: 403 for GET /stream/{a} from 127.0.0.1: the token is for another track"
                in text and text)
    text = tf.wait_for(logged, 5, what="the refusals in the error log")
    assert tok not in text and tok403 not in text
    assert tok.split(".")[2] not in text


def test_good_tokens_and_headers(asrv, keys):
    a = asrv.ids["A"]
    size = asrv.files["A"].stat().st_size
    data = asrv.files["A"].read_bytes()
    tok = hs(keys, a, scope="stream", sub="user-1", ip="127.0.0.1")
    # query, Authorization, both identical, scope list, "all"
    for kw in ({"token": tok}, {"bearer": tok}, {"token": tok, "bearer": tok},
               {"token": hs(keys, a, scope="hls stream")}, {"token": hs(keys, a, scope="all")},
               {"token": hs(keys, a, aud=["x", ak.AUDIENCE])}):
        st, hdrs, body = get_stream(asrv, a, rng="bytes=100-1123", **kw)
        assert st == 206, (kw, body[:200])
        assert body == data[100:1124]
        assert hdrs["Content-Range"] == f"bytes 100-1123/{size}"
        cc = hdrs.get("Cache-Control", "")
        assert cc.startswith("private") and "public" not in cc, cc
    # a whole-file GET with ?token= in the query, other parameters around it
    st, hdrs, body = asrv.get(f"/stream/{a}?x=1&token={tok}&y=2")
    assert st == 200 and body == data
    # conditional requests still work with a token
    etag = hdrs["ETag"]
    st, hdrs, _ = asrv.get(f"/stream/{a}?token={tok}", headers={"If-None-Match": etag})
    assert st == 304 and hdrs.get("Cache-Control", "").startswith("private")


@pytest.mark.parametrize("alg,kid", [("HS256", "k2"), ("HS256", "k1"), ("HS384", "h384"),
                                     ("HS512", "h512"), ("RS256", "rs"), ("ES256", "es")])
def test_pyjwt_tokens_accepted(asrv, keys, alg, kid):
    """Tokens minted by PyJWT with each configured key work; k1 is the
    previous secret, still accepted during a rotation."""
    a = asrv.ids["A"]
    which = "HS256_old" if kid == "k1" else None
    tok = ak.pyjwt_token(keys, alg, ak.claims(a, scope="stream"), kid=kid, which=which)
    st, _, body = get_stream(asrv, a, token=tok)
    assert st == 206, body[:200]
    # the same claims under the wrong kid: refused
    wrong = "k1" if kid != "k1" else "k2"
    tok = ak.pyjwt_token(keys, alg, ak.claims(a), kid=wrong, which=which)
    assert get_stream(asrv, a, token=tok)[0] == 401


def test_kid_is_required_with_several_keys_unless_main_key_has_none(asrv, keys):
    # the main key has kid k2: a token without kid matches no key
    a = asrv.ids["A"]
    st, _, body = get_stream(asrv, a, token=hs(keys, a, kid=None))
    assert st == 401, body


# ------------------------------------------------------------- hotlinking

def stream_url(srv, keys, track, headers=None, **body):
    h = {"Authorization": f"Bearer {keys.backend_key}", "Content-Type": "application/json"}
    h.update(headers or {})
    payload = json.dumps({"track_id": track, **body}).encode() if body is not None else b""
    return srv.get("/api/stream-url", method="POST", headers=h, body=payload)


def path_of(url, srv):
    assert url.startswith(srv.base_url + "/"), url
    return url[len(srv.base_url):]


def test_url_for_a_never_streams_b(asrv, keys):
    a, b = asrv.ids["A"], asrv.ids["B"]
    st, _, body = stream_url(asrv, keys, a)
    assert st == 200, body
    path = path_of(json.loads(body)["url_signed"], asrv)
    assert asrv.get(path, headers={"Range": "bytes=0-99"})[0] == 206
    token = path.split("?token=", 1)[1]
    for p in (f"/stream/{b}?token={token}", f"/stream/{a}/../{b}?token={token}",
              f"/stream/{b}?token={token}&track={a}"):
        st, hdrs, body = asrv.get(p)
        assert st in (403, 404) and st != 200 and st != 206, (p, st)
    st, _, _ = asrv.get(f"/stream/{b}?token={token}")
    assert st == 403


def test_url_stops_working_after_expiry_but_a_started_download_finishes(asrv, keys):
    big = asrv.ids["big"]
    size = asrv.files["big"].stat().st_size
    st, _, body = stream_url(asrv, keys, big, ttl_seconds=1)
    assert st == 200, body
    doc = json.loads(body)
    path = path_of(doc["url_signed"], asrv)
    exp = jwt.decode(path.split("?token=", 1)[1], options={"verify_signature": False})["exp"]

    conn = http.client.HTTPConnection(asrv.host, asrv.port, timeout=20)
    conn.putrequest("GET", path, skip_accept_encoding=True)
    conn.endheaders()
    resp = conn.getresponse()
    assert resp.status == 200
    got = resp.read(65536)
    # read slowly until the token has expired, with a margin
    while time.time() < exp + 1.5:
        chunk = resp.read(16384)
        assert chunk, "the response ended early"
        got += chunk
        time.sleep(0.02)
    assert time.time() > exp + 1
    # a new request, even a Range continuing this one, is refused now
    st, hdrs, body = asrv.get(path, headers={"Range": f"bytes={len(got)}-"})
    assert st == 401 and 'error="invalid_token"' in hdrs["WWW-Authenticate"], body
    assert json.loads(body)["error"]["message"] == "expired"
    # the response that started in time runs to its end
    rest = resp.read()
    conn.close()
    assert len(got) + len(rest) == size
    assert got + rest == asrv.files["big"].read_bytes()


# ------------------------------------------------------ POST /api/stream-url

def test_stream_url_minted_tokens_verify_in_pyjwt(asrv, keys):
    a = asrv.ids["A"]
    before = int(time.time())
    st, hdrs, body = stream_url(asrv, keys, a, user_id="user-42", ttl_seconds=120)
    assert st == 200, body
    assert hdrs.get("Cache-Control") == "no-store"
    doc = json.loads(body)
    assert set(doc) == {"url_signed", "expires_at"}
    url = doc["url_signed"]
    assert re.fullmatch(re.escape(f"{asrv.base_url}/stream/{a}?token=") + r"[A-Za-z0-9_.-]+", url)
    token = url.split("?token=", 1)[1]
    assert jwt.get_unverified_header(token)["kid"] == "k2"
    c = jwt.decode(token, keys.secret["HS256"], algorithms=["HS256"], audience=ak.AUDIENCE,
                   issuer=ak.ISSUER, options={"require": ["exp", "track"]})
    assert c["track"] == a and c["sub"] == "user-42" and c["scope"] == "stream"
    assert before + 119 <= c["exp"] <= int(time.time()) + 121
    exp_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(c["exp"]))
    assert doc["expires_at"] == exp_at
    st, _, body = asrv.get(path_of(url, asrv), headers={"Range": "bytes=0-9"})
    assert st == 206 and body == asrv.files["A"].read_bytes()[:10]
    # the same token in Authorization instead of the query
    assert get_stream(asrv, a, bearer=token)[0] == 206


def test_stream_url_kinds_and_aliases(asrv, keys):
    a = asrv.ids["A"]
    st, _, body = stream_url(asrv, keys, a, kind="preview")
    assert st == 200, body
    url = json.loads(body)["url_signed"]
    assert url.startswith(f"{asrv.base_url}/preview/{a}?token=")
    tok = url.split("?token=", 1)[1]
    assert jwt.decode(tok, keys.secret["HS256"], algorithms=["HS256"],
                      audience=ak.AUDIENCE)["scope"] == "preview"
    # a preview token does not open the full stream
    assert get_stream(asrv, a, token=tok)[0] == 403
    st, _, body = stream_url(asrv, keys, a, kind="hls")
    assert json.loads(body)["url_signed"].startswith(f"{asrv.base_url}/hls/{a}/master.m3u8?token=")
    h = {"Authorization": f"Bearer {keys.backend_key}"}
    st, _, body = asrv.get("/api/stream-url", method="POST", headers=h,
                           body=json.dumps({"audio_id": a}).encode())
    assert st == 200 and f"/stream/{a}?token=" in json.loads(body)["url_signed"]


@pytest.mark.parametrize("case", [
    "no key", "wrong key", "basic", "bad json", "not an object", "trailing", "ttl string",
    "ttl over max", "ttl zero", "unknown track", "bad id", "no track", "bad kind", "unknown field",
    "both ids", "get"])
def test_stream_url_errors(asrv, keys, case):
    a = asrv.ids["A"]
    good = {"Authorization": f"Bearer {keys.backend_key}"}
    body, headers, method = json.dumps({"track_id": a}).encode(), good, "POST"
    want, field = 400, None
    if case == "no key":
        headers, want = {}, 401
    elif case == "wrong key":
        headers, want = {"Authorization": "Bearer " + keys.backend_key[:-1] + "x"}, 401
    elif case == "basic":
        headers, want = {"Authorization": "Basic " + keys.backend_key}, 401
    elif case == "bad json":
        body = b'{"track_id": "' + a.encode() + b'"'
    elif case == "not an object":
        body = b'["' + a.encode() + b'"]'
    elif case == "trailing":
        body = json.dumps({"track_id": a}).encode() + b" x"
    elif case == "ttl string":
        body, field = json.dumps({"track_id": a, "ttl_seconds": "60"}).encode(), "ttl_seconds"
    elif case == "ttl over max":
        body, field = json.dumps({"track_id": a, "ttl_seconds": 3601}).encode(), "ttl_seconds"
    elif case == "ttl zero":
        body, field = json.dumps({"track_id": a, "ttl_seconds": 0}).encode(), "ttl_seconds"
    elif case == "unknown track":
        body, want = json.dumps({"track_id": "0123456789abcdef"}).encode(), 404
    elif case == "bad id":
        body, field = json.dumps({"track_id": "../../etc"}).encode(), "track_id"
    elif case == "no track":
        body, field = json.dumps({"user_id": "u"}).encode(), "track_id"
    elif case == "bad kind":
        body, field = json.dumps({"track_id": a, "kind": "download"}).encode(), "kind"
    elif case == "unknown field":
        body, field = json.dumps({"track_id": a, "admin": True}).encode(), "admin"
    elif case == "both ids":
        body, field = json.dumps({"track_id": a, "audio_id": a}).encode(), "audio_id"
    elif case == "get":
        method, body, want = "GET", None, 405
    st, hdrs, resp = asrv.get("/api/stream-url", method=method, headers=headers, body=body)
    assert st == want, resp
    err = json.loads(resp)["error"]
    if want == 401:
        assert hdrs.get("WWW-Authenticate", "").startswith("Bearer")
        assert "url_signed" not in resp.decode()
    if field:
        assert err["message"].startswith(field + ":"), err
    if case == "bad json":
        assert err["code"] == "invalid_json"


# -------------------------------------------------------------- /api/tracks

def test_tracks_with_and_without_the_backend_key(asrv, keys):
    doc = asrv.get_json("/api/tracks")
    assert doc["tracks"] and all("stream_url" not in t for t in doc["tracks"])
    doc = asrv.get_json("/api/tracks", headers={"Authorization": f"Bearer {keys.backend_key}"})
    a = asrv.ids["A"]
    by_id = {t["id"]: t for t in doc["tracks"]}
    assert all(t["stream_url"].startswith(f"{asrv.base_url}/stream/{t['id']}?token=")
               for t in doc["tracks"])
    st, _, body = asrv.get(path_of(by_id[a]["stream_url"], asrv), headers={"Range": "bytes=0-9"})
    assert st == 206 and body == asrv.files["A"].read_bytes()[:10]
    st, hdrs, _ = asrv.get("/api/tracks", headers={"Authorization": "Bearer wrong"})
    assert st == 401 and hdrs.get("WWW-Authenticate", "").startswith("Bearer")
    # another scheme (a proxy's Basic) is not a wrong key: the plain list
    doc = asrv.get_json("/api/tracks", headers={"Authorization": "Basic dXNlcjpwdw=="})
    assert all("stream_url" not in t for t in doc["tracks"])
    # metadata stays public
    assert asrv.get(f"/api/tracks/{a}")[0] == 200


# ------------------------------------------- other main keys: mint and verify

@pytest.mark.parametrize("alg", ["RS256", "ES256", "HS384", "HS512"])
def test_talas_minted_tokens_verify_in_pyjwt(talas_server, keys, authlib, alg):
    d, files = authlib
    srv = talas_server([d], start=False, workers=1)
    srv.write_config(text=ak.config_with_auth(
        srv, ak.auth_yaml(keys, main=alg, kid=None, extra_keys=False, issuer=None,
                          audience=None)))
    srv.start()
    a = {t["title"]: t["id"] for t in srv.tracks()}["Track A"]
    st, _, body = stream_url(srv, keys, a, user_id="u1")
    assert st == 200, body
    url = json.loads(body)["url_signed"]
    token = url.split("?token=", 1)[1]
    assert jwt.get_unverified_header(token)["alg"] == alg
    c = jwt.decode(token, keys.verify_key(alg), algorithms=[alg], options={"require": ["exp"]})
    assert c["track"] == a and c["sub"] == "u1"
    assert srv.get(path_of(url, srv), headers={"Range": "bytes=0-9"})[0] == 206
    # and PyJWT's own tokens with that key work there (no kid: the only key)
    tok = ak.pyjwt_token(keys, alg, {"exp": int(time.time()) + 60, "track": a})
    assert get_stream(srv, a, token=tok)[0] == 206
    # no audience configured: a token that names one is refused (RFC 7519 4.1.3)
    tok = ak.pyjwt_token(keys, alg, {"exp": int(time.time()) + 60, "track": a, "aud": "x"})
    assert get_stream(srv, a, token=tok)[0] == 401


def test_auth_off_ignores_tokens_and_tracks_have_no_urls(talas_server, keys, authlib):
    d, _ = authlib
    srv = talas_server([d], start=False, workers=1)
    srv.write_config(text=ak.config_with_auth(srv, ak.auth_yaml(keys, required=False)))
    srv.start()
    a = {t["title"]: t["id"] for t in srv.tracks()}["Track A"]
    st, hdrs, _ = get_stream(srv, a)
    assert st == 206 and hdrs["Cache-Control"].startswith("public")
    assert get_stream(srv, a, token="garbage")[0] == 206
    doc = srv.get_json("/api/tracks", headers={"Authorization": f"Bearer {keys.backend_key}"})
    assert all("stream_url" not in t for t in doc["tracks"])
    # minting still works for a backend that prepares URLs ahead of a switch
    assert stream_url(srv, keys, a)[0] == 200


# ------------------------------------------------------------ config errors

def _check(srv):
    return tf.run([tf.TALAS_MASTER, "-t", "-c", srv.config_path], check=False, timeout=30)


def test_config_check_reports_bad_key_files(talas_server, keys, authlib, tmp_path):
    d, _ = authlib
    srv = talas_server([d], start=False, workers=1)
    base = ak.auth_yaml(keys)
    srv.write_config(text=ak.config_with_auth(srv, base))
    cp = _check(srv)
    assert cp.returncode == 0, cp.stderr

    empty = tmp_path / "empty.secret"
    empty.write_bytes(b"\n")
    short = tmp_path / "short.secret"
    short.write_bytes(b"too-short\n")
    cases = [
        (str(keys.files["HS256"]), str(tmp_path / "missing.secret"), "missing.secret"),
        (str(keys.files["HS256"]), str(empty), "is empty"),
        (str(keys.files["HS256"]), str(short), "needs at least 32"),
        (str(keys.files["backend"]), str(tmp_path / "nobackend.key"), "auth.backend_key_file"),
        (str(keys.files["rsa_pub"]), str(keys.files["ec_pub"]), "not an RSA key"),
        (str(keys.files["ec_pub"]), str(keys.files["HS512"]), "not a PEM public key"),
    ]
    for old, new, words in cases:
        text = ak.config_with_auth(srv, base).replace(json.dumps(old), json.dumps(new))
        assert text != ak.config_with_auth(srv, base)
        srv.write_config(text=text)
        cp = _check(srv)
        assert cp.returncode == 1 and words in cp.stderr and "test failed" in cp.stderr, \
            (new, cp.stderr)
    # a private key that is not the public key's other half
    text = ak.config_with_auth(srv, ak.auth_yaml(keys, main="RS256", extra_keys=False)).replace(
        json.dumps(str(keys.files["rsa_priv"])), json.dumps(str(keys.files["other_rsa_priv"])))
    srv.write_config(text=text)
    cp = _check(srv)
    assert cp.returncode == 1 and "does not match" in cp.stderr, cp.stderr
    # and the server does not start with it
    with pytest.raises(AssertionError):
        srv.start(wait_scan=False, timeout=5)
    assert "does not match" in tf.read_text(srv.stderr_path)


def test_reload_with_a_bad_key_keeps_the_running_keys(talas_server, keys, authlib, tmp_path):
    d, _ = authlib
    srv = talas_server([d], start=False, workers=1)
    good = ak.config_with_auth(srv, ak.auth_yaml(keys, extra_keys=False))
    srv.write_config(text=good)
    srv.start()
    a = {t["title"]: t["id"] for t in srv.tracks()}["Track A"]
    srv.write_config(text=good.replace(json.dumps(str(keys.files["HS256"])),
                                       json.dumps(str(tmp_path / "gone.secret"))))
    srv.reload()
    tf.wait_for(lambda: "reload failed" in tf.read_text(srv.error_log), 10,
                what="the failed reload in the log")
    assert "gone.secret" in tf.read_text(srv.error_log)
    assert get_stream(srv, a, token=hs(keys, a, kid="k2"))[0] == 206
    assert get_stream(srv, a)[0] == 401
