"""Security review: what an attacker, or a careless operator, could turn
against a Talas server, checked on a real talas-master.

- track ids never reach outside the library, however the path is spelled;
- symbolic links out of the library are refused by the scanner, and at
  serve time when a file or a directory becomes such a link after the scan
  (original and transcode);
- no secret (HMAC secret, backend key, token) is ever written to a log,
  even at log.level debug;
- loose modes of secret files and of the configuration are warned about,
  at start and by talas-master -t;
- the workers run as user:/group: (root only: the master binds as root,
  then its children switch).
The control socket does not exist yet: not covered here.
"""

import json
import os
import pwd
import grp
import re
import secrets
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

import talas_fixtures as tf
import auth_keys as ak

SECRET_MARK = "root:x:0:0"


# -------------------------------------------------------- ids and paths

TRAVERSALS = [
    "/stream/../../../../../../etc/passwd",
    "/stream/..%2f..%2f..%2f..%2f..%2fetc%2fpasswd",
    "/stream/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
    "/stream/AAAAAAAAAAAAAAAA/../../../../etc/passwd",
    "/stream/%2fetc%2fpasswd",
    "/stream//etc/passwd",
    "/stream/....//....//etc/passwd",
    "/stream/etc%00passwd0000000",
    "/stream/AAAAAAAAAAAAAAA%2f?profile=mp3",
    "/preview/..%2f..%2f..%2fetc%2fpasswd",
    "/hls/..%2f..%2f..%2fetc%2fpasswd/master.m3u8",
    "/hls/AAAAAAAAAAAAAAAA/..%2f..%2f..%2fetc/playlist.m3u8",
    "/api/tracks/..%2f..%2f..%2fetc%2fpasswd",
    "/api/tracks/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
]


@pytest.mark.parametrize("path", TRAVERSALS)
def test_track_ids_cannot_reach_outside_the_library(server, path):
    raw = tf.raw_exchange(server.port, f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                          .encode(), timeout=10)
    status = tf.parse_status_line(raw)
    assert status in (400, 404, 405), (path, raw[:300])
    assert SECRET_MARK.encode() not in raw
    head, _, body = raw.partition(b"\r\n\r\n")
    if path.startswith(("/stream", "/api", "/hls", "/preview")):
        assert b"application/json" in head.lower(), (path, head)
    assert server.health()["status"] == "ok"


# ------------------------------------------------------------- symlinks

def test_symlinks_out_of_the_library(talas_server, tmp_path):
    lib, outside = tmp_path / "lib", tmp_path / "outside"
    tf.make_track(lib / "inside.mp3", "Inside", seconds=3, freq=300)
    tf.make_track(lib / "sub" / "deep.mp3", "Deep", seconds=3, freq=350)
    tf.make_track(outside / "secret.mp3", "Outside Secret", seconds=3, freq=400)
    tf.make_track(outside / "deep.mp3", "Outside Deep", seconds=4, freq=450)
    tf.make_track(outside / "inside.mp3", "Outside Inside", seconds=4, freq=500)
    os.symlink(outside / "secret.mp3", lib / "link.mp3")
    os.symlink(outside, lib / "linkdir")
    srv = talas_server([lib])
    titles = {t["title"] for t in srv.tracks()}
    assert titles == {"Inside", "Deep"}, titles
    log = tf.read_text(srv.error_log, limit=200000)
    assert "symlink leads outside the library folders, not followed" in log

    ids = {t["title"]: t["id"] for t in srv.tracks()}
    inside = (lib / "inside.mp3").read_bytes()
    st, _, body = srv.get(f"/stream/{ids['Inside']}")
    assert st == 200 and body == inside
    st, _, body = srv.get(f"/stream/{ids['Deep']}?profile=mp3", timeout=60)
    assert st == 200

    # After the scan: the file becomes a link out, the directory too.
    os.rename(lib / "inside.mp3", tmp_path / "inside.mp3.old")
    os.symlink(outside / "inside.mp3", lib / "inside.mp3")
    os.rename(lib / "sub", tmp_path / "sub.old")
    os.symlink(outside, lib / "sub")
    time.sleep(1.1)  # the file cache keeps an open file one second
    out_bytes = (outside / "inside.mp3").read_bytes()
    for path in (f"/stream/{ids['Inside']}", f"/stream/{ids['Deep']}"):
        st, h, body = srv.get(path, headers={"Range": "bytes=0-"})
        assert st == 403, (path, st, body[:200])
        assert json.loads(body)["error"]["code"] == "outside_library" if isinstance(
            json.loads(body).get("error"), dict) else "outside_library" in body.decode()
        assert body != out_bytes
    # every other media route answers the same (test_bad_input.py plays them all)
    for path in (f"/stream/{ids['Inside']}?profile=low", f"/preview/{ids['Inside']}",
                 f"/stream/{ids['Deep']}?profile=low", f"/hls/{ids['Inside']}/high/0.m4s",
                 f"/api/tracks/{ids['Deep']}/peaks"):
        st, h, body = srv.get(path, timeout=60)
        assert st == 403, (path, st, body[:200])
        assert json.loads(body)["error"]["code"] == "outside_library", body[:200]
    log = tf.read_text(srv.error_log, limit=500000)
    assert "leads through a symbolic link since the last scan: refused" in log
    # a rescan drops them; the workers are all still there
    srv.talasctl("scan", check=True)
    assert {t["title"] for t in srv.tracks()} == set()
    assert len(srv.worker_pids()) == 2


