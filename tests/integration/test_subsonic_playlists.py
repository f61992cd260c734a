"""The Subsonic playlist calls (getPlaylists, getPlaylist, createPlaylist,
updatePlaylist, deletePlaylist) on Talas's own playlists.

- every call through npm's subsonic-api (subsonic/client.mjs), and its raw
  XML validated against the Subsonic 1.16.1 XSD with xmllint;
- every error: 10 (a missing parameter), 70 (no such playlist or song),
  50 (another user's private playlist, another user's list, a change by
  someone who is not the owner), 0 (a malformed index or flag);
- another user's private playlist is refused, a public one readable and
  listed, read-only;
- names and comments are stored exactly (markup, quotes, non-ASCII);
- /api/playlists shows the same details, lists and deletes, and every
  change is a PlaylistUpdated event on /api/ws;
- playlists survive a worker killed with SIGKILL and a restart;
- cluster mode: two nodes on one PostgreSQL (cluster_fixtures), a
  playlist created on A, updated on B, listed on A.

The library is generated with ffmpeg (test_subsonic's).
"""

import asyncio
import json
import os
import re
import secrets
import shutil
import signal
import xml.etree.ElementTree as ET
from urllib.parse import quote

import pytest

import auth_keys as ak
import cluster_fixtures as cf
import talas_fixtures as tf
from subsonic_fixtures import (PASSWORDS, add_user, error_code, make_library, node_client, recv_until, rest,
                               rest_json, serve, subsonic_server, ws_url, xsd_valid)

websockets = pytest.importorskip("websockets", reason="install Debian package python3-websockets")

BACKEND_KEY = secrets.token_urlsafe(32)
NAME = 'Road <trip> & "co" ☃'
COMMENT = "for the <b>drive</b> & back\nline two"
SCHEMA = cf.schema_version()


def as_user(user, **kw):
    return dict({"u": user, "p": PASSWORDS[user]}, **kw)


def auth(user):
    return {"username": user, "password": PASSWORDS[user]}


def backend():
    return {"Authorization": f"Bearer {BACKEND_KEY}"}


def configure(srv):
    srv.write_config(text=cf.with_backend_key(srv, BACKEND_KEY))


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    return make_library(tmp_path_factory.mktemp("splib"))


@pytest.fixture(scope="module")
def srv(tmp_path_factory, lib):
    yield from serve(tmp_path_factory.mktemp("spsrv"), lib, extra="  max_failed_logins: 0\n", backend_key=BACKEND_KEY)


def create(srv, user, name, songs=(), **kw):
    doc = rest_json(srv, "createPlaylist", as_user(user, name=name, songId=list(songs), **kw))
    assert doc["status"] == "ok", doc
    return doc["playlist"]


def entries(p):
    return [e["id"] for e in p.get("entry", [])]


# ---------------------------------------------------------- the calls

def test_every_call_through_the_client(srv):
    tone, noise, three = srv.ids["Tone Two"], srv.ids["Noise One"], srv.ids["Tone Three"]
    [made] = node_client(srv, auth("alice"), [["createPlaylist", {"name": NAME, "songId": [tone, noise]}]])
    assert made["status"] == "ok", made
    p = made["playlist"]
    pid = p["id"]
    assert pid != NAME and p["name"] == NAME and p["owner"] == "alice" and p["public"] is False
    assert p["songCount"] == 2 and p["duration"] == 10 and entries(p) == [tone, noise]
    # the client gives dates back as JavaScript prints them
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.000)?Z", p["created"])
    assert p["changed"] >= p["created"]
    assert p["created"][:4] != "1970"

    r = node_client(srv, auth("alice"), [
        ["updatePlaylist", {"playlistId": pid, "name": "renamed", "comment": COMMENT, "public": True,
                            "songIndexToRemove": [0], "songIdToAdd": [three, tone]}],
        ["getPlaylist", {"id": pid}],
        ["getPlaylists", {}],
        ["getPlaylists", {"username": "alice"}],
    ])
    assert [x["status"] for x in r] == ["ok"] * 4, r
    got = r[1]["playlist"]
    assert (got["name"], got["comment"], got["public"]) == ("renamed", COMMENT, True)
    assert entries(got) == [noise, three, tone] and got["songCount"] == 3 and got["duration"] == 13
    for lst in (r[2], r[3]):
        [mine] = [x for x in lst["playlists"]["playlist"] if x["id"] == pid]
        assert (mine["name"], mine["songCount"], mine["owner"], mine["public"]) == ("renamed", 3, "alice", True)
        assert "entry" not in mine

    # several indexes, a repeated one counting once, all of the playlist as it was
    r = node_client(srv, auth("alice"), [
        ["updatePlaylist", {"playlistId": pid, "songIndexToRemove": [2, 0, 2]}],
        ["getPlaylist", {"id": pid}],
        # createPlaylist with playlistId: the songs replaced
        ["createPlaylist", {"playlistId": pid, "songId": [tone, tone]}],
        ["deletePlaylist", {"id": pid}],
        ["getPlaylist", {"id": pid}],
    ])
    assert entries(r[1]["playlist"]) == [three]
    assert r[2]["status"] == "ok" and entries(r[2]["playlist"]) == [tone, tone]
    assert r[2]["playlist"]["name"] == "renamed"
    assert r[3]["status"] == "ok"
    assert error_code(r[4]) == 70

    # an empty playlist is kept
    empty = create(srv, "alice", "nothing yet")
    assert empty["songCount"] == 0 and entries(empty) == []
    assert rest_json(srv, "getPlaylist", as_user("alice", id=empty["id"]))["playlist"]["name"] == "nothing yet"


