"""The command line: talas-master -t/-V/-h, talasctl's help, version and
usage errors, and talasctl scan/tracks/status.

Config errors must point at the offending place as FILE:LINE:COL: key:
so that an editor can jump there.
"""

import json
import os
import re
import shutil
import signal

import pytest

import talas_fixtures as tf


def master(*args, timeout=30):
    tf.require_talas()
    return tf.run([tf.TALAS_MASTER] + list(args), timeout=timeout, check=False)


def test_version():
    cp = master("-V")
    assert cp.returncode == 0
    assert f"talas-master {tf.VERSION}" in (cp.stdout + cp.stderr).splitlines()


def test_help():
    cp = master("-h")
    assert cp.returncode == 0
    out = cp.stdout + cp.stderr
    for opt in ("-c", "-t", "-d", "-V", "-h"):
        assert re.search(rf"(^|\s){opt}\b", out), f"{opt} not in help:\n{out}"


def test_unknown_option():
    cp = master("--no-such-option")
    assert cp.returncode != 0
    assert cp.stderr.strip()


@pytest.fixture
def cfg(tmp_path, library_dir):
    """A TalasServer that is configured but not started."""
    return tf.TalasServer(tmp_path / "srv", [library_dir])


def test_check_good_config(cfg):
    cp = master("-t", "-c", cfg.config_path)
    assert cp.returncode == 0, cp.stderr
    assert not re.search(r"error|invalid", cp.stderr, re.I), cp.stderr


def test_check_shipped_example_config():
    example = tf.SRCDIR / "conf" / "talas.yaml"
    if not example.exists():
        pytest.skip(f"{example} not written yet")
    cp = master("-t", "-c", example)
    # The example may point at paths that do not exist here; it must still
    # parse (no FILE:LINE:COL syntax/key errors).
    assert not re.search(rf"{re.escape(str(example))}:\d+:\d+:", cp.stderr), cp.stderr


def broken(cfg, edit):
    """Write CFG's config through EDIT(lines) -> (lines, line_no, key, cols)."""
    lines = cfg.config_text().splitlines()
    lines, line_no, key, cols = edit(lines)
    cfg.write_config("\n".join(lines) + "\n")
    return line_no, key, cols


def set_top(lines, key, value):
    """Replace top-level KEY's value; returns (lines, 1-based line no, value col)."""
    for i, l in enumerate(lines):
        if l.startswith(key + ":"):
            lines[i] = f"{key}: {value}"
            return lines, i + 1, len(key) + 3
    raise KeyError(key)


def case_unknown_top(lines):
    lines.insert(4, "bogus_key: 1")
    return lines, 5, "bogus_key", {1}


def case_unknown_nested(lines):
    i = lines.index("log:")
    lines.insert(i + 1, "  colour: red")
    return lines, i + 2, r"(log\.)?colour", {3}


def case_bad_type(lines):
    lines, n, col = set_top(lines, "workers", "many")
    return lines, n, "workers", {1, col}


def case_workers_zero(lines):
    lines, n, col = set_top(lines, "workers", "0")
    return lines, n, "workers", {1, col}


def case_workers_huge(lines):
    lines, n, col = set_top(lines, "workers", "100000")
    return lines, n, "workers", {1, col}


def case_bad_duration(lines):
    lines, n, col = set_top(lines, "shutdown_timeout", "soon")
    return lines, n, "shutdown_timeout", {1, col}


def case_bad_port(lines):
    i = next(i for i, l in enumerate(lines) if l.strip().startswith("port:"))
    lines[i] = "    port: 70000"
    return lines, i + 1, r"(listen(\[0\]|\.0)?\.)?port", {5, 11}


def case_bad_size(lines):
    i = next(i for i, l in enumerate(lines) if l.strip().startswith("map_size:"))
    lines[i] = "  map_size: lots"
    return lines, i + 1, r"(storage\.)?map_size", {3, 13}


def case_bad_enum(lines):
    i = next(i for i, l in enumerate(lines) if l.strip().startswith("access_format:"))
    lines[i] = "  access_format: xml"
    return lines, i + 1, r"(log\.)?access_format", {3, 18}