# ------------------------------------------------------------- secrets

def test_no_secret_is_ever_logged(talas_server, tmp_path):
    websockets = pytest.importorskip("websockets")
    keys = ak.Keys(tmp_path / "keys")
    lib = tmp_path / "lib"
    tf.make_track(lib / "a.mp3", "Track A", seconds=3, freq=300)
    srv = talas_server([lib], start=False, log_level="debug", access_format="combined")
    srv.write_config(text=ak.config_with_auth(srv, ak.auth_yaml(keys)))
    srv.start(wait_scan=True)
    tid = srv.tracks()[0]["id"] if srv.get("/api/tracks")[0] == 200 else None
    backend = {"Authorization": f"Bearer {keys.backend_key}", "Content-Type": "application/json"}
    doc = srv.get_json("/api/tracks", headers=backend)
    tid = doc["tracks"][0]["id"]
    tokens = []
    st, _, body = srv.get("/api/stream-url", method="POST", headers=backend,
                          body=json.dumps({"track_id": tid, "user_id": "u1"}).encode())
    assert st == 200, body
    url = json.loads(body)["url_signed"]
    tokens.append(url.split("token=", 1)[1])
    for kind in ("hls", "preview"):
        st, _, body = srv.get("/api/stream-url", method="POST", headers=backend,
                              body=json.dumps({"track_id": tid, "kind": kind}).encode())
        tokens.append(json.loads(body)["url_signed"].split("token=", 1)[1])
    mine = ak.pyjwt_token(keys, "HS256", ak.claims(tid), kid="k2", which="HS256")
    tokens.append(mine)
    # good and bad uses of each
    assert srv.get(f"/stream/{tid}?token={tokens[0]}")[0] == 200
    assert srv.get(f"/stream/{tid}", headers={"Authorization": f"Bearer {mine}"})[0] == 200
    assert srv.get(f"/stream/{tid}?token={mine[:-2]}xx")[0] == 401
    assert srv.get(f"/stream/{tid}?profile=low&token={mine}", timeout=60)[0] == 200
    assert srv.get(f"/hls/{tid}/master.m3u8?token={tokens[1]}")[0] == 200
    assert srv.get("/api/tracks", headers={"Authorization": "Bearer " + keys.backend_key[:-1] + "x"})[0] == 401
    assert srv.get("/api/stream-url", method="POST",
                   headers={"Authorization": "Basic " + keys.backend_key},
                   body=b"{}")[0] == 401
    # a token in the WebSocket query string
    import asyncio

    async def ws():
        try:
            async with websockets.connect(f"ws://127.0.0.1:{srv.port}/api/ws?user_id=u1&token={mine}",
                                          open_timeout=5) as c:
                await c.send(json.dumps({"command": "Ping", "command_id": "p"}))
                await asyncio.wait_for(c.recv(), 5)
        except Exception:  # noqa: BLE001 - refused or not: only the logs matter here
            pass
    asyncio.run(ws())
    srv.reload()
    time.sleep(1.5)
    srv.send_signal(__import__("signal").SIGUSR1)
    time.sleep(0.5)
    srv.stop()

    logs = {p.name: p.read_bytes() for p in (srv.error_log, srv.access_log, srv.stdout_path,
                                            srv.stderr_path) if p.exists()}
    assert logs["error.log"] and logs["access.log"]
    secrets_ = {"HS256 secret": keys.secret["HS256"], "old HS256 secret": keys.secret["HS256_old"],
                "HS384 secret": keys.secret["HS384"], "HS512 secret": keys.secret["HS512"],
                "backend key": keys.backend_key.encode()}
    for i, t in enumerate(tokens):
        secrets_[f"token {i}"] = t.encode()
        secrets_[f"token {i} signature"] = t.rsplit(".", 1)[1].encode()
    for k in ("rsa_priv", "ec_priv"):
        pem = getattr(keys, k)
        secrets_[k] = b"".join(pem.splitlines()[1:3])
    for name, data in logs.items():
        for what, s in secrets_.items():
            assert s not in data, f"{what} found in {name}"


# ------------------------------------------------------------ file modes

WARN_SECRET = re.compile(r"holds a secret, chmod 600 it")
WARN_CONF = re.compile(r"configuration file .* is writable by others")


