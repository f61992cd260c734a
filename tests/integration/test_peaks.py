"""Waveforms: GET /api/tracks/{id}/peaks?points=N (issue 7, "Waveform").

What a player (and its operator) would check: the shape and bounds of the
answer; the values against a reference computed here from ffmpeg's decoded
PCM, for a track with a known envelope (silence, a loud tone, a quiet
tone); the peaks are decoded once (the decode counter of /api/stats, never
timing), then served by every worker and after a restart; a changed file
is decoded again; bad points=, unknown ids, missing files, undecodable
files; and with auth.required, 401/403 before anything is decoded.
"""

import array
import concurrent.futures as cf
import http.client
import json
import os
import random
import struct
import subprocess
import time

import pytest

import auth_keys as ak
import talas_fixtures as tf

JSON_TYPE = "application/json; charset=utf-8"
RATE = 44100
# silence, then a loud tone, then a quiet one (seconds, amplitude)
ENVELOPE = [(1.0, 0.0), (2.0, 0.8), (2.0, 0.25)]
CHANGED = [(1.0, 0.5), (1.0, 0.0), (3.0, 0.9)]


def make_envelope(path, envelope, right=None, codec=("-c:a", "flac"), title="Envelope"):
    """ENVELOPE as a 441 Hz tone; with RIGHT, a stereo file whose right
    channel is the left one times RIGHT."""
    expr, t = [], 0.0
    for seconds, amp in envelope:
        expr.append((t, t + seconds, amp))
        t += seconds
    e = "0"
    for lo, hi, amp in reversed(expr):
        e = f"if(lt(t,{hi}),{amp}*sin(2*PI*441*t),{e})"
    if right is not None:
        e = f"{e}|{right}*{e}"
    e = e.replace(",", "\\,")  # commas inside a filter's option
    tf.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y", "-f", "lavfi",
            "-i", f"aevalsrc={e}:s={RATE}:d={t}", *codec,
            "-metadata", f"title={title}", "-metadata", "artist=Peaks", str(path)])
    return path


def pcm_mono(path):
    """The decoded samples of PATH mixed to mono (the mean of its channels),
    as ffmpeg's CLI decodes them: float32."""
    probe = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "a:0", "-show_entries",
                            "stream=channels", "-of", "csv=p=0", str(path)],
                           capture_output=True, text=True, check=True)
    ch = int(probe.stdout.strip())
    raw = subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-i", str(path),
                          "-f", "f32le", "-c:a", "pcm_f32le", "-"], capture_output=True, check=True).stdout
    a = array.array("f")
    a.frombytes(raw)
    if ch == 1:
        return list(a)
    return [sum(a[i:i + ch]) / ch for i in range(0, len(a), ch)]


def reference(samples, points):
    n = len(samples)
    mins, maxs = [], []
    for j in range(points):
        lo, hi = j * n // points, max((j + 1) * n // points, j * n // points + 1)
        chunk = samples[lo:hi]
        mins.append(min(chunk))
        maxs.append(max(chunk))
    return mins, maxs


def stats(srv):
    return srv.get_json("/api/stats")["peaks"]


def peaks(srv, track, points=None, headers=None, expect=200):
    path = f"/api/tracks/{track}/peaks" + (f"?points={points}" if points is not None else "")
    st, h, body = srv.get(path, headers=headers, timeout=60)
    assert st == expect, (path, st, body[:300])
    return h, body


def on_each_worker(srv, path, want=2, tries=200):
    """PATH asked once on a connection of each worker (the pid from
    /api/health on the same keep-alive connection): {pid: (status, body)}."""
    seen = {}
    for _ in range(tries):
        c = http.client.HTTPConnection(srv.host, srv.port, timeout=60)
        try:
            c.request("GET", "/api/health")
            pid = json.loads(c.getresponse().read())["pid"]
            if pid in seen:
                continue
            c.request("GET", path)
            r = c.getresponse()
            seen[pid] = (r.status, r.read())
        finally:
            c.close()
        if len(seen) == want:
            return seen
    raise AssertionError(f"only reached workers {list(seen)}")


