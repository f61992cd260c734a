"""talasctl against a real talas-master: the control socket (status, reload,
stop, ws stats, broadcast), the storage commands (tracks ls/show/rm,
sessions, scan), check-config, exit codes and --json; and the man pages
held to the configuration schema and to talasctl's commands.
"""

import asyncio
import json
import os
import re
import shutil
import stat
import subprocess
import time

import pytest

import talas_fixtures as tf

NOT_RUNNING = 3


@pytest.fixture
def lib(tmp_path):
    d = tmp_path / "lib"
    tf.make_track(d / "one.mp3", "Admin One", artist="Ops", seconds=20, freq=330)
    tf.make_track(d / "two.ogg", "Admin Two", artist="Ops", seconds=3, freq=440)
    return d


@pytest.fixture
def srv(talas_server, lib):
    return talas_server([lib])


def ctl_json(srv, *args, code=0):
    cp = srv.talasctl("--json", *args)
    assert cp.returncode == code, f"talasctl {args}: exit {cp.returncode}\n{cp.stdout}\n{cp.stderr}"
    return json.loads(cp.stdout)


def control_socket(srv):
    return srv.workdir / "talas.sock"


# ------------------------------------------------------------------ status

def test_status_text_and_json_match_the_real_workers(srv):
    pids = srv.wait_worker_pids(2)
    # a worker is "ready" once it told the master so: on a busy machine that
    # may come a little after its pid shows
    tf.wait_for(lambda: all(w["ready"] for w in ctl_json(srv, "status")["master"]["workers"]), 20,
                what="both workers ready")
    doc = ctl_json(srv, "status")
    assert doc["running"] is True
    m = doc["master"]
    assert m["pid"] == srv.master_pid
    assert sorted(w["pid"] for w in m["workers"]) == pids
    assert sorted(w["slot"] for w in m["workers"]) == [0, 1]
    assert all(w["ready"] and not w["retiring"] and w["uptime_ms"] >= 0 for w in m["workers"])
    assert m["uptime_ms"] >= 0 and m["generation"] == 0
    assert doc["catalog"]["tracks"] == 2
    assert set(doc["cache"]) >= {"entries", "bytes", "hits", "misses"}

    cp = srv.talasctl("status")
    assert cp.returncode == 0, cp.stderr
    assert re.search(r"^master: running$", cp.stdout, re.M), cp.stdout
    assert re.search(rf"^  pid: {srv.master_pid}$", cp.stdout, re.M), cp.stdout
    for p in pids:
        assert re.search(rf"- pid: {p}, slot: [01],", cp.stdout), cp.stdout
    assert re.search(r"^tracks: 2$", cp.stdout, re.M), cp.stdout


