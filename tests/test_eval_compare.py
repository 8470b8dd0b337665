"""`python -m eval.compare`: headline figures of a report, means and spreads over runs, paired differences."""

import json

import pytest

from eval.compare import main
from gameworld.metrics.compare import Run, Summary, compare, headline


def report(psnr8: float, mouse: float, seed: int = 0, seed_base: int = 100_000, frames: int = 300) -> dict:
    """A minimal eval.score report: the model at `psnr8` dB and `mouse` accuracy, copy-last at 15 dB."""
    def row(psnr: float, keys: float, mouse: float) -> dict:
        return {
            "psnr": {"1": psnr + 3, "8": psnr, "64": None},
            "ssim": {"8": 0.5},
            "keyboard_accuracy": keys,
            "mouse_accuracy": mouse,
            "frames_per_second": 10.0,
            "curves": {"psnr": [100.0, psnr + 3, psnr]},
        }

    return {
        "protocol": {"name": "quick", "seed_base": seed_base, "frames": 65},
        "engine": {"seed": seed, "temperature": 1.0},
        "horizons": [1, 8, 64],
        "rows": {"model": row(psnr8, 0.7, mouse), "copy-last-frame": row(15.0, 0.8, 0.6),
                 "ground truth": row(100.0, 0.875, 1.0)},
        "long": {"idle": {
            "model": {"curves": {"brightness": list(range(frames)), "sharpness": [50.0] * frames,
                                 "psnr": [20.0] * frames}},
            "ground truth": {"curves": {"brightness": [90.0] * frames, "sharpness": [200.0] * frames}},
        }},
        "revisit": {"turn": {"model": 19.0}, "walk": {"model": 12.0}},
    }


def test_headline_reads_the_bars_from_one_report():
    figures = headline(report(psnr8=14.0, mouse=0.5))
    assert figures["PSNR@8"] == 14.0 and figures["PSNR@1"] == 17.0 and figures["PSNR@64"] is None
    assert figures["PSNR@8 - copy-last"] == pytest.approx(-1.0)
    assert figures["keyboard / truth"] == pytest.approx(0.8)
    assert figures["mouse / truth"] == pytest.approx(0.5)
    assert figures["idle brightness - truth @100"] == 10.0
    assert figures["idle brightness - truth @500"] == 209.0  # the rollout's last frame
    assert figures["idle sharpness / truth @1000"] == 0.25 and figures["idle PSNR @100"] == 20.0
    assert figures["revisit turn"] == 19.0 and figures["frames/s"] == 10.0
    assert not any(name.startswith("motion") for name in figures)  # a report from before the metric
    moving = report(psnr8=14.0, mouse=0.5)
    moving["rows"]["model"]["motion_response"] = {"walk": 0.25, "strafe": None}
    figures = headline(moving)
    assert figures["motion walk"] == 0.25 and figures["motion strafe"] is None


def test_summary_ignores_missing_values_and_needs_two_for_a_spread():
    summary = Summary.of([1.0, None, 3.0, float("nan")])
    assert (summary.mean, summary.low, summary.high, summary.count) == (2.0, 1.0, 3.0, 2)
    assert summary.std == pytest.approx(2**0.5)
    assert Summary.of([4.0]).std is None and Summary.of([None]).mean is None


def test_paired_runs_cancel_the_luck_of_the_draw(tmp_path):
    worlds = [(0, 100_000, 12.0), (1, 100_000, 16.0), (0, 100_050, 14.0)]  # noise seed, worlds, their luck
    base = [Run(tmp_path / f"a{i}", report(luck, 0.5, s, w)) for i, (s, w, luck) in enumerate(worlds)]
    better = [Run(tmp_path / f"b{i}", report(luck + 0.5, 0.5, s, w)) for i, (s, w, luck) in enumerate(worlds)]
    result = compare({"base": base, "better": better})
    assert result["paired"]
    assert result["summary"]["base"]["PSNR@8"].std == pytest.approx(2.0)  # the draws differ by 2 dB
    difference = result["differences"]["better"]["PSNR@8"]
    assert difference.mean == pytest.approx(0.5) and difference.std == pytest.approx(0.0, abs=1e-12)

    older = Run(tmp_path / "old", {**base[0].results, "protocol": {**base[0].results["protocol"]}})
    older.results["protocol"]["starts_from"] = []  # a field newer reports write, empty
    assert compare({"base": base[:1], "older": [older]})["paired"]

    shuffled = compare({"base": base, "better": better[::-1]})  # other draws in each position
    assert not shuffled["paired"] and shuffled["differences"] == {}
    with pytest.raises(ValueError, match="at least one report"):
        compare({"base": base, "empty": []})


def test_cli_writes_the_table_and_reports_bad_input(tmp_path, capsys):
    folders = []
    for name, psnr8, seed in (("a0", 14.0, 0), ("a1", 14.4, 1), ("b0", 14.6, 0), ("b1", 15.0, 1)):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "results.json").write_text(json.dumps(report(psnr8, 0.5, seed)))
        folders.append(str(folder))
    out = tmp_path / "cmp"
    assert main(["--group", "T=1", *folders[:2], "--group", "T=0.9", *folders[2:], "--out", str(out)]) == 0
    table = (out / "compare.md").read_text()
    assert "| PSNR@8 | 14.20 ± 0.28 [14.00, 14.40] | 14.80 ± 0.28 [14.60, 15.00] | +0.60 ± 0.00" in table
    assert "| PSNR@64 | not computed |" in table and "| mouse / truth | 50.0%" in table
    saved = json.loads((out / "compare.json").read_text())
    assert saved["paired"] and saved["differences"]["T=0.9"]["PSNR@8"]["mean"] == pytest.approx(0.6)
    assert (out / "psnr_vs_horizon.png").stat().st_size > 0

    assert main(["--group", "T=1", str(tmp_path / "nowhere"), "--out", str(out)]) == 2
    assert "nowhere: no results.json here" in capsys.readouterr().err
    (tmp_path / "a0" / "results.json").write_text("{")
    assert main(["--group", "T=1", folders[0], "--out", str(out)]) == 2
    assert "a0/results.json: not valid JSON" in capsys.readouterr().err
    assert main(["--group", "T=1", "--out", str(out)]) == 2
    assert "names no report folders" in capsys.readouterr().err
    assert main(["--group", "T=1", folders[1], "--group", "T=1", folders[1], "--out", str(out)]) == 2
    assert "named twice" in capsys.readouterr().err