def test_errors(srv):
    tone = srv.ids["Tone Two"]
    pid = create(srv, "alice", "errors", [tone])["id"]
    cases = [
        ("getPlaylist", {}, 10),
        ("createPlaylist", {}, 10),
        ("updatePlaylist", {"name": "x"}, 10),
        ("deletePlaylist", {}, 10),
        ("getPlaylist", {"id": "no-such-playlist"}, 70),
        ("updatePlaylist", {"playlistId": "no-such-playlist", "name": "x"}, 70),
        ("deletePlaylist", {"id": "no-such-playlist"}, 70),
        ("getPlaylist", {"id": "x" * 600}, 70),
        ("updatePlaylist", {"playlistId": "x" * 600, "name": "x"}, 70),
        ("deletePlaylist", {"id": "x" * 600}, 70),
        ("createPlaylist", {"playlistId": "x" * 600, "songId": tone}, 70),
        ("createPlaylist", {"playlistId": "no-such-playlist", "songId": tone}, 70),
        ("createPlaylist", {"name": "bad song", "songId": "AAAAAAAAAAAAAAAA"}, 70),
        ("updatePlaylist", {"playlistId": pid, "songIdToAdd": "AAAAAAAAAAAAAAAA"}, 70),
        ("getPlaylists", {"username": "bob"}, 50),
        ("updatePlaylist", {"playlistId": pid, "songIndexToRemove": 1}, 0),
        ("updatePlaylist", {"playlistId": pid, "songIndexToRemove": "-1"}, 0),
        ("updatePlaylist", {"playlistId": pid, "songIndexToRemove": "x"}, 0),
        ("updatePlaylist", {"playlistId": pid, "public": "maybe"}, 0),
        ("createPlaylist", {"name": "x" * 1025}, 0),
        ("createPlaylist", {"name": b"not \xff UTF-8"}, 0),
        ("updatePlaylist", {"playlistId": pid, "comment": b"\xfe\xff"}, 0),
        ("updatePlaylist", {"playlistId": pid, "name": "x" * 1025}, 0),
        ("updatePlaylist", {"playlistId": pid, "songIndexToRemove": "99999999999999999999999"}, 0),
    ]
    for method, params, code in cases:
        doc = rest_json(srv, method, as_user("alice", **params))
        assert error_code(doc) == code, (method, params, doc)
    # nothing of the refused changes happened
    p = rest_json(srv, "getPlaylist", as_user("alice", id=pid))["playlist"]
    assert (p["name"], entries(p), p["public"]) == ("errors", [tone], False)
    # the XML error envelope too
    st, _, body = rest(srv, "getPlaylist", as_user("alice", id="no-such-playlist"))
    root = ET.fromstring(body)
    assert st == 200 and root.get("status") == "failed"
    assert root.find("{http://subsonic.org/restapi}error").get("code") == "70"