def case_yaml_syntax(lines):
    lines.insert(4, "workers: [1, 2")
    return lines, None, None, None


CASES = [case_unknown_top, case_unknown_nested, case_bad_type, case_workers_zero,
         case_workers_huge, case_bad_duration, case_bad_port, case_bad_size,
         case_bad_enum, case_yaml_syntax]


@pytest.mark.parametrize("edit", CASES, ids=[c.__name__[5:] for c in CASES])
def test_check_broken_config(cfg, edit):
    line_no, key, cols = broken(cfg, edit)
    cp = master("-t", "-c", cfg.config_path)
    assert cp.returncode == 1, f"exit {cp.returncode}, stderr: {cp.stderr}"
    path = re.escape(str(cfg.config_path))
    if line_no is None:  # YAML syntax error: a position, whatever the key
        assert re.search(rf"^{path}:\d+:\d+: ", cp.stderr, re.M), cp.stderr
        return
    m = re.search(rf"^{path}:(\d+):(\d+): {key}: (.+)$", cp.stderr, re.M)
    assert m, f"no '{cfg.config_path}:{line_no}:COL: {key}: reason' in:\n{cp.stderr}"
    assert int(m.group(1)) == line_no, cp.stderr
    assert int(m.group(2)) in cols, f"column {m.group(2)} not in {cols}: {cp.stderr}"
    assert len(m.group(3).strip()) >= 3


def test_check_missing_file(tmp_path):
    cp = master("-t", "-c", tmp_path / "nope.yaml")
    assert cp.returncode == 1
    assert "nope.yaml" in cp.stderr


def test_foreground_start_refuses_broken_config(cfg):
    broken(cfg, case_workers_zero)
    tf.require_talas()
    cp = tf.run([tf.TALAS_MASTER, "-c", cfg.config_path], timeout=20, check=False)
    assert cp.returncode != 0
    assert str(cfg.config_path) in cp.stderr + tf.read_text(cfg.error_log)


# ---------------------------------------------------------------- talasctl

CTL_COMMANDS = ["status", "scan", "tracks", "sign", "cache", "sessions", "shares", "users", "storage", "db", "ws", "cluster",
                "broadcast",
                "reload", "stop", "check-config", "help"]


def ctl(*args, timeout=30):
    """talasctl without a configuration file: help and version need none."""
    if not os.access(tf.TALASCTL, os.X_OK):
        pytest.fail(f"{tf.TALASCTL} is not built")
    return tf.run([tf.TALASCTL] + [str(a) for a in args], timeout=timeout, check=False)


def usage_lines(text):
    """The command lines of a usage message: "  cache stats   ..." ."""
    return [l for l in text.splitlines() if re.match(r"^  [a-z]", l)]


@pytest.mark.parametrize("args", [["--help"], ["-h"], ["help"], ["-c", "/nonexistent/talas.yaml", "--help"]],
                         ids=["--help", "-h", "help", "no-config-file"])
def test_talasctl_help(args):
    cp = ctl(*args)
    assert cp.returncode == 0, cp.stderr
    assert cp.stderr == ""
    assert cp.stdout.startswith("usage: talasctl "), cp.stdout
    assert {l.split()[0] for l in usage_lines(cp.stdout)} == set(CTL_COMMANDS), cp.stdout
    for opt in ("-c FILE", "--json", "-h, --help", "-V, --version"):
        assert opt in cp.stdout, f"{opt} not in the usage:\n{cp.stdout}"
    assert "exit codes:" in cp.stdout


@pytest.mark.parametrize("command", CTL_COMMANDS)
def test_talasctl_help_command(command):
    full = ctl("--help").stdout
    cp = ctl("-c", "/nonexistent/talas.yaml", "help", command)
    assert cp.returncode == 0, cp.stderr
    assert cp.stderr == ""
    assert cp.stdout.startswith("usage: talasctl "), cp.stdout
    lines = usage_lines(cp.stdout)
    assert lines and all(l.split()[0] == command for l in lines), cp.stdout
    # exactly the command's part of the full usage, continuation lines included
    part = "\n".join(l for l in cp.stdout.splitlines()[1:] if l.startswith("  "))
    assert part in full, f"{part!r} not in the full usage"
    assert [l for l in usage_lines(full) if l.split()[0] == command] == lines
    # "talasctl COMMAND --help" says the same
    cp2 = ctl(command, "--help")
    assert (cp2.returncode, cp2.stdout) == (0, cp.stdout), cp2.stderr


