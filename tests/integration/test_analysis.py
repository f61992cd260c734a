"""Loudness and tempo measured at scan time (issue 17, first increment).

A library generated here with ffmpeg (sines and pink noise at known levels,
mono and stereo, 44.1/48/96 kHz, MP3/FLAC/WAV/Opus/M4A) and drum loops
built from the real samples of Debian's hydrogen-data at known tempos is
scanned by a real talas-master; what /api/tracks reports is held against
ffmpeg's own ebur128 filter on the same files, and against the tempo the
loops were built at.  Also: silence (null, never -inf), a truncated file
(skipped, logged, workers alive), a file replaced by a louder one, the
analysis kept out of the workers (the worker program does not even link
the libraries; /api/health answers while 200 files are analysed), and the
bpm_min/bpm_max/max_duration filters.
"""

import array
import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

import talas_fixtures as tf

KIT = Path("/usr/share/hydrogen/data/drumkits/GMRockKit")


def ffmpeg(*args, timeout=120):
    tf.run(["ffmpeg", "-v", "error", "-nostdin", "-y", *args], timeout=timeout)


def ffmpeg_ebur128(path):
    """ffmpeg's own measurement: (integrated LUFS, true peak dBTP)."""
    cp = tf.run(["ffmpeg", "-nostats", "-nostdin", "-i", path, "-af", "ebur128=peak=true",
                 "-f", "null", "-"], timeout=120)
    summary = cp.stderr[cp.stderr.rindex("Summary:"):]
    integrated = float(re.search(r"I:\s+(-?[\d.]+|-inf) LUFS", summary).group(1))
    peak = re.search(r"True peak:\s+Peak:\s+(-?[\d.]+|-inf) dBFS", summary).group(1)
    return integrated, float(peak)


def _load_sample(name, rate):
    """A drum sample of the kit, mono float at RATE."""
    cp = subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-i", str(KIT / name), "-ac", "1",
                         "-ar", str(rate), "-f", "f32le", "-"], capture_output=True, timeout=60, check=True)
    return array.array("f", cp.stdout)


def make_drum_loop(out, bpm, seconds, rate=44100):
    """A rock beat from Hydrogen's GMRockKit: kick on 1 and 3, snare on 2
    and 4, closed hi-hat on every eighth, mixed sample-exactly at BPM."""
    if not KIT.is_dir():
        pytest.skip("hydrogen-data is not installed (scripts/deps test)")
    kick = _load_sample("Kick-Hard.wav", rate)
    snare = _load_sample("Snare-Hard.wav", rate)
    hat = _load_sample("HatClosed-Med.wav", rate)
    buf = array.array("f", bytes(4 * int(seconds * rate)))
    eighth = 60.0 / bpm / 2
    for i in range(int(seconds / eighth)):
        hits = [(hat, 0.5)]
        if i % 4 == 0:
            hits.append((kick, 0.9))
        elif i % 4 == 2:
            hits.append((snare, 0.8))
        start = int(round(i * eighth * rate))
        for sample, gain in hits:
            for k in range(start, min(len(buf), start + len(sample))):
                buf[k] += gain * sample[k - start]
    subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-y", "-f", "f32le", "-ar", str(rate), "-ac", "1",
                    "-i", "-", "-ac", "2", str(out)], input=buf.tobytes(), check=True, timeout=60)


