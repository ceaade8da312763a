"""Claims, reports, the batched simulations behind the reproductions, and the CLI (issue 7)."""
from __future__ import annotations

import base64
import json
import math

import numpy as np
import pytest

from deepstart.experiments.reproduce import PAPERS, Claim, PaperReport, judge, reproduce, write_gallery
from deepstart.experiments.reproduce._common import backprop_log_norms, mlp_lengths, resnet_lengths
from deepstart.experiments.reproduce.claims import FAILS, HOLDS, NOT_EVALUATED, PARTIAL
from deepstart.experiments.reproduce.report import Figure

PNG_1PX = base64.b64encode(bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000001e221bc330000000049454e44ae426082")).decode()


# --- claims --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("value,expected", [(1.05, HOLDS), (0.8, PARTIAL), (1.5, FAILS), (1.09, HOLDS), (1.31, FAILS)])
def test_relative_rule_thresholds(value, expected):
    assert judge("relative", value, 1.0) == expected  # defaults: 0.1 holds, 0.3 partially


@pytest.mark.parametrize("value,expected", [(0.3, HOLDS), (0.6, PARTIAL), (0.9, FAILS)])
def test_zscore_rule_thresholds(value, expected):
    assert judge("zscore", value, 0.0, error=0.1) == expected  # z = 3, 6, 9 against 4 / 8


def test_at_least_rule_and_missing_numbers():
    assert judge("at_least", 0.9, 0.8, partial=0.5) == HOLDS
    assert judge("at_least", 0.6, 0.8, partial=0.5) == PARTIAL
    assert judge("at_least", 0.4, 0.8, partial=0.5) == FAILS
    assert judge("at_least", 0.4, 0.8) == FAILS
    assert judge("relative", None, 1.0) == NOT_EVALUATED
    assert judge("relative", float("nan"), 1.0) == NOT_EVALUATED


def test_bad_rule_and_bad_error_raise():
    with pytest.raises(ValueError, match="valid: relative, zscore"):
        judge("roughly", 1.0, 1.0)
    with pytest.raises(ValueError, match="standard error"):
        judge("zscore", 1.0, 1.0, error=0.0)
    with pytest.raises(ValueError, match="non-zero target"):
        judge("relative", 1.0, 0.0)


def test_claim_status_is_derived_and_round_trips():
    c = Claim("c", "paper says", "we got 1.02", rule="relative", value=1.02, target=1.0)
    assert c.status == HOLDS
    d = c.to_dict()
    assert d["status"] == HOLDS
    d["status"] = FAILS  # a tampered saved status is ignored: the verdict is recomputed from the numbers
    assert Claim.from_dict(d).status == HOLDS
    assert Claim.not_evaluated("c", "s", "no data").status == NOT_EVALUATED


# --- report ----------------------------------------------------------------------------------------------------
def _report():
    claims = (Claim("a", "A holds", "1.0", rule="relative", value=1.0, target=1.0),
              Claim("b", "B holds", "3.0", rule="relative", value=3.0, target=1.0))
    return PaperReport("demo", "Demo paper", "X. Y. Demo. 2020.", "tiny", {"depth": 3}, claims,
                       (Figure("fig1", "a caption", PNG_1PX),), ("a note",), 1.5)


def test_report_writes_selfcontained_html_md_png(tmp_path):
    paths = _report().write(tmp_path)
    html = paths["html"].read_text()
    assert f"data:image/png;base64,{PNG_1PX}" in html  # embedded: no external file needed
    assert html.count("<tr>") == 3 + 1  # header + 2 claims, + 1 settings row
    assert "does not hold" in html and "holds" in html
    assert paths["png:fig1"].read_bytes() == base64.b64decode(PNG_1PX)
    md = paths["md"].read_text()
    assert "| a | A holds | 1.0 | \\|value/target − 1\\| ≤ 0.1 holds, ≤ 0.3 partially | **holds** |" in md
    assert "![fig1](demo_fig1.png)" in md and "wall time 2 s" in md
    saved = json.loads(paths["json"].read_text())
    assert [c["status"] for c in saved["claims"]] == [HOLDS, FAILS]


def test_report_round_trip_and_gallery(tmp_path):
    r = _report()
    assert PaperReport.from_dict(r.to_dict()) == r
    assert r.status_counts() == {HOLDS: 1, FAILS: 1}
    text = write_gallery([r], tmp_path / "g.md").read_text()
    assert text.startswith("# Reproductions") and "1 holds, 1 does not hold" in text


# --- simulations against THEORY.md reference values ---------------------------------------------------------
def test_mlp_lengths_log_moments_match_fm2_reference(generator):
    # THEORY.md §4: width 20, He: per layer E log ξ = -0.137187, Var log ξ = 0.311758 (exact digamma forms)
    logm = np.log(mlp_lengths(20, [20] * 5, [2 / 20] * 5, 4000, generator=generator)[:, -1].numpy())
    se_mean = logm.std(ddof=1) / math.sqrt(len(logm))
    assert abs(logm.mean() - 5 * -0.137187) < 5 * se_mean
    se_var = math.sqrt(np.mean((logm - logm.mean()) ** 4) / len(logm))
    assert abs(logm.var(ddof=1) - 5 * 0.311758) < 5 * se_var


def test_mlp_lengths_fm1_mean_any_symmetric_law(generator):
    # FM1 (Hanin & Rolnick 2018 Thm 4): E[M_d]/M_0 = (c/2)^d for any symmetric law; here uniform weights, c = 3
    m = mlp_lengths(40, [40] * 3, [3 / 40] * 3, 4000, law="uniform", generator=generator)[:, -1].numpy()
    assert abs(m.mean() - 1.5**3) < 5 * m.std(ddof=1) / math.sqrt(len(m))
    with pytest.raises(ValueError, match="normal, uniform, truncated"):
        mlp_lengths(4, [4], [1.0], 2, law="cauchy", generator=generator)


def test_resnet_lengths_match_product_law(generator):
    # THEORY.md §4: E[M_L]/M_0 = ∏(1 + η_l²); η = (1, 0.5, 0.25): 2 · 1.25 · 1.0625
    m = resnet_lengths(32, [1.0, 0.5, 0.25], 3000, generator=generator)[:, -1].numpy()
    assert abs(m.mean() - 2 * 1.25 * 1.0625) < 5 * m.std(ddof=1) / math.sqrt(len(m))


def test_backprop_walk_linear_variance_is_trigamma(generator):
    # THEORY.md §3 (exact, linear): per layer Var ln z = ψ'(N/2); N = 20: ψ'(10) = 0.105166 (scipy.special.polygamma)
    walk = backprop_log_norms("linear", 20, 6, 1.0, 2000, generator=generator)[:, -1].numpy()
    var, n = walk.var(ddof=1), len(walk)
    assert abs(var - 6 * 0.1051663) < 5 * var * math.sqrt(2 / (n - 1))
    # at g = 1 the drift per layer is ln(2/N) + ψ(N/2) = ln(0.1) + 2.251753 = -0.050833
    assert abs(walk.mean() - 6 * -0.0508330) < 5 * walk.std(ddof=1) / math.sqrt(n)


# --- CLI -------------------------------------------------------------------------------------------------------
def test_cli_rejects_unknown_paper(capsys):
    from deepstart.cli import main

    assert main(["reproduce", "smith-2099", "--tiny"]) == 2
    assert "valid: hanin-rolnick" in capsys.readouterr().err


def test_unknown_mode_and_paper_raise():
    with pytest.raises(ValueError, match="valid: tiny, quick, full"):
        reproduce("pennington", "medium")
    with pytest.raises(ValueError, match="valid: hanin-rolnick"):
        reproduce("nobody", "tiny")
    assert set(PAPERS) == {"hanin-rolnick", "sussillo-abbott", "gurbuzbalaban-hu", "pennington"}


# --- repeatable and safe to run (issue 12) ----------------------------------------------------------------------
def test_same_seed_gives_the_same_numbers_and_out_folders_are_checked(tmp_path):
    from deepstart.experiments.reproduce import MANIFEST, check_out

    # two runs from empty stores (so training really runs twice); the claim values must agree exactly
    first = reproduce("pennington", "tiny", out=tmp_path / "a", seed=5)
    second = reproduce("pennington", "tiny", out=tmp_path / "b", seed=5)
    values = lambda reports: [(c.claim, c.value, c.measurement) for c in reports[0].claims]  # noqa: E731
    assert values(first) == values(second) and any(c.value is not None for c in first[0].claims)
    assert "results.db" in json.loads((tmp_path / "a" / MANIFEST).read_text())["files"]
    check_out(tmp_path / "a")  # written only by reproduce: a rerun may write there
    (tmp_path / "a" / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match=r"git tracks \(notes.txt\).*--gallery"):
        check_out(tmp_path / "a")
    check_out(tmp_path / "a", overwrite=True)


def test_a_git_tracked_gallery_is_refused_even_where_reproduce_wrote_it(tmp_path):
    import shutil
    import subprocess

    from deepstart.experiments.reproduce import MANIFEST, check_out

    if shutil.which("git") is None:
        pytest.skip("needs git")
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "pennington.md").write_text("a committed gallery page")
    (docs / MANIFEST).write_text(json.dumps({"files": ["pennington.md"]}))
    check_out(docs)  # not tracked yet: reproduce wrote it, a rerun may write there
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(git + ["init", "-q"], cwd=tmp_path, check=True)
    subprocess.run(git + ["add", "docs/pennington.md"], cwd=tmp_path, check=True)
    with pytest.raises(ValueError, match=r"git tracks \(pennington.md\).*--gallery"):
        check_out(docs)
    check_out(docs, overwrite=True)


