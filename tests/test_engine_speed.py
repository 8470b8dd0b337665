"""python -m eval.speed --engine / --spec-quality: the table and JSON of the engine benchmark."""

import json

import pytest

from eval.speed import add_ratios, held_action_script, main


def test_held_action_scripts_are_seeded_runs_of_one_action():
    script = held_action_script(200, seed=3)
    assert script == held_action_script(200, seed=3) != held_action_script(200, seed=4)
    runs = [1]
    for before, after in zip(script, script[1:], strict=False):
        runs[-1] += 1 if after == before else 0
        if after != before:
            runs.append(1)
    assert len(script) == 200 and min(runs[:-1]) >= 8


def test_ratios_compare_rows_of_the_same_run():
    base = dict(size="tiny", window=8, steps=1, compile=False)
    rows = [
        dict(base, use_cache=True, speculative=0, fps=10.0),
        dict(base, use_cache=False, speculative=0, fps=2.5),
        dict(base, use_cache=True, speculative=4, fps=15.0),
        dict(base, use_cache=False, speculative=4, fps=5.0),
        dict(base, use_cache=True, speculative=0, fps=40.0, cuda_graphs=True),
        dict(base, use_cache=True, speculative=4, fps=60.0, cuda_graphs=True),
    ]
    add_ratios(rows)
    assert rows[0]["cache_speedup"] == 4.0 and rows[2]["cache_speedup"] == 3.0
    assert rows[2]["speculative_speedup"] == 1.5 and "speculative_speedup" not in rows[0]
    assert "cache_speedup" not in rows[1]
    # CUDA-graph rows compare with CUDA-graph rows only (and have no cache-off partner)
    assert rows[5]["speculative_speedup"] == 1.5 and "cache_speedup" not in rows[4]


def test_engine_mode_writes_medians_and_ratios(tiny_model_dir, tmp_path, capsys):
    out = tmp_path / "speed.json"
    argv = ["--engine", "--model", str(tiny_model_dir), "--steps", "1", "--frames", "3", "--speculative", "2",
            "--device", "cpu", "--out", str(out)]
    assert main(argv) == 0
    table = capsys.readouterr().out
    assert "fps" in table and "cache x" in table
    record = json.loads(out.read_text())
    rows = record["rows"]
    configurations = {(r["use_cache"], r["speculative"]) for r in rows}
    assert configurations == {(True, 0), (False, 0), (True, 2), (False, 2)}
    for row in rows:
        assert len(row["fps_runs"]) == 3 and row["fps"] > 0
        assert row["latency_ms_p90"] >= row["latency_ms_median"]
        assert row["window"] == 6 and row["tokens_per_frame"] == 8
    assert all("cache_speedup" in r for r in rows if r["use_cache"])
    assert all("speculative_speedup" in r for r in rows if r["speculative"])
    assert record["settings"]["model"] == str(tiny_model_dir)


def test_spec_quality_mode_scores_both_engines_against_the_voxel_game(tiny_model_dir, tmp_path):
    out = tmp_path / "q.json"
    argv = ["--spec-quality", "--model", str(tiny_model_dir), "--clips", "1", "--frames", "4",
            "--device", "cpu", "--out", str(out)]
    assert main(argv) == 0
    (row,) = json.loads(out.read_text())["rows"]
    assert row["difference_db"] == row["psnr_joint_db"] - row["psnr_plain_db"]
    assert 0 < row["psnr_plain_db"] < 60 and len(row["psnr_joint_per_clip"]) == 1


@pytest.mark.parametrize("fails_at", [8, 12])  # frame 8: in the warm-up (10 frames); 12: while timed
def test_a_compiled_engine_that_fails_costs_its_row_not_the_benchmark(fails_at, tiny_model_dir, tmp_path,
                                                                      monkeypatch, capsys):
    from gameworld.engine import WorldEngine

    plain_step = WorldEngine.step

    def step(self, action):
        if self.settings.compile and self.stats.frames >= fails_at:  # as a CUDA-graph replay once did
            raise RuntimeError("compiled step broke")
        return plain_step(self, action)

    monkeypatch.setattr(WorldEngine, "_compile", lambda self: None)  # compiling is not what is tested
    monkeypatch.setattr(WorldEngine, "step", step)
    out = tmp_path / "speed.json"
    argv = ["--engine", "--model", str(tiny_model_dir), "--steps", "1", "--frames", "3", "--speculative", "2",
            "--device", "cpu", "--compile", "--out", str(out)]
    assert main(argv) == 0
    assert "failed: RuntimeError: compiled step broke" in capsys.readouterr().out
    rows = json.loads(out.read_text())["rows"]
    failed = [r for r in rows if "error" in r]
    failed_settings = {(r["compile"], r["use_cache"], r["speculative"]) for r in failed}
    assert failed_settings == {(True, True, 0), (True, True, 2)}
    timed = [r for r in rows if "error" not in r]
    assert len(timed) == 4 and not any(r["compile"] for r in timed) and all(r["fps"] > 0 for r in timed)