def garbage_wav(path):
    # a WAV header announcing MP3 over bytes that are not MP3: it probes
    # (codec, rate, channels) but nothing decodes
    rnd = random.Random(7)
    n = 100000
    junk = bytes(rnd.getrandbits(8) for _ in range(n))
    fmt = struct.pack("<HHIIHH", 0x55, 2, 44100, 44100, 1, 0)
    path.write_bytes(b"RIFF" + struct.pack("<I", 4 + 8 + len(fmt) + 8 + n) + b"WAVE" + b"fmt "
                     + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", n) + junk)
    return path


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    d = tmp_path_factory.mktemp("peakslib")
    files = {
        "env": make_envelope(d / "envelope.flac", ENVELOPE),
        "stereo": make_envelope(d / "stereo.mp3", ENVELOPE, right=0.5,
                                codec=("-c:a", "libmp3lame", "-b:a", "192k"), title="Stereo MP3"),
        "change": make_envelope(d / "change.flac", ENVELOPE, title="Change me"),
        "gone": make_envelope(d / "gone.flac", ENVELOPE, title="Gone"),
        "single": make_envelope(d / "single.flac", [(20.0, 0.5)], title="Single flight"),
        "garbage": garbage_wav(d / "garbage.wav"),
    }
    # long enough that a decode is still running when the last of a burst
    # of requests arrives
    files["long"] = d / "long.flac"
    tf.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y", "-f", "lavfi", "-i",
            "sine=frequency=330:duration=900", "-ac", "1", "-c:a", "flac", "-compression_level", "0",
            "-metadata", "title=Long", str(files["long"])], timeout=120)
    return d, files


@pytest.fixture(scope="module")
def psrv(tmp_path_factory, lib):
    d, files = lib
    srv = tf.TalasServer(tmp_path_factory.mktemp("peakssrv"), [d], workers=2)
    srv.start(wait_scan=True)
    try:
        ids = {t["title"]: t["id"] for t in srv.tracks()}
        srv.ids = {"env": ids["Envelope"], "stereo": ids["Stereo MP3"], "change": ids["Change me"],
                   "gone": ids["Gone"], "single": ids["Single flight"]}
        garbage = [t for t in srv.tracks() if t.get("container") == "wav"]
        assert len(garbage) == 1, srv.tracks()
        srv.ids["garbage"] = garbage[0]["id"]
        srv.files = files
        yield srv
    finally:
        srv.kill()


def test_shape_and_bounds(psrv):
    track = psrv.ids["env"]
    h, body = peaks(psrv, track)
    assert h["Content-Type"] == JSON_TYPE
    doc = json.loads(body)
    assert set(doc) == {"track_id", "duration_ms", "points", "min", "max"}
    assert doc["track_id"] == track
    assert abs(doc["duration_ms"] - 5000) <= 30
    assert doc["points"] == 800 and len(doc["min"]) == 800 and len(doc["max"]) == 800
    for lo, hi in zip(doc["min"], doc["max"]):
        assert -1 <= lo <= hi <= 1
    for n in (1, 7, 4096):
        doc = json.loads(peaks(psrv, track, n)[1])
        assert doc["points"] == n and len(doc["min"]) == n and len(doc["max"]) == n
    # a single point covers the whole track: the loud tone's extremes
    doc = json.loads(peaks(psrv, track, 1)[1])
    assert abs(doc["max"][0] - 0.8) < 0.01 and abs(doc["min"][0] + 0.8) < 0.01


