"""Private links (POST /api/shares, /s/{id}, share tokens on media routes).

Against a real talas-master (auth.required, tokens minted with PyJWT, the
backend key) on a library generated with ffmpeg, with real HTTP clients:

- creating: the backend key, or a user token with "owner": true for the
  track (or one of the song's versions); anyone else 403 not_owner; bad
  bodies 400 with the member named;
- every refusal with its status and JSON error: unknown or revoked link
  404 share_not_found, expired 410 share_expired, no password 401
  password_required, wrong password 403 wrong_password and then 429
  too_many_attempts, download not granted 403 download_not_granted,
  listener limit 403 listener_limit_reached, comment not granted 403
  comment_not_granted, another track 403 forbidden; a share token is good
  for nothing but its link's media;
- revocation: the next range request and the next HLS segment of an open
  stream fail with 404 share_not_found;
- analytics: plays, distinct listeners and listening time counted from the
  media requests made with the link's tokens;
- GET /s/{id} serves the share page; talasctl shares ls|rm.
"""

import json
import time

import pytest

import auth_keys as ak
import talas_fixtures as tf

DURATION_S = 14


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    return ak.Keys(tmp_path_factory.mktemp("sharekeys"))


@pytest.fixture(scope="module")
def slib(tmp_path_factory):
    d = tmp_path_factory.mktemp("sharelib")
    tf.make_track(d / "demo v1.mp3", "Demo v1", seconds=DURATION_S, freq=300)
    tf.make_track(d / "demo v2.mp3", "Demo v2", seconds=DURATION_S, freq=350)
    tf.make_track(d / "other.mp3", "Other", seconds=4, freq=500)
    return d


@pytest.fixture(scope="module")
def ssrv(tmp_path_factory, slib, keys):
    work = tmp_path_factory.mktemp("shares")
    www = work / "www"
    www.mkdir()
    (www / "share.html").write_text("<!doctype html><title>Talas share</title><div id=share></div>\n")
    srv = tf.TalasServer(work, [slib])
    ak.configure(srv, keys, f"http:\n  www_root: {json.dumps(str(www))}\n")
    srv.start()
    srv.ids = ak.tracks_by_title(srv)
    for t in srv.ids.values():  # the song: GET /api/tracks/{id} carries it
        st, _, one = srv.get(f"/api/tracks/{t['id']}", headers=srv.backend)
        assert st == 200, one
        t["song_id"] = json.loads(one).get("song_id")
    try:
        yield srv
    finally:
        srv.kill()


def user_token(srv, sub, track=None, **extra):
    return ak.pyjwt_token(srv.keys, "HS256", ak.claims(track, sub=sub, **extra), kid="k2")


def call(srv, method, path, headers=None, doc=None):
    h = dict(headers or {})
    body = None
    if doc is not None:
        h["Content-Type"] = "application/json"
        body = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    # a generous wait: under the sanitizers, with other tests running, a
    # transcode's read-ahead of the test before can keep the worker's
    # store writes waiting for seconds (seen: past the default 10 s)
    st, hdrs, raw = srv.get(path, method=method, headers=h, body=body, timeout=60)
    try:
        parsed = json.loads(raw) if raw else None
    except ValueError:
        parsed = raw
    return st, parsed


def tid(srv, title):
    return srv.ids[title]["id"]


def create(srv, headers=None, **doc):
    doc.setdefault("expires_in", 3600)
    doc.setdefault("permissions", ["stream"])
    st, d = call(srv, "POST", "/api/shares", headers if headers is not None else srv.backend, doc)
    assert st == 201, d
    return d


def unlock(srv, sid, **doc):
    return call(srv, "POST", f"/s/{sid}/unlock", None, doc)


def share_token(srv, sid, **doc):
    st, d = unlock(srv, sid, **doc)
    assert st == 200, d
    return d["token"]


def media(srv, path, token, headers=None):
    sep = "&" if "?" in path else "?"
    st, hdrs, raw = srv.get(f"{path}{sep}token={token}", headers=headers or {}, timeout=60)
    return st, raw


