"""The Subsonic play queue and now playing (workers/subsonic/subsonic_queue.c),
against a real talas-master: savePlayQueue / getPlayQueue round trip
through npm's subsonic-api and as raw XML validated against the Subsonic
XSD, the queue cleared, its limit, kept from other users, surviving a
worker's kill -9 and a restart, shared by two cluster nodes through
PostgreSQL; getNowPlaying shows two users whose "now playing" scrobbles
landed on two different workers, and in cluster mode on another node."""
import json
import os
import secrets
import signal
import xml.etree.ElementTree as ET
from urllib.parse import urlencode

import pytest

import talas_fixtures as tf
from subsonic_fixtures import (PASSWORDS, add_user, alice, cluster_extra, error_code, lib,  # noqa: F401
                               node_client, rest, rest_json, serve, srv, xsd_valid)

AUTH = {"username": "alice", "password": PASSWORDS["alice"]}
# OpenSubsonic's additions to 1.16.1 that its XSD does not know; Talas's
# ids are strings, as OpenSubsonic has them, where 1.16.1 has playQueue's
# current an int


def bob(**kw):
    return dict({"u": "bob", "p": PASSWORDS["bob"]}, **kw)


def validate_xml(srv, tmp_path, method, params):
    st, _, body = rest(srv, method, params)
    assert st == 200
    assert ET.fromstring(body).get("status") == "ok", (method, body[:400])

    def fix(e):
        if e.tag.endswith("playQueue"):
            e.attrib.pop("current", None)
    xsd_valid(tmp_path, method, body, fix=fix)
    return ET.fromstring(body)


def queue(srv, **who):
    doc = rest_json(srv, "getPlayQueue", who or alice())
    assert doc["status"] == "ok", doc
    return doc.get("playQueue")


def test_save_get_round_trip(srv, tmp_path):
    tone = srv.tracks_by_title["Tone Two"]["id"]
    noise = srv.tracks_by_title["Noise One"]["id"]
    r = node_client(srv, AUTH, [
        ["savePlayQueue", {"id": [noise, tone, noise], "current": tone, "position": 1234}],
        ["getPlayQueue", {}],
    ])
    assert [x["status"] for x in r] == ["ok"] * 2, r
    q = r[1]["playQueue"]
    assert [e["id"] for e in q["entry"]] == [noise, tone, noise]
    assert q["current"] == tone and q["position"] == 1234
    assert q["username"] == "alice" and q["changed"].endswith("Z")
    assert q["changedBy"]  # the npm client's "c"
    assert q["entry"][1]["title"] == "Tone Two"

    # the same as raw XML, valid against the XSD, with the client's name
    # stored exactly as sent
    name = "my <player> & \"co\" \u00e9"
    assert rest_json(srv, "savePlayQueue", alice(id=[tone, noise], current=noise, position="5", c=name))["status"] == "ok"
    root = validate_xml(srv, tmp_path, "getPlayQueue", alice())
    pq = root.find("{http://subsonic.org/restapi}playQueue")
    assert pq.get("changedBy") == name and pq.get("current") == noise and pq.get("position") == "5"
    assert [e.get("id") for e in pq.findall("{http://subsonic.org/restapi}entry")] == [tone, noise]

    # bob sees nothing of alice's queue, and his own stays his
    assert queue(srv, **bob()) is None
    assert rest_json(srv, "savePlayQueue", bob(id=tone))["status"] == "ok"
    assert [e["id"] for e in queue(srv, **bob())["entry"]] == [tone]
    assert [e["id"] for e in queue(srv)["entry"]] == [tone, noise]

    # no id clears; an empty queue answers an empty response
    assert rest_json(srv, "savePlayQueue", alice())["status"] == "ok"
    assert queue(srv) is None
    assert [e["id"] for e in queue(srv, **bob())["entry"]] == [tone]
    assert rest_json(srv, "savePlayQueue", bob())["status"] == "ok"