def test_private_refused_public_readable(srv):
    tone = srv.ids["Tone Two"]
    pid = create(srv, "alice", "alice only", [tone])["id"]

    def bob(method, **kw):
        return rest_json(srv, method, as_user("bob", **kw))

    assert error_code(bob("getPlaylist", id=pid)) == 50
    assert pid not in [p["id"] for p in bob("getPlaylists").get("playlists", {}).get("playlist", [])]
    assert rest_json(srv, "updatePlaylist", as_user("alice", playlistId=pid, public="true"))["status"] == "ok"
    got = bob("getPlaylist", id=pid)["playlist"]
    assert got["owner"] == "alice" and got["public"] is True and entries(got) == [tone]
    assert pid in [p["id"] for p in bob("getPlaylists")["playlists"]["playlist"]]
    # read-only for bob
    assert error_code(bob("updatePlaylist", playlistId=pid, name="bob's now")) == 50
    assert error_code(bob("updatePlaylist", playlistId=pid, songIdToAdd=tone)) == 50
    assert error_code(bob("createPlaylist", playlistId=pid, songId=tone)) == 50
    assert error_code(bob("deletePlaylist", id=pid)) == 50
    p = rest_json(srv, "getPlaylist", as_user("alice", id=pid))["playlist"]
    assert (p["name"], entries(p)) == ("alice only", [tone])
    # the same name for two users: two playlists
    mine = create(srv, "bob", "alice only")
    assert mine["id"] != pid and mine["owner"] == "bob"


def validate_xml(srv, tmp_path, method, params):
    st, _, body = rest(srv, method, params)
    assert st == 200
    return xsd_valid(tmp_path, method, body)


def test_xml_matches_xsd(srv, tmp_path):
    if shutil.which("xmllint") is None:
        pytest.fail("xmllint is missing: install Debian package libxml2-utils")
    tone = srv.ids["Tone Two"]
    root = validate_xml(srv, tmp_path, "createPlaylist", as_user("alice", name=NAME, songId=tone))
    assert root.get("status") == "ok"
    p = root.find("{http://subsonic.org/restapi}playlist")
    pid = p.get("id")
    assert p.get("name") == NAME
    calls = [
        ("updatePlaylist", {"playlistId": pid, "comment": COMMENT, "songIdToAdd": tone}),
        ("getPlaylist", {"id": pid}),
        ("getPlaylists", {}),
        ("deletePlaylist", {"id": pid}),
        ("getPlaylist", {"id": pid}),           # error 70
        ("getPlaylists", {"username": "bob"}),  # error 50
        ("deletePlaylist", {}),                 # error 10
    ]
    for method, params in calls:
        root = validate_xml(srv, tmp_path, method, as_user("alice", **params))
        if method == "getPlaylist" and root.get("status") == "ok":
            p = root.find("{http://subsonic.org/restapi}playlist")
            # stored exactly, rendered inert: the XML parser gives the text back
            assert (p.get("name"), p.get("comment")) == (NAME, COMMENT)


# ------------------------------------------------------ /api and events

def test_api_playlists_and_events(srv):
    tone, noise = srv.ids["Tone Two"], srv.ids["Noise One"]

    async def go():
        async with websockets.connect(ws_url(srv, "alice")) as ws:
            await ws.send(json.dumps({"command": "Subscribe", "command_id": "s", "events": ["PlaylistUpdated"]}))
            await recv_until(ws, lambda m: m.get("command_id") == "s")
            p = await asyncio.to_thread(create, srv, "alice", "events", [tone])
            pid = p["id"]
            got = [await recv_until(ws, lambda m: m.get("event") == "PlaylistUpdated")]
            r = await asyncio.to_thread(rest_json, srv, "updatePlaylist",
                                        as_user("alice", playlistId=pid, name="events 2", songIdToAdd=noise))
            assert r["status"] == "ok"
            # a Changed and an Added, perhaps through the master from the other worker
            got += [await recv_until(ws, lambda m: m.get("event") == "PlaylistUpdated") for _ in range(2)]
            st, _, body = await asyncio.to_thread(srv.get, f"/api/playlists/{pid}", backend(), "DELETE")
            assert st == 200, body
            got.append(await recv_until(ws, lambda m: m.get("event") == "PlaylistUpdated"))
            return pid, got

    pid, got = asyncio.run(asyncio.wait_for(go(), 60))
    assert all(e["playlist_id"] == pid for e in got)
    assert (got[0]["action"], got[0]["track_id"], got[0]["position"]) == ("Added", tone, 0)
    assert sorted(e["action"] for e in got[1:3]) == ["Added", "Changed"]
    added = next(e for e in got[1:3] if e["action"] == "Added")
    assert (added["track_id"], added["position"]) == (noise, 1)
    assert got[3]["action"] == "Deleted" and got[3]["deleted"] is True
    assert srv.get_json(f"/api/playlists/{pid}", expect=404)["error"]["code"] == "not_found"