def error_of(st, d, status, code):
    assert st == status, (st, d)
    assert isinstance(d, dict) and d["error"]["code"] == code, d
    assert d["error"]["message"], d


def analytics(srv, sid):
    st, d = call(srv, "GET", f"/api/shares/{sid}", srv.backend)
    assert st == 200, d
    return d["analytics"]


# ------------------------------------------------------------- creating


def test_create_backend_and_owner(ssrv):
    t1 = tid(ssrv, "Demo v1")
    d = create(ssrv, track_id=t1, permissions=["stream", "download"], max_listeners=3)
    assert len(d["id"]) == 16 and d["url"].endswith(f"/s/{d['id']}")
    assert d["track_id"] == t1 and d["song_id"] is None and d["owner"] is None
    assert d["permissions"] == ["stream", "download"] and d["max_listeners"] == 3
    assert d["password"] is False and d["expired"] is False
    assert d["analytics"] == {"plays": 0, "listeners": 0, "listening_ms": 0}

    # the owner, as the backend names it in the token
    owner = {"Authorization": f"Bearer {user_token(ssrv, 'alice', t1, owner=True)}"}
    mine = create(ssrv, owner, track_id=t1)
    assert mine["owner"] == "alice"
    # a song: the owner of one of its versions may share it
    song = ssrv.ids["Demo v1"]["song_id"]
    assert song and song == ssrv.ids["Demo v2"]["song_id"]
    if song:
        s = create(ssrv, owner, song_id=song)
        assert s["song_id"] == song and s["track_id"] is None

    # not the owner: no claim, or the claim for another track
    for tok in (user_token(ssrv, "bob", t1), user_token(ssrv, "bob", tid(ssrv, "Other"), owner=True)):
        st, e = call(ssrv, "POST", "/api/shares", {"Authorization": f"Bearer {tok}"},
                     {"track_id": t1, "expires_in": 60, "permissions": ["stream"]})
        error_of(st, e, 403, "not_owner")
    st, e = call(ssrv, "POST", "/api/shares", None, {"track_id": t1, "expires_in": 60, "permissions": ["stream"]})
    error_of(st, e, 401, "unauthorized")

    # listings: alice sees hers, the backend sees all
    st, l = call(ssrv, "GET", "/api/shares", owner)
    assert st == 200 and {x["owner"] for x in l["shares"]} == {"alice"}
    assert mine["id"] in [x["id"] for x in l["shares"]]
    st, l = call(ssrv, "GET", "/api/shares", ssrv.backend)
    assert {d["id"], mine["id"]} <= {x["id"] for x in l["shares"]}
    # another user's link is unknown to bob
    bob = {"Authorization": f"Bearer {user_token(ssrv, 'bob')}"}
    st, e = call(ssrv, "GET", f"/api/shares/{mine['id']}", bob)
    error_of(st, e, 404, "share_not_found")


@pytest.mark.parametrize("doc,field", [
    ({"expires_in": 60, "permissions": ["stream"]}, "track_id or song_id"),
    ({"track_id": "AAAAAAAAAAAAAAAA", "song_id": "AAAAAAAAAAAAAAAA", "expires_in": 60,
      "permissions": ["stream"]}, "track_id or song_id"),
    ({"track_id": "x", "expires_in": 60, "permissions": ["stream"]}, "track_id"),
    ({"track_id": "T", "permissions": ["stream"]}, "expires_in or expires_at"),
    ({"track_id": "T", "expires_in": 0, "permissions": ["stream"]}, "expires_in"),
    ({"track_id": "T", "expires_at": 1000, "permissions": ["stream"]}, "expires_at"),
    ({"track_id": "T", "expires_in": 60, "permissions": []}, "permissions"),
    ({"track_id": "T", "expires_in": 60, "permissions": ["fly"]}, "permissions"),
    ({"track_id": "T", "expires_in": 60, "permissions": "stream"}, "permissions"),
    ({"track_id": "T", "expires_in": 60, "permissions": ["stream"], "max_listeners": 0}, "max_listeners"),
    ({"track_id": "T", "expires_in": 60, "permissions": ["stream"], "password": ""}, "password"),
    ({"track_id": "T", "expires_in": 60, "permissions": ["stream"], "colour": "red"}, "colour"),
])
def test_create_bad_bodies(ssrv, doc, field):
    doc = {k: (tid(ssrv, "Other") if v == "T" else v) for k, v in doc.items()}
    st, e = call(ssrv, "POST", "/api/shares", ssrv.backend, doc)
    error_of(st, e, 400, "invalid_parameter")
    assert e["error"]["message"].startswith(field), e


