"""eval.speed --voxel: rows of real timings, a table, and an atomically written JSON record."""

from __future__ import annotations

import json

import pytest

from eval.speed import bench_voxel, main, parse_sizes


def test_bench_voxel_times_steps_and_renders():
    rows = bench_voxel([(32, 24), (16, 16)], frames=4, warmup=1, biomes=("plains", "icy"))
    assert [(r["width"], r["height"]) for r in rows] == [(32, 24), (16, 16)]
    for row in rows:
        assert row["frames"] == 8 and row["mode"] == "voxel"
        assert row["step_fps"] > 0 and row["render_fps"] > 0
        assert row["step_ms_median"] == pytest.approx(1000 / row["step_fps"])
        assert row["step_ms_p90"] >= row["step_ms_median"] * 0.5


def test_cli_prints_a_table_and_writes_json(tmp_path, capsys):
    out = tmp_path / "speed.json"
    assert main(["--voxel", "--sizes", "24x16", "--frames", "2", "--out", str(out), "--all-cores"]) == 0
    table = capsys.readouterr().out
    assert "step fps" in table and "24x16" in table
    record = json.loads(out.read_text())
    assert record["rows"][0]["width"] == 24 and record["rows"][0]["frames"] == 16  # 2 frames x 8 biomes
    assert not list(tmp_path.glob("*.tmp"))


def test_cli_errors():
    with pytest.raises(SystemExit):
        main(["--sizes", "24x16"])  # no mode chosen
    with pytest.raises(Exception, match="256x144"):
        parse_sizes("big")