def test_control_socket_mode_and_not_running(srv):
    path = control_socket(srv)
    st = os.stat(path)
    assert stat.S_ISSOCK(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o660, oct(st.st_mode)
    assert st.st_uid == os.geteuid()
    assert srv.stop() == 0
    assert not path.exists(), "the master left its control socket behind"
    for args in (["status"], ["reload"], ["stop"], ["ws", "stats"], ["broadcast", "x"]):
        cp = srv.talasctl(*args)
        assert cp.returncode == NOT_RUNNING, f"{args}: exit {cp.returncode}\n{cp.stderr}"
        assert re.search(r"not running", cp.stdout + cp.stderr), cp.stdout + cp.stderr
    doc = ctl_json(srv, "status", code=NOT_RUNNING)
    assert doc["running"] is False and doc["master"] is None
    assert doc["catalog"]["tracks"] == 2


def test_a_stale_socket_is_replaced_and_a_live_one_refused(srv, talas_server, lib):
    # a second master with the same control.socket must not steal it
    other = talas_server([lib], start=False, name="other")
    other.write_config(text=other.config_text() + f"control:\n  socket: {json.dumps(str(control_socket(srv)))}\n")
    cp = tf.run([tf.TALAS_MASTER, "-c", other.config_path], timeout=20, check=False)
    assert cp.returncode != 0
    assert "already answers" in tf.read_text(other.error_log) + cp.stderr
    assert ctl_json(srv, "status")["master"]["pid"] == srv.master_pid
    # a master killed hard leaves its socket: the next one takes it over
    srv.kill()
    assert control_socket(srv).exists()
    srv.start()
    assert ctl_json(srv, "status")["master"]["pid"] == srv.master_pid


# ------------------------------------------------------------ reload, stop

def test_reload_replaces_the_workers(srv):
    old = srv.wait_worker_pids(2)
    doc = ctl_json(srv, "reload")
    assert doc["ok"] is True and doc["generation"] == doc["previous_generation"] + 1
    assert sorted(doc["workers"]) != old and not set(doc["workers"]) & set(old)
    # the answer came once the new generation serves: the old ones go
    new = srv.wait_worker_pids(2, exclude=old)
    assert sorted(new) == sorted(doc["workers"])
    st = ctl_json(srv, "status")["master"]
    assert st["generation"] == doc["generation"] and st["reloads"] == 1
    assert srv.health()["status"] == "ok"

    cp = srv.talasctl("reload")
    assert cp.returncode == 0, cp.stderr
    assert re.search(rf"generation: {doc['generation'] + 1}$", cp.stdout, re.M), cp.stdout


def test_reload_with_a_broken_config_fails_and_keeps_serving(srv):
    old = srv.wait_worker_pids(2)
    good = srv.config_text()
    srv.write_config(text=good.replace("workers: 2", "workers: 0"))
    # talasctl reads the file too: give it a good copy, the master the bad one
    (srv.workdir / "good.yaml").write_text(good)
    cp = tf.run([tf.TALASCTL, "-c", srv.workdir / "good.yaml", "reload"], check=False)
    assert cp.returncode == 1, cp.stdout + cp.stderr
    assert "workers: must be 1..256" in cp.stderr, cp.stderr
    assert srv.worker_pids() == old
    srv.write_config(text=good)
    st = ctl_json(srv, "status")["master"]
    assert st["generation"] == 0 and "workers" in st["last_reload_error"]


def test_stop_is_graceful_and_waits_for_the_exit(srv):
    srv.wait_worker_pids(2)
    t = time.monotonic()
    cp = srv.talasctl("stop")
    assert cp.returncode == 0, cp.stderr
    assert "stopped" in cp.stdout
    # talasctl returned once the master was gone
    assert srv.proc.poll() is not None or srv.wait_exit(2) is not None
    assert srv.proc.returncode == 0
    assert time.monotonic() - t < 15
    assert "stop asked for on the control socket" in tf.read_text(srv.error_log)


# ---------------------------------------------------- broadcast, ws stats

def test_broadcast_reaches_a_websocket_client_and_ws_stats_count_it(srv):
    websockets = pytest.importorskip("websockets", reason="install Debian package python3-websockets")

    async def go():
        async with websockets.connect(f"ws://127.0.0.1:{srv.port}/api/ws?user_id=ops") as ws:
            await ws.send(json.dumps({"command": "GetStatus", "command_id": "s"}))
            json.loads(await asyncio.wait_for(ws.recv(), 5))

            def counted():
                d = ctl_json(srv, "ws", "stats")
                return d if d["current_connections"] == 1 else None
            d = await asyncio.get_running_loop().run_in_executor(
                None, lambda: tf.wait_for(counted, 10, what="ws stats to count the connection"))
            assert d["total_connections"] >= 1 and len(d["workers"]) == 2
            assert sum(w.get("current_connections", 0) for w in d["workers"]) == 1

            cp = await asyncio.get_running_loop().run_in_executor(
                None, lambda: srv.talasctl("broadcast", "maintenance at 2am", "--level", "warning"))
            assert cp.returncode == 0, cp.stderr
            msg = json.loads(await asyncio.wait_for(ws.recv(), 5))
            assert msg == {"event": "ServerMessage", "message": "maintenance at 2am", "level": "Warning"}
    asyncio.run(asyncio.wait_for(go(), 60))

    cp = srv.talasctl("ws", "stats")
    assert cp.returncode == 0 and re.search(r"^total_connections: [1-9]", cp.stdout, re.M), cp.stdout
    assert srv.talasctl("broadcast", "two\nlines").returncode == 2
    assert srv.talasctl("ws", "nonsense").returncode == 2


# --------------------------------------------------------------- tracks

def test_tracks_ls_show_rm(srv):
    rows = ctl_json(srv, "tracks", "ls")
    assert {r["title"] for r in rows} == {"Admin One", "Admin Two"}
    one = next(r for r in rows if r["title"] == "Admin One")
    assert one["path"].endswith("one.mp3") and abs(one["duration_ms"] - 20000) < 500

    shown = ctl_json(srv, "tracks", "show", one["id"])
    assert shown == one
    cp = srv.talasctl("tracks", "show", one["id"])
    assert cp.returncode == 0 and f"id: {one['id']}" in cp.stdout and "title: Admin One" in cp.stdout

    # a transcode in the cache goes with the track
    st, _, _ = srv.get(f"/stream/{one['id']}?format=mp3&bitrate=128", timeout=60)
    assert st == 200
    assert ctl_json(srv, "cache", "stats")["entries"] >= 1

    gone = ctl_json(srv, "tracks", "rm", one["id"])
    assert gone["removed"] == one["id"] and gone["cache_entries"] >= 1
    assert srv.get(f"/api/tracks/{one['id']}")[0] == 404
    assert ctl_json(srv, "cache", "stats")["entries"] == 0
    for args in (["tracks", "show", one["id"]], ["tracks", "rm", one["id"]], ["tracks", "show", "nope"]):
        cp = srv.talasctl(*args)
        assert cp.returncode == 1 and "no such track" in cp.stderr, (args, cp.returncode, cp.stderr)
    assert srv.talasctl("tracks", "frob", "x").returncode == 2
    # the file stays: a scan adds it back
    assert ctl_json(srv, "scan")["added"] == 1
    assert len(ctl_json(srv, "tracks")) == 2


def test_scan_progress_lines_when_not_on_a_terminal(srv, lib):
    for i in range(3):
        tf.make_track(lib / f"more{i}.mp3", f"More {i}", seconds=1)
    cp = srv.talasctl("scan")
    assert cp.returncode == 0, cp.stderr
    lines = [l for l in cp.stderr.splitlines() if l.startswith("scan: ")]
    assert lines and "\r" not in cp.stderr and "\033" not in cp.stderr, cp.stderr
    assert re.search(r"^scan: 5 files, \d+ probed, \d+ unchanged, 0 errors \(walk done\)$", lines[-1]), lines
    assert re.search(r"scanned 5 files in [\d.]+ s: 3 added, 0 updated, 0 removed, 2 unchanged, 0 errors",
                     cp.stdout), cp.stdout
    full = ctl_json(srv, "scan", "--full")
    assert full["files"] == 5 and full["probed"] == 5 and full["unchanged"] == 0


# ------------------------------------------------------------- sessions

def test_sessions_streaming_and_listening(srv):
    websockets = pytest.importorskip("websockets", reason="install Debian package python3-websockets")
    track = next(t for t in srv.tracks() if t["title"] == "Admin One")["id"]
    st, _, body = srv.get("/api/streaming/session", method="POST",
                          headers={"Content-Type": "application/json"},
                          body=json.dumps({"track_id": track, "client_id": "phone-1"}).encode())
    assert st in (200, 201), body
    sid = json.loads(body)["session_id"]

    async def go():
        async with websockets.connect(f"ws://127.0.0.1:{srv.port}/api/ws?user_id=listener7") as ws:
            await ws.send(json.dumps({"command": "Play", "command_id": "p", "track_id": track}))
            for _ in range(10):
                m = json.loads(await asyncio.wait_for(ws.recv(), 5))
                if m.get("event") == "CommandResponse":
                    assert m["success"], m
                    break
            return await asyncio.get_running_loop().run_in_executor(None, lambda: ctl_json(srv, "sessions"))
    doc = asyncio.run(asyncio.wait_for(go(), 30))
    s = [x for x in doc["streaming"] if x["session_id"] == sid]
    assert len(s) == 1 and s[0]["track_id"] == track and s[0]["expired"] is False
    assert doc["streaming_totals"]["created"] >= 1
    listening = [x for x in doc["listening"] if x["user_id"] == "listener7"]
    assert len(listening) == 1 and listening[0]["track_id"] == track
    assert listening[0]["status"] in ("playing", "stopped", "paused")
    cp = srv.talasctl("sessions")
    assert cp.returncode == 0 and sid in cp.stdout, cp.stdout


# ---------------------------------------------------------- check-config

def test_check_config_good_and_bad(talas_server, lib):
    cfg = talas_server([lib], start=False)
    cp = cfg.talasctl("check-config")
    assert cp.returncode == 0, cp.stderr
    assert ctl_json(cfg, "check-config")["ok"] is True
    cfg.write_config(text=cfg.config_text().replace("workers: 2", "workers: 999"))
    cp = cfg.talasctl("check-config")
    assert cp.returncode == 1
    assert re.search(r"talas\.yaml:\d+:\d+: workers: must be", cp.stderr), cp.stderr
    cfg.write_config(text=cfg.config_text() + "auth:\n  secret_file: /nonexistent/secret\n")
    assert cfg.talasctl("check-config").returncode == 1
    cfg.write_config(text=cfg.config_text().replace("auth:\n  required: false\n", "auth:\n  required: false\n"
                                                    "  secret_file: /nonexistent/secret\n"))
    cp = cfg.talasctl("check-config")
    assert cp.returncode == 1 and "secret" in cp.stderr, cp.stderr
    assert cfg.talasctl("check-config", "extra").returncode == 2
    assert cfg.talasctl("no-such-command").returncode == 2


# ------------------------------------------------- man pages and schema

def schema_keys():
    cp = tf.run([tf.TALASCTL, "check-config", "--keys"], timeout=10)
    rows = [l.split("\t") for l in cp.stdout.splitlines()]
    assert rows and all(len(r) == 3 for r in rows), cp.stdout
    return {r[0]: r[1] for r in rows}


# Keys that are limits a client can reach: their names say so, in the
# sections a client talks to (the schema's other timeouts and sizes are the
# operator's: streaming.session_timeout, storage.map_size, cache.max_size).
LIMIT_SECTIONS = ("http", "http2", "ws", "playlists", "streaming", "transcode", "storage", "subsonic", "rooms")
NOT_CLIENT_LIMITS = {"streaming.session_timeout"}


def client_limit_keys():
    return sorted(k for k in schema_keys()
                  if k.split(".")[0] in LIMIT_SECTIONS and "[]" not in k and k not in NOT_CLIENT_LIMITS
                  and re.search(r"max|limit|timeout|reserved", k.split(".")[-1]))


def test_every_limit_is_in_the_readme_table_and_the_man_page():
    """Each limit a client can reach has a row of README's Limits table and
    a place in talas-master(8) LIMITS, so an operator finds every one of
    them where the other limits are."""
    keys = client_limit_keys()
    assert "playlists.max_per_user" in keys and "ws.user_rate_limit" in keys, keys
    readme = (tf.SRCDIR / "README.md").read_text()
    table = readme.split("## Limits", 1)[1].split("\n## ", 1)[0]
    rows = set(re.findall(r"^\| `([a-z0-9_.]+)`", table, re.M))
    rows |= set(re.findall(r"^\| `[a-z0-9_.]+` / `([a-z0-9_.]+)`", table, re.M))
    assert not [k for k in keys if k not in rows], f"limits not in README's Limits table: {[k for k in keys if k not in rows]}"
    man = (tf.SRCDIR / "man" / "talas-master.8").read_text().replace("\\-", "-")
    limits = man.split("\n.SH LIMITS", 1)[1].split("\n.SH ", 1)[0]
    missing = [k for k in keys if not re.search(rf"(?<![a-z0-9_.]){re.escape(k)}(?![a-z0-9_])", limits)]
    assert not missing, f"limits not in talas-master(8) LIMITS: {missing}"


def man_entries(page):
    """The entries a man page documents: the bold words of the line after
    each .TP, and (for entries that pair keys, "ws.rate_limit ... and
    ws.rate_limit_window") a ".B word" line followed by its ".I type" line."""
    text = (tf.SRCDIR / "man" / page).read_text()
    lines = text.splitlines()
    out = []
    for i, l in enumerate(lines[:-1]):
        nxt = lines[i + 1]
        if l.strip() == ".TP" and re.match(r"^\.BR? ", nxt):
            out += [w for w in re.findall(r'"?([^" ]+)"?', nxt.split(" ", 1)[1]) if w != ","]
        elif re.match(r"^\.B [a-z]", l) and nxt.startswith(".I "):
            out.append(l[3:].strip())
    return text.replace("\\-", "-"), [w.replace("\\-", "-").strip(",") for w in out]


def test_every_config_key_is_documented_and_every_documented_key_exists():
    keys = schema_keys()
    text, documented = man_entries("talas.yaml.5")
    top = {k for k, t in keys.items() if "[]" not in k and t != "section"}
    missing = sorted(k for k in top if k not in documented)
    assert not missing, f"keys of the schema not in talas.yaml(5) as .TP entries: {missing}"
    # keys inside list items (listen[].host, transcode.profiles[].codec): named on the page
    item_keys = {k.split("[].")[-1] for k in keys if "[]" in k}
    missing = sorted(k for k in item_keys if not re.search(rf"^\.(?:B|BR|RB) .*\b{re.escape(k)}\b", text, re.M))
    assert not missing, f"list item keys not in talas.yaml(5): {missing}"
    sections = {k for k, t in keys.items() if t == "section"}
    unknown = sorted(d for d in documented
                     if re.fullmatch(r"[a-z0-9_]+(\.[a-z0-9_]+)*", d)
                     and d not in keys and d not in sections and d not in item_keys)
    assert not unknown, f"talas.yaml(5) documents keys the schema does not know: {unknown}"


def test_every_talasctl_command_is_in_its_man_page():
    cp = tf.run([tf.TALASCTL, "-h"], timeout=10)
    commands = set()
    for l in cp.stdout.splitlines():
        m = re.match(r"^  ([a-z][a-z-]*)(?: ([a-z]+)\b)?", l)
        if m and m.group(1) not in ("usage",):
            commands.add(m.group(1))
    assert {"status", "scan", "tracks", "sign", "cache", "sessions", "ws", "broadcast", "reload", "stop",
            "check-config"} <= commands, commands
    text, entries = man_entries("talasctl.8")
    for c in commands:
        assert re.search(rf'^\.B "?{re.escape(c)}\b', text.replace("\\-", "-"), re.M) or c in entries, \
            f"talasctl {c} is not documented in talasctl(8)"
    for opt in ("--json", "--full", "--keys", "--errors", "--fix", "--level"):
        assert opt in text, f"{opt} not in talasctl(8)"
    for code in ("0", "1", "2", "3", "4"):
        assert re.search(rf"^\.B {code}$|^\.IP {code}\b|^\.TP\n\.B {code}\n", text, re.M), \
            f"exit code {code} not in talasctl(8)"


def test_man_pages_lint_clean():
    groff = shutil.which("groff")
    if groff is None:
        pytest.skip("groff not installed")
    for page in ("talasctl.8", "talas.yaml.5", "talas-master.8"):
        cp = subprocess.run([groff, "-ww", "-man", "-z", str(tf.SRCDIR / "man" / page)],
                            capture_output=True, text=True, timeout=30)
        assert cp.returncode == 0 and cp.stderr == "", f"{page}: {cp.stderr}"


def test_systemd_unit_wires_reload_and_stop():
    cp = subprocess.run(["make", "-s", "-C", str(tf.BUILDDIR), "conf/talas.service"],
                        capture_output=True, text=True, timeout=120)
    assert cp.returncode == 0, cp.stderr
    unit = (tf.BUILDDIR / "conf" / "talas.service").read_text()
    assert "%" not in unit and "@" not in unit, unit
    exec_start = re.search(r"^ExecStart=(\S+) -d -c (\S+)$", unit, re.M)
    assert exec_start and exec_start.group(1).endswith("/talas-master"), unit
    assert re.search(r"^ExecReload=\S+/talasctl -c \S+ reload$", unit, re.M), unit
    assert re.search(r"^PIDFile=\S+/talas\.pid$", unit, re.M), unit
    assert re.search(r"^KillSignal=SIGTERM$", unit, re.M) and "Type=forking" in unit
    verify = shutil.which("systemd-analyze")
    if verify:
        p = tf.BUILDDIR / "tests" / "artifacts" / "talas.service"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(unit)
        cp = subprocess.run([verify, "verify", str(p)], capture_output=True, text=True, timeout=60)
        # the binaries are not installed here: only syntax problems count
        bad = [l for l in cp.stderr.splitlines()
               if "Unknown" in l or "Invalid" in l or "Failed to parse" in l]
        assert not bad, cp.stderr