def test_create_unknown_track_and_not_json(ssrv):
    st, e = call(ssrv, "POST", "/api/shares", ssrv.backend,
                 {"track_id": "AAAAAAAAAAAAAAAA", "expires_in": 60, "permissions": ["stream"]})
    error_of(st, e, 404, "not_found")
    st, e = call(ssrv, "POST", "/api/shares", ssrv.backend, b"{not json")
    error_of(st, e, 400, "invalid_json")


# Every JSON body is read by one function (talas_http_read_json_body): the
# same refusals, with the same codes, on every route that takes one.
BODY_ROUTES = [("POST", "/api/shares"), ("POST", "/api/stream-url"), ("PUT", "/api/users/alice/settings"),
               ("POST", "/api/streaming/session")]
BAD_BODIES = [
    ("not JSON", b"{not json", 400, "invalid_json"),
    ("an array", b"[1]", 400, "invalid_json"),
    ("overlong UTF-8", b'{"track_id": "\xc0\xaf"}', 400, "invalid_utf8"),
    ("lone continuation byte", b'{"track_id": "a\x80"}', 400, "invalid_utf8"),
    ("escaped NUL", b'{"track_id": "a\\u0000b"}', 400, "nul_character"),
    ("100 KiB", b'{"track_id": "' + b"a" * (100 << 10) + b'"}', 413, "body_too_large"),
]


@pytest.mark.parametrize("label,body,status,code", BAD_BODIES, ids=[b[0] for b in BAD_BODIES])
def test_bad_bodies_are_refused_alike_on_every_route(ssrv, label, body, status, code):
    for method, path in BODY_ROUTES:
        st, e = call(ssrv, method, path, ssrv.backend, body)
        assert st == status and e["error"]["code"] == code, (method, path, label, st, e)


# ------------------------------------------------------------- refusals


def test_unknown_and_revoked_links(ssrv):
    st, e = unlock(ssrv, "AAAAAAAAAAAAAAAA")
    error_of(st, e, 404, "share_not_found")
    st, e = call(ssrv, "GET", "/s/AAAAAAAAAAAAAAAA")
    error_of(st, e, 404, "share_not_found")
    d = create(ssrv, track_id=tid(ssrv, "Other"))
    st, page = call(ssrv, "GET", f"/s/{d['id']}")
    assert st == 200 and "Talas share" in page.decode()
    st, _ = call(ssrv, "DELETE", f"/api/shares/{d['id']}", ssrv.backend)
    assert st == 204
    st, e = unlock(ssrv, d["id"])
    error_of(st, e, 404, "share_not_found")
    st, e = call(ssrv, "GET", f"/s/{d['id']}")
    error_of(st, e, 404, "share_not_found")
    st, e = call(ssrv, "DELETE", f"/api/shares/{d['id']}", ssrv.backend)
    error_of(st, e, 404, "share_not_found")


def test_expired_link(ssrv):
    t = tid(ssrv, "Other")
    d = create(ssrv, track_id=t, expires_in=1)
    tok = share_token(ssrv, d["id"])
    # the link's clock, not the test's: wait until the server says so
    tf.wait_for(lambda: unlock(ssrv, d["id"])[0] == 410, timeout=10, what="the link to expire")
    st, e = unlock(ssrv, d["id"])
    error_of(st, e, 410, "share_expired")
    st, e = call(ssrv, "GET", f"/s/{d['id']}")
    error_of(st, e, 410, "share_expired")
    # the token minted before still names the link: its media are refused too
    st, raw = media(ssrv, f"/stream/{t}?format=mp3", tok)
    if st != 401:  # the token may itself have expired with the link
        error_of(st, json.loads(raw), 410, "share_expired")