@pytest.mark.parametrize("name", ["env", "stereo"])
def test_values_match_ffmpeg(psrv, name):
    pcm = pcm_mono(psrv.files[name])
    track = psrv.ids[name]
    for points in (256, 1000):
        doc = json.loads(peaks(psrv, track, points)[1])
        ref_min, ref_max = reference(pcm, points)
        # a bucket's edges may sit a base bucket apart from the reference's
        # when POINTS does not divide the base resolution: skip the buckets
        # next to a change of envelope there
        edges = set()
        if 4096 % points:
            for t in (1.0, 3.0):
                j = int(t / 5.0 * points)
                edges |= {j - 1, j, j + 1}
        tol = 0.002 if name == "env" else 0.02  # MP3: ffmpeg's decoder vs ours, same library
        bad = [(j, doc["min"][j], ref_min[j], doc["max"][j], ref_max[j]) for j in range(points)
               if j not in edges and (abs(doc["min"][j] - ref_min[j]) > tol
                                      or abs(doc["max"][j] - ref_max[j]) > tol)]
        assert not bad, f"{name} points={points}: {len(bad)} buckets differ, e.g. {bad[:5]}"
    # the envelope itself, as a listener sees it (stereo: the mean of a
    # channel and its half)
    gain = 1.0 if name == "env" else 0.75
    doc = json.loads(peaks(psrv, track, 100)[1])
    assert max(doc["max"][:18]) < 0.01          # the first second is silent
    assert all(abs(v - 0.8 * gain) < 0.03 for v in doc["max"][22:58]), doc["max"]
    assert all(abs(v - 0.25 * gain) < 0.03 for v in doc["max"][62:98]), doc["max"]
    assert all(abs(v + 0.8 * gain) < 0.03 for v in doc["min"][22:58]), doc["min"]


def test_computed_once_shared_by_workers_and_restarts(psrv, lib):
    track = psrv.ids["single"]
    path = f"/api/tracks/{track}/peaks?points=300"
    before = stats(psrv)["computed"]
    # concurrent first requests: one decode per worker at most
    with cf.ThreadPoolExecutor(12) as ex:
        results = list(ex.map(lambda _: psrv.get(path, timeout=60), range(12)))
    assert all(r[0] == 200 for r in results), [r[0] for r in results]
    bodies = {r[2] for r in results}
    assert len(bodies) == 1
    after_first = stats(psrv)["computed"]
    assert 1 <= after_first - before <= 2, (before, after_first)
    # then every worker answers from the store
    seen = on_each_worker(psrv, path)
    assert all(st == 200 and body in bodies for st, body in seen.values())
    assert stats(psrv)["computed"] == after_first
    # a restart keeps them
    psrv.stop()
    psrv.start(wait_scan=True)
    st, h, body = psrv.get(path)
    assert st == 200 and body in bodies
    assert stats(psrv)["computed"] == after_first


def test_single_flight_in_one_worker(tmp_path, lib):
    d, files = lib
    srv = tf.TalasServer(tmp_path / "one", [d], workers=1)
    srv.start(wait_scan=True)
    try:
        track = srv.track_by_title("Long")["id"]
        with cf.ThreadPoolExecutor(10) as ex:
            results = list(ex.map(lambda _: srv.get(f"/api/tracks/{track}/peaks", timeout=60), range(10)))
        assert all(r[0] == 200 for r in results)
        assert len({r[2] for r in results}) == 1
        assert stats(srv)["computed"] == 1
    finally:
        srv.kill()


def test_changed_file_is_computed_again(psrv, tmp_path):
    track = psrv.ids["change"]
    h, body = peaks(psrv, track, 50)
    etag = h["ETag"]
    assert peaks(psrv, track, 50, headers={"If-None-Match": etag}, expect=304)
    n0 = stats(psrv)["computed"]
    tmp = make_envelope(tmp_path / "new.flac", CHANGED, title="Change me")
    os.replace(tmp, psrv.files["change"])
    h, body = peaks(psrv, track, 50)
    assert h["ETag"] != etag
    assert stats(psrv)["computed"] == n0 + 1
    doc = json.loads(body)
    assert abs(doc["max"][0] - 0.5) < 0.02         # the new file's opening
    assert max(doc["max"][11:19]) < 0.01            # its silent second
    assert abs(max(doc["max"][21:]) - 0.9) < 0.02
    peaks(psrv, track, 50)
    assert stats(psrv)["computed"] == n0 + 1


def test_validators_and_cache_control(psrv):
    track = psrv.ids["env"]
    h, _ = peaks(psrv, track, 64)
    assert h["ETag"].startswith('"') and "max-age" in h["Cache-Control"]
    st, h2, body = psrv.get(f"/api/tracks/{track}/peaks?points=64", headers={"If-None-Match": h["ETag"]})
    assert st == 304 and body == b""
    # another N is another representation
    h3, _ = peaks(psrv, track, 65)
    assert h3["ETag"] != h["ETag"]


