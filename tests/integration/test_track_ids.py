"""Track ids made from the library's name and the path below it.

Two servers that reach one library by two paths (the folder and a symlink
to it) list the same ids; a name given in library.paths makes another
folder's ids the same too. A store written with the first id format (the
SHA-256 of the absolute path), with a playlist and per-track totals under
those ids, is migrated by the first scan: /api/tracks lists the new ids,
a URL signed for an old id still streams the same bytes, /api/tracks/{old}
redirects to the new id, and the playlist lists playable tracks.
"""

import base64
import hashlib
import json
import os
import shutil
import struct
import subprocess

import pytest

import talas_fixtures as tf
import auth_keys as ak

lmdb = pytest.importorskip("lmdb")


def new_id(name, rel):
    return base64.urlsafe_b64encode(hashlib.sha256(f"{name}/{rel}".encode()).digest()[:12]).decode()


def old_id(abspath):
    return base64.urlsafe_b64encode(hashlib.sha256(str(abspath).encode()).digest()[:12]).decode()


def make_lib(d):
    tf.make_track(d / "one.mp3", "Ids One", seconds=2, freq=330)
    tf.make_track(d / "Sub Dir" / "two.mp3", "Ids Two", seconds=2, freq=440)
    return {"one.mp3": "Ids One", "Sub Dir/two.mp3": "Ids Two"}


def ids_by_title(srv):
    return {t["title"]: t["id"] for t in srv.tracks()}


def with_libraries(srv, entries):
    """SRV's configuration with library.paths given as ENTRIES (YAML)."""
    text = srv.config_text()
    line = "  paths: [" + ", ".join(tf._q(p) for p in srv.library_paths) + "]"
    assert line in text
    return text.replace(line, "  paths:\n" + "".join(f"    - {e}\n" for e in entries))


def test_same_folder_by_two_paths_same_ids(tmp_path, talas_server):
    real = tmp_path / "music"
    rels = make_lib(real)
    link = tmp_path / "mnt-nas-music"
    os.symlink(real, link)
    copy = tmp_path / "elsewhere" / "Library Copy"
    shutil.copytree(real, copy)

    a = talas_server([real], workers=1, name="a")
    b = talas_server([link], workers=1, name="b")
    c = talas_server([copy], workers=1, start=False, name="c")
    c.write_config(text=with_libraries(c, [f"{{path: {tf._q(copy)}, name: music}}"]))
    c.start()
    d = talas_server([copy], workers=1, name="d")

    ids_a, ids_b, ids_c, ids_d = (ids_by_title(s) for s in (a, b, c, d))
    want = {title: new_id("music", rel) for rel, title in rels.items()}
    assert ids_a == want
    assert ids_b == want          # the root's symlink is resolved: its base name is "music"
    assert ids_c == want          # another folder, named "music" in the configuration
    assert set(ids_d.values()).isdisjoint(want.values())  # named "Library Copy": other ids
    # the same id plays the same file on both servers
    tid = want["Ids Two"]
    sa, _, body_a = a.get(f"/stream/{tid}")
    sb, _, body_b = b.get(f"/stream/{tid}")
    assert sa == sb == 200 and body_a == body_b == (real / "Sub Dir" / "two.mp3").read_bytes()


def test_two_libraries_with_one_name_is_a_config_error(tmp_path, talas_server):
    srv = talas_server([tmp_path / "a" / "music", tmp_path / "b" / "music"], start=False)
    cp = subprocess.run([str(tf.TALAS_MASTER), "-t", "-c", str(srv.config_path)],
                        capture_output=True, text=True, timeout=30)
    assert cp.returncode == 1
    assert "library.paths[1].name: \"music\" is already the name of library.paths[0]" in cp.stderr
    assert str(tmp_path / "a" / "music") in cp.stderr


# ------------------------------------------------------------ migration

def rstr(s):
    b = s.encode()
    return struct.pack("<I", len(b)) + b + b"\0"


def old_track_record(tid, path, title):
    """A track record in the layout the catalog reads (version 1), keyed by
    an id of the first format."""
    st = os.stat(path)
    mtime_ns = st.st_mtime_ns
    head = struct.pack("<BBQIIQQqQ", 1, 0, int(tf.ffprobe_duration_ms(path)), 44100, 1, 64000,
                       st.st_size, mtime_ns, 1700000000)
    return head + b"".join(rstr(x) for x in (tid, str(path), title, "Talas Fixtures", "Extra",
                                             "mp3", "mp3", "audio/mpeg", ""))