def test_talasctl_help_unknown_command():
    cp = ctl("help", "nosuch")
    assert cp.returncode == 2
    assert cp.stdout == ""
    assert 'unknown command "nosuch"' in cp.stderr
    assert "usage: talasctl" in cp.stderr
    assert ctl("help", "tracks", "extra").returncode == 2


@pytest.mark.parametrize("opt", ["--version", "-V"])
def test_talasctl_version(opt):
    cp = ctl(opt)
    assert cp.returncode == 0, cp.stderr
    assert cp.stdout == f"talasctl (talas) {tf.VERSION}\n"
    assert cp.stderr == ""


@pytest.mark.parametrize("args", [["--no-such-option"], ["-Z"], ["tracks", "--bogus"],
                                  ["sign", "--ttl", "soon", "AAAAAAAAAAAAAAAA"], ["--json"], ["nosuch"]],
                         ids=["long", "short", "after-command", "bad-value", "no-command", "no-such-command"])
def test_talasctl_usage_error(args):
    cp = ctl("-c", "/nonexistent/talas.yaml", *args)
    assert cp.returncode == 2, cp.stdout + cp.stderr
    assert cp.stdout == ""
    assert "usage: talasctl" in cp.stderr, cp.stderr


def parse_duration_s(s):
    """Seconds from '0:24', '00:00:24', '24.03', '24.03s' or '24032' (ms)."""
    s = s.strip()
    if ":" in s:
        parts = [float(p) for p in s.split(":")]
        v = 0.0
        for p in parts:
            v = v * 60 + p
        return v
    s = s.rstrip("s")
    v = float(s)
    return v / 1000.0 if v > 1000 else v


@pytest.fixture
def own_lib(tmp_path, library):
    """A private copy of the test library that a test may change."""
    d = tmp_path / "lib"
    shutil.copytree(library["mp3"].parent, d)
    return d


def talasctl_tracks(srv):
    cp = srv.talasctl("tracks")
    assert cp.returncode == 0, cp.stderr
    rows = [l.split("\t") for l in cp.stdout.splitlines() if l.strip()]
    for r in rows:
        assert len(r) == 4, f"not 4 tab-separated fields: {r!r}"
        assert re.match(r"^[A-Za-z0-9_-]{16}$", r[0]), r
    return rows


def test_talasctl_scan_and_tracks(talas_server, own_lib):
    srv = talas_server([own_lib], start=False)
    cp = srv.talasctl("scan", timeout=120)
    assert cp.returncode == 0, cp.stderr
    n = len(tf.LIBRARY_TRACKS)
    assert re.search(rf"\b{n}\b", cp.stdout), f"no track count {n} in: {cp.stdout!r}"
    assert len([l for l in cp.stdout.splitlines() if l.strip()]) >= 1
    rows = talasctl_tracks(srv)
    got = {(r[2], r[3]) for r in rows}
    assert got == {(t[2], t[1]) for t in tf.LIBRARY_TRACKS.values()}
    dur = {r[3]: parse_duration_s(r[1]) for r in rows}
    ref = tf.ffprobe_duration_ms(own_lib / tf.LIBRARY_TRACKS["mp3"][0]) / 1000
    assert abs(dur["Sine MP3"] - ref) <= 1.0, (dur["Sine MP3"], ref)
    cp = srv.talasctl("tracks", "--errors")
    assert cp.returncode == 0
    assert cp.stdout.strip() == "", cp.stdout


def test_talasctl_ids_match_api(talas_server, own_lib):
    srv = talas_server([own_lib])
    rows = talasctl_tracks(srv)
    assert {(r[0], r[3]) for r in rows} == {(t["id"], t["title"]) for t in srv.tracks()}