@pytest.mark.parametrize("points", ["0", "4097", "-1", "abc", "1.5", "", "99999999999999999999"])
def test_bad_points(psrv, points):
    st, h, body = psrv.get(f"/api/tracks/{psrv.ids['env']}/peaks?points={points}")
    assert st == 400 and h["Content-Type"] == JSON_TYPE
    err = json.loads(body)["error"]
    assert err["code"] == "invalid_parameter" and "points" in err["message"]


def test_unknown_missing_undecodable(psrv):
    st, _, body = psrv.get("/api/tracks/AAAAAAAAAAAAAAAA/peaks")
    assert st == 404 and json.loads(body)["error"]["code"] == "not_found"
    st, _, body = psrv.get("/api/tracks/not-an-id/peaks")
    assert st == 404
    psrv.files["gone"].unlink()
    st, _, body = psrv.get(f"/api/tracks/{psrv.ids['gone']}/peaks")
    assert st == 404 and json.loads(body)["error"]["code"] == "file_missing"
    failed0 = stats(psrv)["failed"]
    for _ in range(3):
        st, h, body = psrv.get(f"/api/tracks/{psrv.ids['garbage']}/peaks")
        assert st == 422 and h["Content-Type"] == JSON_TYPE
        assert json.loads(body)["error"]["code"] == "undecodable"
    # remembered: at most one decode attempt per worker
    assert 1 <= stats(psrv)["failed"] - failed0 <= 2
    st, _, _ = psrv.get(f"/api/tracks/{psrv.ids['env']}/peaks", method="POST", body=b"")
    assert st == 405
    # the workers are fine
    assert psrv.health()["status"] == "ok"


def test_talasctl_cache_purge_drops_peaks_and_verify_is_clean(psrv):
    track = psrv.ids["env"]
    peaks(psrv, track)
    cp = psrv.talasctl("cache", "verify")
    assert cp.returncode == 0, cp.stdout + cp.stderr
    n0 = stats(psrv)["computed"]
    cp = psrv.talasctl("cache", "purge", track)
    assert cp.returncode == 0 and "removed 1 waveforms" in cp.stdout, cp.stdout + cp.stderr
    peaks(psrv, track)
    assert stats(psrv)["computed"] == n0 + 1


# ------------------------------------------------------------------- auth

@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    return ak.Keys(tmp_path_factory.mktemp("keys"))


def test_auth_before_anything_is_read(tmp_path, lib, keys):
    d, files = lib
    srv = tf.TalasServer(tmp_path / "auth", [d], workers=2)
    srv.write_config(text=ak.config_with_auth(srv, ak.auth_yaml(keys)))
    srv.start(wait_scan=True)
    try:
        bk = {"Authorization": f"Bearer {keys.backend_key}"}
        ids = {t["title"]: t["id"] for t in srv.get_json("/api/tracks?limit=100", headers=bk)["tracks"]}
        a, b = ids["Envelope"], ids["Stereo MP3"]
        path = f"/api/tracks/{a}/peaks"
        st, h, body = srv.get(path)
        assert st == 401 and "Bearer" in h.get("WWW-Authenticate", "")
        # a token for another track, or for a bad points= value: refused first
        tok_b = ak.pyjwt_token(keys, "HS256", ak.claims(b), kid="k2")
        st, _, _ = srv.get(path + f"?token={tok_b}")
        assert st == 403
        st, _, _ = srv.get(path + f"?token={tok_b}&points=0")
        assert st == 403
        st, _, _ = srv.get(f"/api/tracks/AAAAAAAAAAAAAAAA/peaks?token={tok_b}")
        assert st == 403
        assert stats(srv) == {"computed": 0, "failed": 0}, "something was decoded for a refused request"
        tok_a = ak.pyjwt_token(keys, "HS256", ak.claims(a), kid="k2")
        st, h, body = srv.get(path + f"?token={tok_a}&points=10")
        assert st == 200 and len(json.loads(body)["max"]) == 10
        assert h["Cache-Control"].startswith("private")
        st, _, _ = srv.get(path + "?points=10", headers={"Authorization": f"Bearer {tok_a}"})
        assert st == 200
        assert stats(srv)["computed"] == 1
    finally:
        srv.kill()