def test_password(ssrv):
    d = create(ssrv, track_id=tid(ssrv, "Other"), password="s3cret pass")
    assert d["password"] is True
    st, e = unlock(ssrv, d["id"])
    error_of(st, e, 401, "password_required")
    st, e = unlock(ssrv, d["id"], password="nope")
    error_of(st, e, 403, "wrong_password")
    st, ok = unlock(ssrv, d["id"], password="s3cret pass")
    assert st == 200 and ok["token"], ok
    # failures are limited per address and link: 5 in the window on each
    # worker (2 here), then 429 without the password being checked
    seen = []
    for _ in range(2 * 5 + 1):
        st, e = unlock(ssrv, d["id"], password="guess")
        seen.append(st)
        if st == 429:
            break
    # with the "nope" above, at least 5 wrong passwords came before the 429
    assert seen[-1] == 429 and 1 + len(seen) - 1 >= 5, seen
    error_of(st, e, 429, "too_many_attempts")
    # another link is not blocked by this one's failures
    other = create(ssrv, track_id=tid(ssrv, "Other"), password="x")
    st, _ = unlock(ssrv, other["id"], password="x")
    assert st == 200


def test_download_not_granted(ssrv):
    t = tid(ssrv, "Other")
    d = create(ssrv, track_id=t, permissions=["stream"])
    tok = share_token(ssrv, d["id"])
    st, raw = media(ssrv, f"/stream/{t}", tok)
    error_of(st, json.loads(raw), 403, "download_not_granted")
    st, raw = media(ssrv, f"/stream/{t}?format=mp3", tok)
    assert st == 200 and len(raw) > 1000
    # download only: the original, no transcode or HLS
    d2 = create(ssrv, track_id=t, permissions=["download"])
    tok2 = share_token(ssrv, d2["id"])
    st, raw = media(ssrv, f"/stream/{t}", tok2)
    assert st == 200 and raw[:3] == b"ID3" or raw[:2] == b"\xff\xfb", raw[:8]
    st, raw = media(ssrv, f"/stream/{t}?format=mp3", tok2)
    error_of(st, json.loads(raw), 403, "stream_not_granted")
    st, raw = media(ssrv, f"/hls/{t}/master.m3u8", tok2)
    error_of(st, json.loads(raw), 403, "stream_not_granted")


def test_listener_limit(ssrv):
    d = create(ssrv, track_id=tid(ssrv, "Other"), max_listeners=2)
    st, a = unlock(ssrv, d["id"])
    assert st == 200
    st, b = unlock(ssrv, d["id"])
    assert st == 200 and b["listener"] != a["listener"]
    st, e = unlock(ssrv, d["id"])
    error_of(st, e, 403, "listener_limit_reached")
    # a listener already in keeps its place
    st, again = unlock(ssrv, d["id"], listener=a["listener"])
    assert st == 200 and again["listener"] == a["listener"]
    assert analytics(ssrv, d["id"])["listeners"] == 2


def test_comments_and_other_tracks(ssrv):
    t, other = tid(ssrv, "Demo v1"), tid(ssrv, "Other")
    no = create(ssrv, track_id=t, permissions=["stream"])
    tok = share_token(ssrv, no["id"])
    h = {"Authorization": f"Bearer {tok}"}
    st, e = call(ssrv, "POST", f"/api/tracks/{t}/comments", h, {"at_ms": 100, "body": "hi"})
    error_of(st, e, 403, "comment_not_granted")
    st, e = call(ssrv, "GET", f"/api/tracks/{t}/comments", h)
    error_of(st, e, 403, "comment_not_granted")

    yes = create(ssrv, track_id=t, permissions=["stream", "comment"])
    tok = share_token(ssrv, yes["id"])
    h = {"Authorization": f"Bearer {tok}"}
    st, c = call(ssrv, "POST", f"/api/tracks/{t}/comments", h, {"at_ms": 100, "body": "<b>lovely</b>"})
    assert st == 201, c
    assert c["user_id"].startswith(f"share:{yes['id']}:") and c["body"] == "<b>lovely</b>"
    st, l = call(ssrv, "GET", f"/api/tracks/{t}/comments", h)
    assert st == 200 and any(x["comment_id"] == c["comment_id"] for x in l["threads"])
    # not on another track, not to edit through /api/comments
    st, e = call(ssrv, "POST", f"/api/tracks/{other}/comments", h, {"at_ms": 1, "body": "x"})
    error_of(st, e, 403, "forbidden")
    st, e = call(ssrv, "PATCH", f"/api/comments/{c['comment_id']}", h, {"body": "x"})
    error_of(st, e, 403, "forbidden")
    # media of another track
    st, raw = media(ssrv, f"/stream/{other}?format=mp3", tok)
    error_of(st, json.loads(raw), 403, "forbidden")
    # a share token is no user's token: it cannot make links
    st, e = call(ssrv, "POST", "/api/shares", h, {"track_id": t, "expires_in": 60, "permissions": ["stream"]})
    assert st == 403, e