def test_talasctl_status(talas_server, own_lib):
    srv = talas_server([own_lib])
    cp = srv.talasctl("status")
    assert cp.returncode == 0, cp.stderr
    out = cp.stdout
    assert re.search(rf"\b{srv.master_pid}\b", out), out
    assert re.search(r"\brunning\b", out, re.I) and not re.search(r"not running", out, re.I), out
    assert re.search(rf"\b{len(tf.LIBRARY_TRACKS)}\b", out), out
    assert srv.stop() == 0
    cp = srv.talasctl("status")
    assert re.search(r"not running|stopped|no master", cp.stdout + cp.stderr, re.I), \
        cp.stdout + cp.stderr


def test_rescan_picks_up_added_and_removed(talas_server, own_lib):
    srv = talas_server([own_lib])
    n = len(tf.LIBRARY_TRACKS)
    tf.make_track(own_lib / "later" / "added.ogg", "Added Later")
    cp = srv.talasctl("scan", timeout=120)
    assert cp.returncode == 0, cp.stderr
    assert re.search(rf"\b{n + 1}\b", cp.stdout), cp.stdout
    titles = {r[3] for r in talasctl_tracks(srv)}
    assert "Added Later" in titles and len(titles) == n + 1
    # The running server sees the same catalog.
    tf.wait_for(lambda: srv.track_by_title("Added Later"), 10, what="added track in /api")

    (own_lib / tf.LIBRARY_TRACKS["flac"][0]).unlink()
    cp = srv.talasctl("scan", timeout=120)
    assert cp.returncode == 0, cp.stderr
    titles = {r[3] for r in talasctl_tracks(srv)}
    assert "Sine FLAC" not in titles and len(titles) == n
    tf.wait_for(lambda: srv.track_by_title("Sine FLAC") is None, 10,
                what="removed track gone from /api")
    assert srv.get_json("/api/tracks")["total"] == n



def test_a_streamed_track_gone_in_a_rescan_is_unknown_at_once(talas_server, own_lib):
    """Each worker remembers the catalog's answer for a track it streams
    (path and type) until the store's next commit. The rescan that drops
    the track commits, so the next request is a 404 not_found (no such
    track), not the open of a path the catalog no longer has (file_missing):
    what a stale memory of the track would give."""
    srv = talas_server([own_lib])
    tid = srv.track_by_title("Sine FLAC")["id"]
    # over fresh connections, so that every worker streams it (ranges)
    for i in range(16):
        st, _, body = srv.get(f"/stream/{tid}", headers={"Range": f"bytes={i}-{i + 99}",
                                                         "Connection": "close"})
        assert st == 206 and len(body) == 100, (st, body[:200])
    (own_lib / tf.LIBRARY_TRACKS["flac"][0]).unlink()
    cp = srv.talasctl("scan", timeout=120)
    assert cp.returncode == 0, cp.stderr
    for i in range(16):
        st, _, body = srv.get(f"/stream/{tid}", headers={"Range": "bytes=0-99", "Connection": "close"})
        assert st == 404 and json.loads(body)["error"]["code"] == "not_found", (st, body[:200])

def test_daemonize(cfg):
    tf.require_talas()
    cp = tf.run([tf.TALAS_MASTER, "-d", "-c", cfg.config_path], timeout=20, check=False)
    assert cp.returncode == 0, cp.stderr
    pid = None
    try:
        pid = tf.wait_for(lambda: int(cfg.pid_file.read_text().strip()), 10,
                          what="the pid file of the daemon")
        assert pid != os.getpid() and tf.pid_alive(pid)
        assert os.getsid(pid) != os.getsid(0), "daemon still in the caller's session"
        tf.wait_for(lambda: cfg.get("/api/health")[0] == 200, 10, what="the daemon to serve")
        st, _, body = cfg.get("/api/health")
        assert json.loads(body)["pid"] in tf._children(pid)
        os.kill(pid, signal.SIGTERM)
        tf.wait_for(lambda: not tf.pid_alive(pid), 15, what="the daemon to exit on SIGTERM")
    finally:
        if pid and tf.pid_alive(pid):
            for p in tf.process_tree(pid):
                try:
                    os.kill(p, signal.SIGKILL)
                except OSError:
                    pass
