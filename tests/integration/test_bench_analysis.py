"""scripts/bench-analysis in its quick mode: it runs, measures with both
sides, and prints its table and ratios in the shape documented in the
script. No figure is asserted: a benchmark's numbers are for reading."""

import os
import re

import pytest

import talas_fixtures as tf

ROW = re.compile(r"^(talas-loudness|talas-full|ffmpeg-ebur128)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+(-?[\d.]+)$")


def test_bench_analysis_quick():
    tool = tf.BUILDDIR / "tests" / "tools" / "talas-analyse"
    if not os.access(tool, os.X_OK):
        pytest.fail(f"{tool} is not built (make check builds it)")
    cp = tf.run([tf.SRCDIR / "scripts" / "bench-analysis", "--quick"], timeout=300,
                env={**os.environ, "TALAS_BUILDDIR": str(tf.BUILDDIR)})
    lines = cp.stdout.strip().splitlines()
    assert lines[0].split() == ["side", "audio_s", "cpu_s", "x_per_core", "I_LUFS"], cp.stdout
    rows = {}
    for line in lines[1:4]:
        m = ROW.match(line)
        assert m, f"malformed row {line!r} in\n{cp.stdout}"
        rows[m.group(1)] = [float(x) for x in m.groups()[1:]]
    assert set(rows) == {"talas-loudness", "talas-full", "ffmpeg-ebur128"}
    for side, (audio, cpu, x, lufs) in rows.items():
        assert audio == pytest.approx(5.0, abs=0.1) and cpu > 0 and x > 0, (side, rows[side])
    # both sides measured the same file: the same loudness (ffmpeg prints one decimal)
    assert abs(rows["talas-loudness"][3] - rows["ffmpeg-ebur128"][3]) <= 0.1, rows
    assert re.fullmatch(r"ratio loudness [\d.]+", lines[4]) and re.fullmatch(r"ratio full [\d.]+", lines[5]), \
        cp.stdout