def test_loose_modes_are_warned_about(talas_server, tmp_path):
    keys = ak.Keys(tmp_path / "keys")
    lib = tmp_path / "lib"
    tf.make_track(lib / "a.mp3", "Track A", seconds=3, freq=300)
    srv = talas_server([lib], start=False)
    srv.write_config(text=ak.config_with_auth(srv, ak.auth_yaml(keys, extra_keys=False)))
    secret = keys.files["HS256"]
    backend = keys.files["backend"]

    def check():
        return tf.run([tf.TALAS_MASTER, "-t", "-c", srv.config_path], check=False)

    for f in (secret, backend):
        os.chmod(f, 0o600)
    os.chmod(srv.config_path, 0o644)
    cp = check()
    assert cp.returncode == 0, cp.stderr
    assert not WARN_SECRET.search(cp.stderr) and not WARN_CONF.search(cp.stderr), cp.stderr

    os.chmod(secret, 0o644)
    os.chmod(backend, 0o640)
    os.chmod(srv.config_path, 0o666)
    cp = check()
    assert cp.returncode == 0, cp.stderr  # a warning, not an error
    assert re.search(rf'"{re.escape(str(secret))}" is readable by others \(mode 0644\)', cp.stderr), cp.stderr
    assert re.search(rf'"{re.escape(str(backend))}" is readable by its group \(mode 0640\)', cp.stderr), \
        cp.stderr
    assert WARN_CONF.search(cp.stderr), cp.stderr

    srv.start(wait_scan=False)
    log = tf.read_text(srv.error_log, limit=200000)
    assert len(WARN_SECRET.findall(log)) == 2 and WARN_CONF.search(log), log
    # and again at a reload, fixed this time
    for f in (secret, backend):
        os.chmod(f, 0o600)
    os.chmod(srv.config_path, 0o644)
    n = len(WARN_SECRET.findall(tf.read_text(srv.error_log, limit=200000)))
    srv.reload()
    tf.wait_for(lambda: "reloading: generation" in tf.read_text(srv.error_log, limit=200000), 10,
                what="the reload")
    time.sleep(0.5)
    assert len(WARN_SECRET.findall(tf.read_text(srv.error_log, limit=200000))) == n


# ----------------------------------------------------- user: and group:

def _ids_of(pid):
    text = Path(f"/proc/{pid}/status").read_text()
    uid = int(re.search(r"^Uid:\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)", text, re.M).group(1))
    gid = int(re.search(r"^Gid:\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)", text, re.M).group(1))
    uids = [int(x) for x in re.search(r"^Uid:\s+(.*)$", text, re.M).group(1).split()]
    gids = [int(x) for x in re.search(r"^Gid:\s+(.*)$", text, re.M).group(1).split()]
    groups = [int(x) for x in re.search(r"^Groups:[ \t]*(.*)$", text, re.M).group(1).split()]
    return uid, gid, uids, gids, groups


def test_workers_run_as_user_and_group(talas_server):
    if os.geteuid() != 0:
        pytest.skip("needs root: the master binds as root and its children switch users")
    try:
        nobody = pwd.getpwnam("nobody")
        nogroup = grp.getgrnam("nogroup")
    except KeyError:
        pytest.skip("no user nobody or group nogroup")
    # a tree the unprivileged workers can traverse (pytest's is 0700)
    base = Path(tempfile.mkdtemp(prefix="talas-sec-"))
    try:
        os.chmod(base, 0o755)
        lib = base / "lib"
        tf.make_track(lib / "a.mp3", "Track A", seconds=3, freq=300)
        srv = tf.TalasServer(base / "srv", [lib], workers=2,
                             extra_yaml="user: nobody\ngroup: nogroup\n")
        os.chmod(base / "srv", 0o755)
        srv.start(wait_scan=True)
        try:
            assert [t["title"] for t in srv.tracks()] == ["Track A"]
            tid = srv.tracks()[0]["id"]
            assert srv.get(f"/stream/{tid}")[0] == 200
            assert srv.get(f"/stream/{tid}?profile=low", timeout=60)[0] == 200
            for p in srv.worker_pids():
                uid, gid, uids, gids, groups = _ids_of(p)
                assert uids == [nobody.pw_uid] * 4, (p, uids)
                assert gids == [nogroup.gr_gid] * 4, (p, gids)
                assert 0 not in groups, (p, groups)
            m_uid = _ids_of(srv.master_pid)[0]
            assert m_uid == 0  # the master keeps root: new ports and key files at reload
            assert os.stat(srv.storage_path / "data.mdb").st_uid == nobody.pw_uid
            assert os.stat(srv.storage_path / "data.mdb").st_gid == nogroup.gr_gid
        finally:
            srv.kill()
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_group_needs_user_and_must_exist(talas_server, library_dir, tmp_path):
    srv = talas_server([library_dir], start=False)
    srv.write_config(text=srv.config_text() + "group: nogroup\n")
    cp = tf.run([tf.TALAS_MASTER, "-t", "-c", srv.config_path], check=False)
    assert cp.returncode == 1 and "group: needs user:" in cp.stderr, cp.stderr
    srv.write_config(text=srv.config_text() + "user: nobody\ngroup: no-such-group-talas\n")
    cp = tf.run([tf.TALAS_MASTER, "-t", "-c", srv.config_path], check=False)
    assert cp.returncode == 1 and 'no group "no-such-group-talas"' in cp.stderr, cp.stderr