def write_old_store(storage, lib, rels):
    """The store of a server of the first id format: tracks, their path
    index, a playlist and per-track totals, all under the old ids."""
    env = lmdb.open(str(storage), map_size=256 << 20, max_dbs=32, subdir=True)
    tracks = env.open_db(b"tracks")
    paths = env.open_db(b"track_paths")
    playlists = env.open_db(b"playlists")
    plays = env.open_db(b"track_plays")
    listeners = env.open_db(b"track_listeners")
    olds = {}
    with env.begin(write=True) as txn:
        for rel, title in rels.items():
            path = os.path.realpath(lib / rel)
            tid = old_id(path)
            olds[title] = tid
            txn.put(tid.encode(), old_track_record(tid, path, title), db=tracks)
            txn.put(path.encode(), tid.encode(), db=paths)
        two = olds["Ids Two"]
        pl = (struct.pack("<B", 2) + rstr("") + struct.pack("<I", 0) + struct.pack("<I", 2)
              + rstr(olds["Ids One"]) + rstr(two))
        txn.put(b"old-list", pl, db=playlists)
        txn.put(two.encode(), struct.pack("<BQQQ", 2, 7, 2, 123000), db=plays)
        txn.put(two.encode() + b"\0alice", b"", db=listeners)
        txn.put(two.encode() + b"\0bob", b"", db=listeners)
    env.close()
    return olds


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    return ak.Keys(tmp_path_factory.mktemp("keys"))


def test_old_store_is_migrated_and_old_ids_keep_working(tmp_path, talas_server, keys):
    lib = tmp_path / "music"
    rels = make_lib(lib)
    srv = talas_server([lib], workers=2, start=False)
    olds = write_old_store(srv.storage_path, lib, rels)
    news = {title: new_id("music", rel) for rel, title in rels.items()}
    assert set(olds.values()).isdisjoint(news.values())
    srv.write_config(text=ak.config_with_auth(srv, ak.auth_yaml(keys, extra_keys=False)))
    srv.start()
    backend = {"Authorization": f"Bearer {keys.backend_key}"}

    # the catalog lists the new ids only, each track once
    listed = srv.get_json("/api/tracks?limit=100", headers=backend)["tracks"]
    assert sorted((t["title"], t["id"]) for t in listed) == sorted(news.items())

    # a URL signed for an old id before the upgrade streams the same bytes
    two_old, two_new = olds["Ids Two"], news["Ids Two"]
    data = (lib / "Sub Dir" / "two.mp3").read_bytes()
    tok = ak.pyjwt_token(keys, "HS256", ak.claims(two_old), kid="k2")
    st, hdrs, body = srv.get(f"/stream/{two_old}?token={tok}")
    assert st == 200 and body == data
    st, _, body = srv.get(f"/stream/{two_old}", headers={"Range": "bytes=10-19",
                                                          "Authorization": f"Bearer {tok}"})
    assert st == 206 and body == data[10:20]
    # ... and its token is for the old id only (the claim is the URL's id)
    st, _, _ = srv.get(f"/stream/{two_new}?token={tok}")
    assert st == 403
    # the decoding routes too: a preview and the waveform, under the old id
    st, hdrs, body = srv.get(f"/preview/{two_old}?token={tok}")
    assert st == 200 and hdrs.get("content-type") == "audio/mpeg" and len(body) > 1000
    st, _, body = srv.get(f"/api/tracks/{two_old}/peaks?points=8&token={tok}")
    assert st == 200 and len(json.loads(body)["max"]) == 8

    # /api/tracks/{old}: a permanent redirect to the new id, the track as body
    st, hdrs, body = srv.get(f"/api/tracks/{two_old}", headers=backend)
    assert st == 308
    assert hdrs.get("location") == f"/api/tracks/{two_new}"
    assert json.loads(body)["id"] == two_new
    assert srv.get_json(f"/api/tracks/{two_new}", headers=backend)["title"] == "Ids Two"

    # the playlist stored with old ids lists the tracks, playable, by their new ids
    pl = srv.get_json("/api/playlists/old-list", headers=backend)
    assert [t["track_id"] for t in pl["tracks"]] == [news["Ids One"], two_new]
    assert [t["title"] for t in pl["tracks"]] == ["Ids One", "Ids Two"]
    for t in pl["tracks"]:
        tok_new = ak.pyjwt_token(keys, "HS256", ak.claims(t["track_id"]), kid="k2")
        st, _, _ = srv.get(f"/stream/{t['track_id']}?token={tok_new}", method="HEAD")
        assert st == 200

    # the totals moved with the track
    a = srv.get_json(f"/api/analytics/tracks/{two_new}", headers=backend)
    assert (a["plays"], a["listeners"], a["total_listening_time_ms"]) == (7, 2, 123000)

    assert "track ids: 2 track(s) moved" in tf.read_text(srv.error_log)

    # once: a rescan after a restart moves nothing and the old ids still resolve
    srv.stop()
    env = lmdb.open(str(srv.storage_path), max_dbs=32, readonly=True, lock=False)
    with env.begin() as txn:
        assert txn.get(b"track_ids", db=env.open_db(b"meta", txn=txn)) == b"\x02"
        aliases = env.open_db(b"track_aliases", txn=txn)
        assert txn.get(two_old.encode(), db=aliases) == b"\x01" + rstr(two_new)
    env.close()
    srv.start()
    assert tf.read_text(srv.error_log).count("track ids: 2 track(s) moved") == 1
    st, _, body = srv.get(f"/stream/{two_old}?token={tok}")
    assert st == 200 and body == data