# name -> (lavfi source, output args, seconds); the sines' levels are known:
# amplitude 0.1 peaks at -20 dBFS, 0.316228 at -10 dBFS
SINE_20 = "0.1*sin(2*PI*1000*t)"
TONES = {
    "sine-48k-stereo.flac": (f"aevalsrc={SINE_20}|{SINE_20}:s=48000", [], 12),
    "sine-96k-mono.wav": ("aevalsrc=0.316228*sin(2*PI*440*t):s=96000", [], 10),
    "pink-44k-mono.mp3": ("anoisesrc=color=pink:sample_rate=44100:amplitude=0.25", ["-b:a", "192k"], 12),
    "pink-48k-stereo.opus": ("anoisesrc=color=pink:sample_rate=48000:amplitude=0.5", ["-ac", "2", "-c:a",
                                                                                      "libopus"], 12),
    "sine-44k-stereo.m4a": ("sine=frequency=3000:sample_rate=44100", ["-af", "volume=-6dB", "-ac", "2",
                                                                      "-c:a", "aac", "-b:a", "192k"], 12),
    # a quarter of the rate, 45 degrees off the samples: they read 0.354
    # (-9.03 dBFS), the wave between them peaks at 0.5 (-6.02 dBTP); faded
    # in and out, for a sudden start rings above 0.5 when oversampled
    "intersample-44k-mono.wav": ("aevalsrc=0.5*sin(2*PI*11025*t+PI/4):s=44100",
                                 ["-af", "afade=t=in:d=0.5,afade=t=out:st=9.5:d=0.5"], 10),
}
LOOPS = {"drum-120.flac": (120, 30), "drum-95.mp3": (95, 30), "drum-140.wav": (140, 20)}