def test_api_fields_list_delete(srv):
    tone = srv.ids["Tone Two"]
    p = create(srv, "alice", NAME, [tone])
    pid = p["id"]
    rest_json(srv, "updatePlaylist", as_user("alice", playlistId=pid, comment=COMMENT, public="true"))
    got = srv.get_json(f"/api/playlists/{quote(pid)}")
    assert (got["name"], got["comment"], got["public"], got["owner"]) == (NAME, COMMENT, True, "alice")
    assert got["created"] == p["created"] and got["changed"] >= got["created"]
    assert [t["track_id"] for t in got["tracks"]] == [tone]

    lst = srv.get_json("/api/playlists?user=bob")
    assert lst["user"] == "bob"
    [seen] = [x for x in lst["playlists"] if x["playlist_id"] == pid]
    assert (seen["name"], seen["public"], seen["track_count"]) == (NAME, True, 1)
    priv = create(srv, "alice", "private one")["id"]
    assert priv not in [x["playlist_id"] for x in srv.get_json("/api/playlists?user=bob")["playlists"]]
    assert priv in [x["playlist_id"] for x in srv.get_json("/api/playlists?user=alice")["playlists"]]

    # JSON errors
    assert srv.get_json("/api/playlists", expect=400)["error"]["code"] == "bad_request"
    st, _, body = srv.get(f"/api/playlists/{pid}", method="DELETE")
    assert st == 401 and json.loads(body)["error"]["code"] == "unauthorized"
    st, _, body = srv.get("/api/playlists/no-such", headers=backend(), method="DELETE")
    assert st == 404 and json.loads(body)["error"]["code"] == "not_found"
    st, _, body = srv.get(f"/api/playlists/{pid}", headers=backend(), method="DELETE")
    assert st == 200 and json.loads(body) == {"playlist_id": pid, "deleted": True}
    assert pid not in [x["playlist_id"] for x in srv.get_json("/api/playlists?user=alice")["playlists"]]


def test_api_delete_by_token(tmp_path, lib):
    """With auth.required: reading takes a token; a delete the owner's
    token (another user's is 403) or the backend key."""
    keys = ak.Keys(tmp_path / "keys")
    s = subsonic_server(tmp_path / "srv", lib)
    s.write_config(text=ak.config_with_auth(s, ak.auth_yaml(keys, extra_keys=False)))
    for name, pw in PASSWORDS.items():
        add_user(s, name, pw)
    s.start(wait_scan=True)

    def bearer(sub):
        return {"Authorization": f"Bearer {ak.pyjwt_token(keys, 'HS256', ak.claims(None, sub=sub), kid='k2')}"}

    try:
        pid = create(s, "alice", "mine")["id"]
        st, _, body = s.get("/api/playlists?user=alice")
        assert st == 401 and json.loads(body)["error"]["code"] == "unauthorized"
        st, _, body = s.get("/api/playlists?user=alice", headers=bearer("bob"))
        assert st == 403 and json.loads(body)["error"]["code"] == "forbidden", body
        st, _, body = s.get("/api/playlists?user=bob", headers=bearer("bob"))
        assert st == 200 and pid not in [x["playlist_id"] for x in json.loads(body)["playlists"]]
        st, _, body = s.get("/api/playlists?user=alice", headers=bearer("alice"))
        assert st == 200 and pid in [x["playlist_id"] for x in json.loads(body)["playlists"]]
        st, _, body = s.get("/api/playlists?user=alice", headers={"Authorization": f"Bearer {keys.backend_key}"})
        assert st == 200 and pid in [x["playlist_id"] for x in json.loads(body)["playlists"]]
        st, _, body = s.get(f"/api/playlists/{pid}", headers=bearer("bob"), method="DELETE")
        assert st == 403 and json.loads(body)["error"]["code"] == "forbidden", body
        st, _, body = s.get(f"/api/playlists/{pid}", headers=bearer("alice"), method="DELETE")
        assert st == 200 and json.loads(body)["deleted"] is True, body
        assert error_code(rest_json(s, "getPlaylist", as_user("alice", id=pid))) == 70
    finally:
        s.kill()


# --------------------------------------------- kill -9 and a restart