def test_limits_and_bad_input(srv):
    tone = srv.tracks_by_title["Tone Two"]["id"]
    noise = srv.tracks_by_title["Noise One"]["id"]
    assert rest_json(srv, "savePlayQueue", alice(id=[tone, noise], current=tone))["status"] == "ok"
    # 1001 songs: refused, in a POST (too long for a query), and nothing changed
    st, _, body = rest(srv, "savePlayQueue", dict(alice(id=[tone] * 1001), f="json"), post=True)
    assert st == 200 and b'"failed"' in body and b"at most 1000" in body, body[:300]
    st, _, body = rest(srv, "savePlayQueue", dict(alice(id=[tone] * 1000), f="json"), post=True)
    assert st == 200 and b'"ok"' in body, body[:300]
    assert len(queue(srv)["entry"]) == 1000
    assert error_code(rest_json(srv, "savePlayQueue", alice(id="AAAAAAAAAAAAAAAA"))) == 70
    assert error_code(rest_json(srv, "savePlayQueue", alice(id=tone, current=noise))) == 0
    assert error_code(rest_json(srv, "savePlayQueue", alice(id=tone, current=tone, position="-1"))) == 0
    assert error_code(rest_json(srv, "savePlayQueue", alice(id=tone, current=tone, position="x"))) == 0
    assert error_code(rest_json(srv, "savePlayQueue", alice(id=tone, c="c" * 300))) == 0
    assert len(queue(srv)["entry"]) == 1000
    assert rest_json(srv, "savePlayQueue", alice())["status"] == "ok"
    # the most songs one scrobble takes, each a play after the other on the
    # worker's loop: answered, and the worker still there
    pids = srv.worker_pids()
    st, _, body = rest(srv, "scrobble", dict(alice(id=[tone, noise] * 250), f="json"), post=True)
    assert st == 200 and b'"ok"' in body, body[:300]
    assert srv.worker_pids() == pids


def test_survives_kill_and_restart(srv):
    tone = srv.tracks_by_title["Tone Two"]["id"]
    noise = srv.tracks_by_title["Noise One"]["id"]
    assert rest_json(srv, "savePlayQueue", alice(id=[tone, noise], current=noise, position="777"))["status"] == "ok"
    os.kill(srv.worker_pids()[0], signal.SIGKILL)
    q = queue(srv)
    assert [e["id"] for e in q["entry"]] == [tone, noise] and q["position"] == 777
    srv.stop()
    srv.start(wait_scan=True)
    q = queue(srv)
    assert [e["id"] for e in q["entry"]] == [tone, noise] and q["current"] == noise and q["position"] == 777
    assert rest_json(srv, "savePlayQueue", alice())["status"] == "ok"


BACKEND_KEY = secrets.token_urlsafe(32)


@pytest.fixture(scope="module")
def nsrv(tmp_path_factory, lib):
    """A server of two workers whose settings the backend key may change."""
    workdir = tmp_path_factory.mktemp("npsrv")
    yield from serve(workdir, lib, extra="  max_failed_logins: 0\n", backend_key=BACKEND_KEY)


def share_listening(srv, user, on):
    st, _, body = srv.get(f"/api/users/{user}/settings", method="PUT",
                          headers={"Authorization": f"Bearer {BACKEND_KEY}", "Content-Type": "application/json"},
                          body=json.dumps({"share_listening": on}).encode())
    assert st == 200, body


def now_playing(srv, **who):
    doc = rest_json(srv, "getNowPlaying", who or alice())
    assert doc["status"] == "ok", doc
    return doc["nowPlaying"].get("entry", [])