@pytest.fixture(scope="module")
def analysis_library(tmp_path_factory):
    d = tmp_path_factory.mktemp("analysis-lib")
    for name, (src, args, secs) in TONES.items():
        ffmpeg("-f", "lavfi", "-i", src + (f":d={secs}" if src.startswith("aevalsrc") else f":duration={secs}"),
               *args, d / name)
    for name, (bpm, secs) in LOOPS.items():
        make_drum_loop(d / name, bpm, secs)
    ffmpeg("-f", "lavfi", "-i", "anullsrc=r=44100:cl=stereo", "-t", "5", d / "silence.wav")
    # the first half of a FLAC file: its header announces 20 s
    ffmpeg("-f", "lavfi", "-i", "sine=frequency=500:sample_rate=44100:duration=20", d / "whole.tmp.flac")
    whole = (d / "whole.tmp.flac").read_bytes()
    (d / "truncated.flac").write_bytes(whole[:len(whole) // 2])
    (d / "whole.tmp.flac").unlink()
    return d


def by_name(srv):
    return {Path(t["title"]).name: t for t in srv.tracks()}


def strict_json(body):
    """JSON as a strict parser reads it: -Infinity and NaN are not JSON."""
    def refuse(name):
        raise AssertionError(f"non-JSON constant {name} in {body[:300]!r}")
    return json.loads(body, parse_constant=refuse)


def test_loudness_and_tempo_match_references(talas_server, analysis_library):
    srv = talas_server([analysis_library])
    tracks = by_name(srv)
    for name in list(TONES) + list(LOOPS):
        t = tracks[Path(name).stem]
        lo = t["loudness"]
        assert lo is not None, f"{name}: no loudness: {t}"
        ref_i, ref_tp = ffmpeg_ebur128(analysis_library / name)
        assert abs(lo["integrated_lufs"] - ref_i) <= 0.1, f"{name}: {lo} against ffmpeg I {ref_i}"
        assert abs(lo["true_peak_dbtp"] - ref_tp) <= 0.3, f"{name}: {lo} against ffmpeg true peak {ref_tp}"
        assert lo["sample_peak_dbfs"] <= lo["true_peak_dbtp"] + 0.01, f"{name}: {lo}"
        rg = t["replay_gain"]
        assert abs(rg["track_gain_db"] - (-18 - lo["integrated_lufs"])) <= 0.011, f"{name}: {rg}"
        assert abs(rg["track_peak"] - 10 ** (lo["sample_peak_dbfs"] / 20)) <= 1e-3, f"{name}: {rg}"
    # the known levels themselves (lossless files)
    assert abs(tracks["sine-48k-stereo"]["loudness"]["sample_peak_dbfs"] + 20) <= 0.05
    assert abs(tracks["sine-96k-mono"]["loudness"]["sample_peak_dbfs"] + 10) <= 0.05
    # the true peak lies between the samples
    isp = tracks["intersample-44k-mono"]["loudness"]
    assert abs(isp["sample_peak_dbfs"] + 9.03) <= 0.05, isp
    assert abs(isp["true_peak_dbtp"] + 6.02) <= 0.1, isp
    for name, (bpm, _) in LOOPS.items():
        tempo = tracks[Path(name).stem]["tempo"]
        assert tempo is not None and abs(tempo["bpm"] - bpm) <= 1, f"{name}: built at {bpm} BPM, read {tempo}"
        assert tempo["confidence"] > 0
    # noise and sines have no beat
    for name in TONES:
        assert tracks[Path(name).stem]["tempo"] is None, (name, tracks[Path(name).stem]["tempo"])
    # one track's document carries the same
    one = srv.get_json("/api/tracks/" + tracks["drum-120"]["id"])
    assert one["tempo"] == tracks["drum-120"]["tempo"] and one["loudness"] == tracks["drum-120"]["loudness"]
    # talasctl prints them
    cp = srv.talasctl("tracks", "show", tracks["drum-120"]["id"], check=True)
    assert "integrated_lufs" in cp.stdout and "bpm" in cp.stdout, cp.stdout
    cp = srv.talasctl("--json", "tracks", "show", tracks["drum-120"]["id"], check=True)
    shown = strict_json(cp.stdout)
    assert shown["tempo"] == tracks["drum-120"]["tempo"] and shown["analysis_error"] is None
    # the scan's figures: everything to analyse was analysed
    scan = srv.health()["scan"]
    assert scan["to_analyse"] == scan["analysed"] == len(TONES) + len(LOOPS) + 2, scan


def test_silence_is_null_and_truncated_is_skipped(talas_server, analysis_library):
    srv = talas_server([analysis_library])
    workers = srv.worker_pids()
    st, _, body = srv.get("/api/tracks?limit=1000")
    assert st == 200
    tracks = {t["title"]: t for t in strict_json(body)["tracks"]}

    silence = tracks["silence"]
    assert silence["loudness"]["integrated_lufs"] is None, silence
    assert silence["loudness"]["true_peak_dbtp"] is None
    assert silence["replay_gain"] == {"track_gain_db": None, "track_peak": 0}
    assert silence["tempo"] is None
    st, _, body = srv.get("/api/tracks/" + silence["id"])
    assert st == 200 and strict_json(body)["loudness"]["integrated_lufs"] is None
    assert b"inf" not in body.lower() and b"nan" not in body.lower()

    trunc = tracks["truncated"]
    assert trunc["loudness"] is None and trunc["replay_gain"] is None and trunc["tempo"] is None, trunc
    log = srv.error_log.read_text()
    assert re.search(r"truncated\.flac: not analysed: \S", log), log[-2000:]
    shown = strict_json(srv.talasctl("--json", "tracks", "show", trunc["id"], check=True).stdout)
    assert shown["analysis_error"], shown
    # the scanner got through it, and no worker died
    assert srv.health()["status"] == "ok"
    assert srv.worker_pids() == workers


def test_replaced_file_is_measured_again(talas_server, tmp_path):
    lib = tmp_path / "lib"
    lib.mkdir()
    song = lib / "song.flac"
    ffmpeg("-f", "lavfi", "-i", "anoisesrc=color=pink:sample_rate=44100:amplitude=0.05:duration=8", song)
    srv = talas_server([lib])
    before = srv.track_by_title("song")["loudness"]["integrated_lufs"]

    louder = tmp_path / "louder.flac"
    ffmpeg("-f", "lavfi", "-i", "anoisesrc=color=pink:sample_rate=44100:amplitude=0.5:duration=8", louder)
    os.replace(louder, song)
    srv.talasctl("scan", check=True)
    after = srv.track_by_title("song")["loudness"]["integrated_lufs"]
    ref, _ = ffmpeg_ebur128(song)
    assert abs(after - ref) <= 0.1 and after > before + 15, (before, after, ref)


def _symbols(binary):
    """Every symbol BINARY defines or needs (nm: U for the ones it imports)."""
    out = tf.run(["nm", "-D", binary], check=False).stdout + tf.run(["nm", binary], check=False).stdout
    return {line.split()[-1].split("@")[0] for line in out.splitlines() if line.strip()}


def test_workers_do_not_link_the_analysis():
    """Structural: the worker program cannot run an analysis, it carries
    no code of libebur128 or aubio, not even an import. The master side
    (whose forked scanner does it) does: the check is not vacuous."""
    analysis = re.compile(r"^(ebur128_|aubio_|new_aubio_|del_aubio_|talas_measure_|talas_analysis_run)")
    worker = {s for s in _symbols(tf.BUILDDIR / "talas-worker") if analysis.match(s)}
    assert not worker, f"talas-worker references {sorted(worker)[:10]}"
    libs = tf.run(["ldd", tf.BUILDDIR / "talas-worker"]).stdout
    assert "ebur128" not in libs and "aubio" not in libs, libs
    for program in ("talas-master", "talasctl"):
        syms = _symbols(tf.BUILDDIR / program)
        assert "ebur128_loudness_global" in syms and "talas_measure_file" in syms, program


def test_health_answers_while_analysing(talas_server, tmp_path, record_property):
    lib = tmp_path / "many"
    lib.mkdir()
    first = lib / "t000.flac"
    ffmpeg("-f", "lavfi", "-i", "anoisesrc=color=pink:sample_rate=44100:amplitude=0.3:duration=10",
           "-ac", "2", first)
    for i in range(1, 200):
        shutil.copyfile(first, lib / f"t{i:03d}.flac")
    srv = talas_server([lib], wait_scan=False)

    latencies, during = [], 0
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        t0 = time.monotonic()
        st, _, body = srv.get("/api/health", timeout=10)
        latencies.append(time.monotonic() - t0)
        assert st == 200, body
        scan = json.loads(body)["scan"] or {}
        if scan.get("running") and scan.get("to_analyse") == 200 and scan.get("analysed", 0) < 200:
            during += 1
        if scan.get("running") is False and scan.get("finished_at"):
            break
    scan = srv.health()["scan"]
    assert scan["analysed"] == scan["to_analyse"] == 200, scan
    assert during > 0, "never saw the analysis in progress"
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    record_property("health_requests_during_analysis", during)
    record_property("health_p99_ms", round(p99 * 1000, 2))
    assert all(t["loudness"] is not None for t in srv.tracks()), "a track was not analysed"


def test_filters(talas_server, analysis_library):
    srv = talas_server([analysis_library])
    tracks = by_name(srv)

    def titles(query):
        doc = srv.get_json("/api/tracks?limit=1000&" + query)
        assert doc["total"] == len(doc["tracks"])
        return {t["title"] for t in doc["tracks"]}

    assert titles("bpm_min=100&bpm_max=130") == {"drum-120"}
    assert titles("bpm_min=130") == {"drum-140"}
    assert titles("bpm_max=100") == {"drum-95"}
    assert titles("bpm_min=90&bpm_max=150") == {"drum-95", "drum-120", "drum-140"}
    assert titles("bpm_min=120.5&bpm_max=121") == set()
    # max_duration in seconds, inclusive
    short = {t["title"] for t in tracks.values() if t["duration_ms"] <= 12000}
    assert short and short != set(tracks)
    assert titles("max_duration=12") == short
    assert titles("max_duration=25&bpm_min=100") == {"drum-140"}
    assert titles("max_duration=25&q=drum") == {"drum-140"}

    for bad in ("bpm_min=abc", "bpm_min=-1", "bpm_max=1e3", "bpm_max=", "max_duration=inf",
                "max_duration=1.2.3", "bpm_min=130&bpm_max=100", "bpm_min=0x10", "bpm_max=100000"):
        st, _, body = srv.get("/api/tracks?" + bad)
        assert st == 400, (bad, st, body)
        err = json.loads(body)
        assert err["error"]["code"] == "invalid_parameter" and err["error"]["message"], (bad, err)


def test_analysis_keys(talas_server, analysis_library):
    """analysis.tempo_max_duration leaves longer tracks without a tempo;
    analysis.loudness: false measures none."""
    srv = talas_server([analysis_library],
                       extra_yaml="analysis:\n  loudness: false\n  tempo_max_duration: 25\n")
    tracks = by_name(srv)
    assert tracks["drum-140"]["tempo"] is not None          # 20 s
    assert tracks["drum-120"]["tempo"] is None              # 30 s
    assert all(t["loudness"] is None for t in tracks.values())