def test_song_link_covers_its_versions(ssrv):
    song = ssrv.ids["Demo v1"]["song_id"]
    d = create(ssrv, song_id=song)
    st, u = unlock(ssrv, d["id"])
    assert st == 200 and u["share"]["kind"] == "song"
    ids = {x["id"] for x in u["share"]["tracks"]}
    assert {tid(ssrv, "Demo v1"), tid(ssrv, "Demo v2")} <= ids
    for t in ids:
        st, _ = media(ssrv, f"/stream/{t}?format=mp3", u["token"], {"Range": "bytes=0-99"})
        assert st in (200, 206)
    st, raw = media(ssrv, f"/stream/{tid(ssrv, 'Other')}?format=mp3", u["token"])
    error_of(st, json.loads(raw), 403, "forbidden")


# ----------------------------------------------------------- revocation


def test_revocation_ends_range_requests(ssrv):
    t = tid(ssrv, "Demo v1")
    d = create(ssrv, track_id=t, permissions=["stream", "download"])
    tok = share_token(ssrv, d["id"])
    st, raw = media(ssrv, f"/stream/{t}", tok, {"Range": "bytes=0-999"})
    assert st == 206 and len(raw) == 1000
    st, _ = call(ssrv, "DELETE", f"/api/shares/{d['id']}", ssrv.backend)
    assert st == 204
    st, raw = media(ssrv, f"/stream/{t}", tok, {"Range": "bytes=1000-1999"})
    error_of(st, json.loads(raw), 404, "share_not_found")


def test_revocation_ends_hls(ssrv):
    t = tid(ssrv, "Demo v2")
    d = create(ssrv, track_id=t)
    tok = share_token(ssrv, d["id"])
    st, master = media(ssrv, f"/hls/{t}/master.m3u8", tok)
    assert st == 200, master
    rung = next(l for l in master.decode().splitlines() if l and not l.startswith("#")).split("/")[0]
    st, pl = media(ssrv, f"/hls/{t}/{rung}/playlist.m3u8", tok)
    assert st == 200
    st, seg = media(ssrv, f"/hls/{t}/{rung}/0.m4s", tok)
    assert st == 200 and len(seg) > 100
    st, _ = call(ssrv, "DELETE", f"/api/shares/{d['id']}", ssrv.backend)
    assert st == 204
    st, raw = media(ssrv, f"/hls/{t}/{rung}/1.m4s", tok)
    error_of(st, json.loads(raw), 404, "share_not_found")


# ------------------------------------------------------------ analytics