def test_now_playing_two_users_two_workers(nsrv, tmp_path):
    """A scrobble with submission=false is "now playing": alice's and
    bob's, made until they landed on two different workers (each entry's
    playerId is the worker that recorded it), show in getNowPlaying from
    any worker; a finished play (submission=true) does not; a user who does
    not share his listening is shown to himself only."""
    srv = nsrv
    share_listening(srv, "alice", True)
    share_listening(srv, "bob", True)
    tone = srv.tracks_by_title["Tone Two"]["id"]
    noise = srv.tracks_by_title["Noise One"]["id"]
    workers = set(srv.worker_pids())
    assert len(workers) == 2
    pids = {}
    for i in range(40):
        user = ("alice", "bob")[i % 2]
        track = (tone, noise)[(i // 2) % 2]  # a new track each time: a new session
        who = alice() if user == "alice" else bob()
        assert rest_json(srv, "scrobble", dict(who, id=track, submission="false", c="tester"))["status"] == "ok"
        entries = {e["username"]: e for e in now_playing(srv)}
        assert entries[user]["id"] == track
        pids = {u: e["playerId"] for u, e in entries.items()}
        if len(pids) == 2 and pids["alice"] != pids["bob"]:
            break
    assert len(pids) == 2 and pids["alice"] != pids["bob"] and set(pids.values()) <= workers, pids
    for e in now_playing(srv, **bob()):
        assert e["minutesAgo"] == 0 and e["playerName"] and e["title"] in ("Tone Two", "Noise One")
    validate_xml(srv, tmp_path, "getNowPlaying", alice())

    # listening not shared: bob's own view has him, alice's does not
    share_listening(srv, "bob", False)
    assert [e["username"] for e in now_playing(srv)] == ["alice"]
    assert sorted(e["username"] for e in now_playing(srv, **bob())) == ["alice", "bob"]

    # a play scrobbled as done ends alice's "now playing"
    assert rest_json(srv, "scrobble", alice(id=tone))["status"] == "ok"
    assert [e["username"] for e in now_playing(srv)] == []
    assert [e["username"] for e in now_playing(srv, **bob())] == ["bob"]


def test_cluster_queue_saved_on_a_read_on_b(talas_server, redis_server, pg_database, tmp_path):
    """Cluster mode: the queue goes to PostgreSQL (schema version of this
    build, src/store/pg_schema.h), so one saved on node A is read on B; the
    playback states are in Redis, so "now playing" is the same on both."""
    import cluster_fixtures as cf
    d = tmp_path / "lib"
    d.mkdir()
    tf.make_track(d / "q1.mp3", "Queue One", seconds=2, freq=330)
    tf.make_track(d / "q2.mp3", "Queue Two", seconds=2, freq=440)
    extra = cluster_extra(tmp_path)
    a, b = cf.two_nodes(talas_server, d, redis_server, pg_database, "k" * 40, extra)
    for s in (a, b):  # accounts are each node's own
        add_user(s, "alice", PASSWORDS["alice"])
    one, two = a.ids["Queue One"], a.ids["Queue Two"]
    assert rest_json(a, "savePlayQueue", alice(id=[two, one], current=one, position="42", c="phone"))["status"] == "ok"
    q = rest_json(b, "getPlayQueue", alice())["playQueue"]
    assert [e["id"] for e in q["entry"]] == [two, one]
    assert q["current"] == one and q["position"] == 42 and q["changedBy"] == "phone"
    # cleared on B, gone on A
    assert rest_json(b, "savePlayQueue", alice())["status"] == "ok"
    assert "playQueue" not in rest_json(a, "getPlayQueue", alice())

    # now playing: the playback state is in Redis, so a scrobble on A is
    # "now playing" on B, and a finished play on B ends it on A
    assert rest_json(a, "scrobble", alice(id=two, submission="false"))["status"] == "ok"
    entries = rest_json(b, "getNowPlaying", alice())["nowPlaying"]["entry"]
    assert [(e["username"], e["id"], e["minutesAgo"]) for e in entries] == [("alice", two, 0)], entries
    assert rest_json(b, "scrobble", alice(id=one))["status"] == "ok"
    assert not rest_json(a, "getNowPlaying", alice())["nowPlaying"].get("entry"), "still now playing"


def test_stream_is_now_playing_and_one_play(nsrv):
    """A stream from its start is "now playing"; more range requests of the
    same track, the app's scrobble with submission=false then its scrobble
    of the finished play make one listening session: one play."""
    srv = nsrv
    title = sorted(t for t in srv.tracks_by_title if t not in ("Tone Two", "Noise One"))[0]
    track = srv.tracks_by_title[title]["id"]
    before = srv.get_json(f"/api/analytics/tracks/{track}")["plays"]
    q = urlencode(dict(bob(id=track), c="tester"))
    st, _, body = srv.get(f"/rest/stream?{q}")
    assert st == 200 and len(body) > 1000
    entries = [e for e in now_playing(srv, **bob()) if e["username"] == "bob"]
    assert [(e["id"], e["playerName"]) for e in entries] == [(track, "subsonic")], entries
    st, _, _ = srv.get(f"/rest/stream?{q}", headers={"Range": "bytes=1000-"})
    assert st == 206
    assert rest_json(srv, "scrobble", bob(id=track, submission="false"))["status"] == "ok"
    assert rest_json(srv, "scrobble", bob(id=track))["status"] == "ok"
    assert srv.get_json(f"/api/analytics/tracks/{track}")["plays"] == before + 1
    assert not [e for e in now_playing(srv, **bob()) if e["username"] == "bob"]
    # a download is not a listening
    st, _, _ = srv.get(f"/rest/download?{q}")
    assert st == 200
    assert not [e for e in now_playing(srv, **bob()) if e["username"] == "bob"]