def test_cli_refuses_foreign_out_folder_and_bad_device(tmp_path, capsys):
    from deepstart.cli import main

    (tmp_path / "README.md").write_text("tracked docs")
    assert main(["reproduce", "pennington", "--tiny", "--out", str(tmp_path), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "refusing to write into" in err and "README.md" in err and len(err.strip().splitlines()) == 1
    assert (tmp_path / "README.md").read_text() == "tracked docs" and len(list(tmp_path.iterdir())) == 1
    assert main(["reproduce", "pennington", "--tiny", "--out", str(tmp_path / "new"), "--device", "gpu"]) == 2
    assert "cpu, cuda, cuda:N or mps" in capsys.readouterr().err
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        reproduce("pennington", "tiny", device="tpu")


def test_index_and_gallery_merge_papers(tmp_path):
    a = _report()
    b = PaperReport("pennington", "Pennington", "cite", "tiny", {}, a.claims[:1])
    a.write(tmp_path)
    b.write(tmp_path)
    newer = PaperReport("demo", "Demo, rerun", "cite", "tiny", {}, a.claims[1:])
    text = write_gallery([newer], tmp_path / "index.md", out=tmp_path).read_text()
    assert '<a id="pennington"></a>' in text and '<a id="demo"></a>' in text  # earlier papers stay listed
    assert "Demo, rerun" in text and "[Demo paper]" not in text  # the given report replaces the stored one
    assert text.index('id="pennington"') < text.index('id="demo"')  # known papers first, in PAPERS order


def test_missing_data_exits_3_and_still_writes(tmp_path, monkeypatch, capsys):
    import sys
    import types

    from deepstart.cli import main
    from deepstart.cli import reproduce as cli_reproduce
    from deepstart.experiments import reproduce as rep
    from deepstart.experiments.reproduce._common import ReportBuilder
    from deepstart.experiments.trial import Trial, _load_cached

    def run(mode, **kw):
        b = ReportBuilder("needs-mnist", "Needs MNIST", "cite", mode, {}, store=kw["store"])
        b.section("sim", lambda bb: bb.claim("A", "a", "1.0", rule="relative", value=1.0, target=1.0))
        b.section("train", lambda bb: bb.train("t", [Trial(dataset="mnist", depth=1, width=4, steps=1)]),
                  (("B", "b"),))
        return b.build()

    monkeypatch.setitem(sys.modules, "fake_needs_mnist", types.SimpleNamespace(run=run))
    monkeypatch.setitem(rep.PAPERS, "needs-mnist", "fake_needs_mnist")
    monkeypatch.setattr(cli_reproduce, "PAPER_CHOICES", cli_reproduce.PAPER_CHOICES + ("needs-mnist",))
    monkeypatch.setenv("DEEPSTART_DATA", str(tmp_path / "empty"))
    _load_cached.cache_clear()
    try:
        code = main(["reproduce", "needs-mnist", "--tiny", "--out", str(tmp_path / "out"), "--no-progress"])
    finally:
        _load_cached.cache_clear()
    assert code == 3
    assert "deepstart data fetch mnist" in capsys.readouterr().err
    saved = json.loads((tmp_path / "out" / "needs-mnist.json").read_text())
    assert saved["extra"]["missing_data"] == ["mnist"]
    assert {c["claim"]: c["status"] for c in saved["claims"]} == {"A": HOLDS, "B": NOT_EVALUATED}


# --- resumable, sizes not mixed, no temporary paths, legible figures (issues 19 and 21) ---------------------------
def _one_trial_paper(calls: list, interrupt_first: bool):
    """A fake reproduction that trains one toy trial through the store, interrupted (Ctrl-C) on its first call."""
    from deepstart.experiments.reproduce._common import ReportBuilder
    from deepstart.experiments.trial import Trial

    def run(mode, **kw):
        b = ReportBuilder("one-trial", "One trial", "cite", mode, {}, store=kw["store"])
        b.train("t", [Trial(dataset="toy", depth=1, width=4, steps=2, limit=64, test_limit=32)])
        calls.append(b.notes[-1])
        if interrupt_first and len(calls) == 1:
            raise KeyboardInterrupt
        b.claim("A", "a", "1.0", rule="relative", value=1.0, target=1.0)
        return b.build()

    return run


def test_rerun_after_an_interruption_resumes_from_the_store(tmp_path, monkeypatch):
    import sys
    import types

    from deepstart.experiments import reproduce as rep

    calls: list = []
    monkeypatch.setitem(sys.modules, "fake_one_trial", types.SimpleNamespace(run=_one_trial_paper(calls, True)))
    monkeypatch.setitem(rep.PAPERS, "one-trial", "fake_one_trial")
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        reproduce("one-trial", "tiny", out=out)
    assert (out / "results.db").exists() and not (out / "one-trial.json").exists()
    reports = reproduce("one-trial", "tiny", out=out)  # the same command again: accepted, resumes
    assert reports[0].claims[0].status == HOLDS and (out / "one-trial.json").exists()
    assert "1 trial(s) trained now" in calls[0] and "0 trial(s) trained now, 1 taken from the store" in calls[1]


def test_sizes_are_not_mixed_without_force(tmp_path, capsys):
    from deepstart.cli import main
    from deepstart.experiments.reproduce import MANIFEST, check_modes

    quick = PaperReport("pennington", "P", "cite", "quick", {}, _report().claims)
    quick.write(tmp_path)
    (tmp_path / MANIFEST).write_text(json.dumps({"files": sorted(p.name for p in tmp_path.iterdir())}))
    with pytest.raises(ValueError, match=r"refusing to mix sizes.*pennington \(quick\).*--force"):
        check_modes(tmp_path, "tiny", ["sussillo-abbott"])
    check_modes(tmp_path, "tiny", ["sussillo-abbott"], force=True)
    check_modes(tmp_path, "tiny", ["pennington"])  # its own report is replaced, nothing else is quick
    check_modes(tmp_path, "quick", ["sussillo-abbott"])
    assert main(["reproduce", "sussillo-abbott", "--tiny", "--out", str(tmp_path), "--gallery",
                 str(tmp_path / "g.md"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "refusing to mix sizes" in err and len(err.strip().splitlines()) == 1 and not (tmp_path / "g.md").exists()


def test_notes_name_no_temporary_store_path(tmp_path):
    import tempfile

    from deepstart.experiments.reproduce._common import ReportBuilder
    from deepstart.experiments.trial import Trial

    b = ReportBuilder("demo", "Demo", "cite", "tiny", {})
    b.train("t", [Trial(dataset="toy", depth=1, width=4, steps=2, limit=64, test_limit=32)])
    report = b.build()
    text = report.to_markdown() + report.to_html()
    assert tempfile.gettempdir() not in text and "deepstart-reproduce-" not in text
    assert report.extra["machine"]["cpus"] >= 1 and "torch thread" in report.timing()


def test_legend_outside_does_not_cover_the_axes():
    from deepstart.experiments.reproduce._common import legend_outside, new_axes

    for below in (False, True):
        fig, (ax,) = new_axes()
        for k in range(20):
            ax.plot([0, 1], [k, k + 1], label=f"line {k}")
        legend_outside(ax, below=below)
        fig.canvas.draw()
        box, axes_box = ax.get_legend().get_window_extent(), ax.get_window_extent()
        assert not box.overlaps(axes_box)
        import matplotlib.pyplot as plt

        plt.close(fig)


def test_gallery_marks_reports_of_other_criteria_as_old(tmp_path):
    from deepstart.experiments.reproduce.registry import paper_fingerprint

    old = PaperReport("pennington", "P", "cite", "quick", {}, _report().claims, extra={"fingerprint": "0" * 12})
    new = PaperReport("sussillo-abbott", "S", "cite", "quick", {}, _report().claims,
                      extra={"fingerprint": paper_fingerprint("sussillo-abbott")})
    text = write_gallery([old, new], tmp_path / "g.md").read_text()
    assert "Not regenerated with today's criteria" in text and "pennington" in text.split("OLD RESULTS")[0]
    assert old.stale() and new.stale() is None
    assert "OLD RESULTS" in old.to_markdown() and "OLD RESULTS" not in new.to_markdown()


def test_loaded_reports_can_be_written_again(tmp_path):
    from deepstart.experiments.reproduce import load_reports

    _report().write(tmp_path / "a")
    (loaded,) = load_reports(tmp_path / "a")
    assert loaded.figures[0].png_b64 == PNG_1PX  # read back from demo_fig1.png
    loaded.write(tmp_path / "b")
    assert (tmp_path / "b" / "demo_fig1.png").read_bytes() == base64.b64decode(PNG_1PX)


def test_log_ticks_do_not_overlap_on_a_short_log_range():
    import matplotlib.pyplot as plt

    from deepstart.experiments.reproduce._common import log_ticks, new_axes

    fig, (ax,) = new_axes()
    ax.plot([1.05, 1.9], [1, 2])
    ax.set_xscale("log")
    log_ticks(ax, [1.2, 1.4, 1.6, 1.8])
    fig.canvas.draw()
    labels = [t for t in ax.get_xticklabels() + ax.get_xticklabels(minor=True) if t.get_text()]
    assert [t.get_text() for t in labels] == ["1.2", "1.4", "1.6", "1.8"]
    boxes = [t.get_window_extent() for t in labels]
    assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1:])
    plt.close(fig)


def test_committed_gallery_names_no_temporary_path():
    from pathlib import Path

    docs = Path(__file__).resolve().parents[2] / "docs"
    for path in [docs / "reproductions.md", *sorted((docs / "reproductions").glob("*.md")),
                 *sorted((docs / "reproductions").glob("*.json"))]:
        text = path.read_text(encoding="utf-8")
        assert "/tmp" not in text and "deepstart-reproduce-" not in text and "results.db" not in text, path.name
