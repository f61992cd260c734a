"""The Subsonic calls on a user's own state (workers/subsonic/subsonic_user.c),
driven by the npm subsonic-api client against a real talas-master: stars
and ratings persist per user across a restart and a worker's kill -9,
getStarred2 lists them, setRating keeps to its bounds, and star still
publishes TrackLiked."""
import os
import signal

import pytest

import talas_fixtures as tf
from subsonic_fixtures import (PASSWORDS, add_user, alice, cluster_extra, error_code, lib,  # noqa: F401
                               node_client, rest_json, srv)

AUTH = {"username": "alice", "password": PASSWORDS["alice"]}


@pytest.fixture(scope="module")
def clib_for_stars(tmp_path_factory):
    d = tmp_path_factory.mktemp("starlib")
    tf.make_track(d / "x.mp3", "Star X", seconds=3, freq=300)
    return d


def starred2(srv):
    r = node_client(srv, AUTH, [["getStarred2", {}]])
    assert r[0]["status"] == "ok", r
    return r[0]["starred2"]


def test_stars_and_ratings_round_trip_and_persist(srv):
    tone = srv.tracks_by_title["Tone Two"]["id"]
    noise = srv.tracks_by_title["Noise One"]["id"]
    r = node_client(srv, AUTH, [
        ["star", {"id": [tone, noise]}],
        ["unstar", {"id": noise}],
        ["setRating", {"id": tone, "rating": 4}],
        ["setRating", {"id": noise, "rating": 2}],
    ])
    assert [x["status"] for x in r] == ["ok"] * 4, r
    got = starred2(srv)
    songs = {s["id"]: s for s in got.get("song", [])}
    assert list(songs) == [tone], got
    assert songs[tone]["userRating"] == 4 and songs[tone]["starred"].endswith("Z")
    # another user's stars are their own
    doc = rest_json(srv, "getStarred2", {"u": "bob", "p": PASSWORDS["bob"]})
    assert doc["status"] == "ok" and not doc["starred2"].get("song"), doc

    # a worker killed, then the whole server restarted: still there
    os.kill(srv.worker_pids()[0], signal.SIGKILL)
    assert [s["id"] for s in starred2(srv).get("song", [])] == [tone]
    srv.stop()
    srv.start(wait_scan=True)
    song = starred2(srv)["song"][0]
    assert song["id"] == tone and song["userRating"] == 4

    # rating 0 clears; unstar removes it from the list
    r = node_client(srv, AUTH, [["setRating", {"id": tone, "rating": 0}], ["unstar", {"id": tone}]])
    assert [x["status"] for x in r] == ["ok"] * 2, r
    assert not starred2(srv).get("song")


def test_set_rating_bounds_and_unknown_ids(srv):
    tone = srv.tracks_by_title["Tone Two"]["id"]
    assert error_code(rest_json(srv, "setRating", alice(id=tone, rating="6"))) == 0
    assert error_code(rest_json(srv, "setRating", alice(id=tone, rating="-1"))) == 0
    assert error_code(rest_json(srv, "setRating", alice(id=tone))) == 10
    assert error_code(rest_json(srv, "setRating", alice(id="AAAAAAAAAAAAAAAA", rating="3"))) == 70
    assert error_code(rest_json(srv, "star", alice())) == 10
    assert error_code(rest_json(srv, "star", alice(albumId="al" + "0" * 16))) == 70


def test_album_and_artist_stars(srv):
    doc = rest_json(srv, "getAlbumList2", alice(type="alphabeticalByName"))
    album = doc["albumList2"]["album"][0]
    assert rest_json(srv, "star", alice(albumId=album["id"], artistId=album["artistId"]))["status"] == "ok"
    got = starred2(srv)
    assert [a["id"] for a in got["album"]] == [album["id"]]
    assert [a["id"] for a in got["artist"]] == [album["artistId"]]
    old = rest_json(srv, "getStarred", alice())["starred"]
    assert [a["id"] for a in old["album"]] == [album["id"]] and old["album"][0]["isDir"] is True
    assert rest_json(srv, "unstar", alice(albumId=album["id"], artistId=album["artistId"]))["status"] == "ok"
    assert not starred2(srv).get("album")


def test_cluster_star_on_a_is_starred_on_b(talas_server, clib_for_stars, redis_server, pg_database, tmp_path):
    """Cluster mode: stars go to PostgreSQL, so a star and a rating made on
    node A are in getStarred2 on node B."""
    import cluster_fixtures as cf
    extra = cluster_extra(tmp_path)
    a, b = cf.two_nodes(talas_server, clib_for_stars, redis_server, pg_database, "k" * 40, extra)
    for srv in (a, b):  # accounts are each node's own
        add_user(srv, "alice", PASSWORDS["alice"])
    x = a.ids["Star X"]
    assert rest_json(a, "star", alice(id=x))["status"] == "ok"
    assert rest_json(a, "setRating", alice(id=x, rating="5"))["status"] == "ok"
    songs = rest_json(b, "getStarred2", alice())["starred2"]["song"]
    assert [(s["id"], s["userRating"]) for s in songs] == [(x, 5)]