def test_analytics(ssrv):
    t = tid(ssrv, "Demo v1")
    d = create(ssrv, track_id=t, permissions=["stream", "download"])
    sid = d["id"]
    a = share_token(ssrv, sid)
    b = share_token(ssrv, sid)
    assert analytics(ssrv, sid) == {"plays": 0, "listeners": 2, "listening_ms": 0}

    # progressive: a request from the start is a play, a later range is not
    st, _ = media(ssrv, f"/stream/{t}", a)
    assert st == 200
    st, _ = media(ssrv, f"/stream/{t}", a, {"Range": "bytes=5000-5999"})
    assert st == 206
    st, _ = media(ssrv, f"/stream/{t}?format=mp3", b, {"Range": "bytes=0-999"})
    assert st in (200, 206)
    assert analytics(ssrv, sid)["plays"] == 2

    # HLS: the master playlist is a play, each segment its length
    st, master = media(ssrv, f"/hls/{t}/master.m3u8", b)
    assert st == 200
    rung = next(l for l in master.decode().splitlines() if l and not l.startswith("#")).split("/")[0]
    st, pl = media(ssrv, f"/hls/{t}/{rung}/playlist.m3u8", b)
    assert st == 200
    durs = [float(l.split(":")[1].rstrip(",")) for l in pl.decode().splitlines() if l.startswith("#EXTINF:")]
    for n in range(2):
        st, _ = media(ssrv, f"/hls/{t}/{rung}/{n}.m4s", b)
        assert st == 200
    got = analytics(ssrv, sid)
    assert got["plays"] == 3 and got["listeners"] == 2
    assert abs(got["listening_ms"] - 1000 * (durs[0] + durs[1])) <= 5, (got, durs[:2])

    # refused requests count nothing
    st, _ = media(ssrv, f"/stream/{tid(ssrv, 'Other')}", a)
    assert st == 403
    assert analytics(ssrv, sid) == got


# ------------------------------------------------------------- talasctl


def test_talasctl_shares(ssrv):
    d = create(ssrv, track_id=tid(ssrv, "Other"), permissions=["stream", "comment"])
    tok = share_token(ssrv, d["id"])
    cp = tf.run([str(tf.TALASCTL), "-c", str(ssrv.config_path), "shares", "ls"])
    line = next(l for l in cp.stdout.splitlines() if l.startswith(d["id"]))
    assert "stream comment" in line and tid(ssrv, "Other") in line, line
    cp = tf.run([str(tf.TALASCTL), "-c", str(ssrv.config_path), "--json", "shares"])
    doc = json.loads(cp.stdout)
    mine = next(x for x in doc["shares"] if x["id"] == d["id"])
    assert mine["listeners"] == 1 and mine["permissions"] == "stream comment"

    cp = tf.run([str(tf.TALASCTL), "-c", str(ssrv.config_path), "shares", "rm", d["id"]])
    assert cp.stdout == f"revoked {d['id']}\n"
    st, raw = media(ssrv, f"/stream/{tid(ssrv, 'Other')}?format=mp3", tok)
    error_of(st, json.loads(raw), 404, "share_not_found")
    cp = tf.run([str(tf.TALASCTL), "-c", str(ssrv.config_path), "shares", "rm", d["id"]], check=False)
    assert cp.returncode == 1 and "no such link" in cp.stderr
    cp = tf.run([str(tf.TALASCTL), "-c", str(ssrv.config_path), "shares", "frob"], check=False)
    assert cp.returncode == 2


# -------------------------------------------------------------- cluster


def test_cluster_mode_is_a_documented_501(talas_server, slib, keys, redis_server, pg_database):
    """No PostgreSQL store for links yet: cluster mode says so, clearly."""
    import cluster_fixtures as cf

    srv = talas_server([slib], start=False, name="node-a", workers=1)
    text = ak.config_with_auth(srv, ak.auth_yaml(keys, extra_keys=False))
    srv.write_config(text=text + cf.cluster_yaml("node-a", redis_server.address, pg_database[1]))
    r = srv.talasctl("db", "migrate")
    assert r.returncode == 0, (r.stdout, r.stderr)
    srv.start()
    tf.wait_for(lambda: cf.engines_ready(srv), 15, what="engines")
    backend = {"Authorization": f"Bearer {keys.backend_key}"}
    st, _, body = srv.get("/api/tracks?limit=10", headers=backend)
    t = json.loads(body)["tracks"][0]["id"]
    st, e = call(srv, "POST", "/api/shares", backend, {"track_id": t, "expires_in": 60, "permissions": ["stream"]})
    error_of(st, e, 501, "shares_unavailable")
    st, e = call(srv, "GET", "/api/shares", backend)
    error_of(st, e, 501, "shares_unavailable")
    st, e = unlock(srv, "AAAAAAAAAAAAAAAA")
    error_of(st, e, 501, "shares_unavailable")