def test_survives_worker_kill_and_restart(tmp_path, lib):
    s = subsonic_server(tmp_path / "srv", lib)
    configure(s)
    for name, pw in PASSWORDS.items():
        add_user(s, name, pw)
    s.start(wait_scan=True)
    try:
        tone = {t["title"]: t["id"] for t in s.tracks()}["Tone Two"]
        pid = create(s, "alice", NAME, [tone], comment=COMMENT)["id"]
        rest_json(s, "updatePlaylist", as_user("alice", playlistId=pid, comment=COMMENT, public="true"))
        before = rest_json(s, "getPlaylist", as_user("alice", id=pid))["playlist"]
        old = s.worker_pids()
        for pid_ in old:
            os.kill(pid_, signal.SIGKILL)
        s.wait_worker_pids(2, timeout=20, exclude=old)
        assert rest_json(s, "getPlaylist", as_user("bob", id=pid))["playlist"] == before
        s.stop()
        s.start(wait_scan=True)
        assert rest_json(s, "getPlaylist", as_user("bob", id=pid))["playlist"] == before
        assert before["comment"] == COMMENT and before["name"] == NAME
    finally:
        s.kill()


# ---------------------------------------------------------- cluster mode

def test_cluster_created_on_a_updated_on_b(talas_server, tmp_path, lib, redis_server, pg_database):
    """Two nodes on one PostgreSQL: a playlist created on A, updated on B
    (details, a removal, an add), listed and read on A, deleted on B."""
    key = tmp_path / "subsonic.key"
    key.write_text(os.urandom(32).hex() + "\n")
    key.chmod(0o600)
    nodes = []
    for name in ("node-a", "node-b"):
        srv = talas_server([lib], start=False, name=name, workers=2)
        text = cf.with_backend_key(srv, BACKEND_KEY)
        text += f"subsonic:\n  enabled: true\n  password_key_file: {json.dumps(str(key))}\n"
        text += cf.cluster_yaml(name, redis_server.address, pg_database[1])
        srv.write_config(text=text)
        for user, pw in PASSWORDS.items():
            add_user(srv, user, pw)
        nodes.append(srv)
    a, b = nodes
    cf.migrate_and_start(a, b)
    ids = {t["title"]: t["id"] for t in a.tracks()}
    tone, noise, three = ids["Tone Two"], ids["Noise One"], ids["Tone Three"]

    made = create(a, "alice", NAME, [tone, noise])
    pid = made["id"]
    r = node_client(b, auth("alice"), [
        ["updatePlaylist", {"playlistId": pid, "name": "on b", "comment": COMMENT, "public": True,
                            "songIndexToRemove": [0], "songIdToAdd": [three]}],
        ["getPlaylist", {"id": pid}],
    ])
    assert r[0]["status"] == "ok", r
    assert entries(r[1]["playlist"]) == [noise, three]
    [lst] = node_client(a, auth("alice"), [["getPlaylists", {}]])
    [seen] = [p for p in lst["playlists"]["playlist"] if p["id"] == pid]
    assert (seen["name"], seen["comment"], seen["public"], seen["songCount"]) == ("on b", COMMENT, True, 2)
    assert seen["created"].replace(".000Z", "Z") == made["created"]
    got = rest_json(a, "getPlaylist", as_user("bob", id=pid))["playlist"]
    assert entries(got) == [noise, three] and got["owner"] == "alice"
    assert error_code(rest_json(a, "updatePlaylist", as_user("bob", playlistId=pid, name="x"))) == 50
    for index in (5, 2 ** 31, 2 ** 64 - 1):
        doc = rest_json(a, "updatePlaylist", as_user("alice", playlistId=pid, songIndexToRemove=index))
        assert error_code(doc) == 0 and "past the end" in doc["error"]["message"], doc
    api = a.get_json(f"/api/playlists/{pid}")
    assert (api["name"], api["comment"], api["public"]) == ("on b", COMMENT, True)
    assert pid in [x["playlist_id"] for x in b.get_json("/api/playlists?user=bob")["playlists"]]
    assert rest_json(b, "deletePlaylist", as_user("alice", id=pid))["status"] == "ok"
    assert error_code(rest_json(a, "getPlaylist", as_user("alice", id=pid))) == 70
    # the schema this build migrated to
    r = a.talasctl("db", "migrate")
    assert r.returncode == 0 and f"{SCHEMA}" in r.stdout, (r.stdout, r.stderr)
