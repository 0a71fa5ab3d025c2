"""The command line's mistakes (issue #15): every user error is one plain ``error:`` line on stderr and exit
status 2, never a traceback, and it is caught before a model loads. Through ``grpo_course.cli.main`` (the
function the ``grpo-course`` console script calls) and, for a few, the console script itself."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from grpo_course.cli import main
from grpo_course.usage import UsageError, check_writable, non_negative_int, positive_int


def _one_error_line(capsys) -> str:
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), captured.err
    assert "Traceback" not in captured.err + captured.out
    return lines[0]


MISTAKES = [  # argv, words the error line must hold
    (["train", "--task", "nope"], "Unknown task 'nope'"),
    (["train", "--steps", "0"], "--steps"),
    (["train", "--steps", "-1"], "--steps"),
    (["train", "--steps", "ten"], "whole number"),
    (["train", "--save-steps", "0"], "--save-steps"),
    (["train", "--save-steps", "-1"], "--save-steps"),
    (["train", "--eval-size", "0"], "--eval-size"),
    (["train", "--profile", "banana"], "Unknown profile 'banana'"),
    (["train", "--sft-priming", "maybe"], "--sft-priming"),
    (["eval", "--limit", "-1"], "--limit"),
    (["eval", "--limit", "0"], "--limit"),
    (["eval", "--n", "-2"], "--n"),
    (["eval", "--task", "nope"], "Unknown task 'nope'"),
    (["profile", "--name", "banana"], "Unknown profile 'banana'"),
    (["no-such-command"], "invalid choice"),
]


@pytest.mark.parametrize(("argv", "words"), MISTAKES, ids=[" ".join(a) for a, _ in MISTAKES])
def test_a_command_line_mistake_is_one_error_line_and_exit_status_2(argv, words, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("GRPO_COURSE_RUNS", str(tmp_path))  # nothing may be written here either
    monkeypatch.setenv("GRPO_COURSE_PROFILE", "cpu-tiny")
    assert main(argv) == 2
    assert words in _one_error_line(capsys)
    assert not any(tmp_path.iterdir())  # refused before any run folder was made


def test_an_unknown_profile_in_the_environment_is_one_error_line(capsys, monkeypatch):
    monkeypatch.setenv("GRPO_COURSE_PROFILE", "banana")
    assert main(["profile"]) == 2
    line = _one_error_line(capsys)
    assert "Unknown profile 'banana'" in line and "GRPO_COURSE_PROFILE" in line


def _console_script() -> list[str]:
    """The installed ``grpo-course`` script (the venv's), else the module run the same way."""
    exe = shutil.which("grpo-course") or os.path.join(os.path.dirname(sys.executable), "grpo-course")
    return [exe] if os.path.exists(exe) else [sys.executable, "-m", "grpo_course.cli"]


@pytest.mark.parametrize(("argv", "env", "words"), [
    (["profile"], {"GRPO_COURSE_PROFILE": "banana"}, "Unknown profile 'banana'"),
    (["train", "--task", "nope"], {}, "Unknown task 'nope'"),
    (["train", "--steps", "0"], {}, "--steps"),
])
def test_the_console_script_prints_no_traceback(argv, env, words, tmp_path):
    environ = {**os.environ, "GRPO_COURSE_RUNS": str(tmp_path), "HF_HUB_OFFLINE": "1", **env}
    environ.setdefault("GRPO_COURSE_PROFILE", "cpu-tiny")
    out = subprocess.run(_console_script() + argv, capture_output=True, text=True, env=environ, timeout=120)
    assert out.returncode == 2, out.stderr
    assert out.stderr.count("\n") == 1 and out.stderr.startswith("error: ") and words in out.stderr, out.stderr
    assert "Traceback" not in out.stderr + out.stdout


def _no_model_may_load(monkeypatch, tmp_path):
    monkeypatch.setenv("GRPO_COURSE_RUNS", str(tmp_path / "runs"))

    def refuse(*args, **kwargs):
        raise AssertionError("a model was loaded before the mistake was caught")

    import grpo_course.evaluate.checkpoints as eval_checkpoints
    import grpo_course.evaluate.task_score as task_score  # imported before the patch: it binds load_for_eval
    import grpo_course.models as models
    import grpo_course.train.pipeline as pipeline

    for module, name in ((pipeline, "load_model"), (models, "tiny_text_model"), (eval_checkpoints, "load_for_eval"),
                         (task_score, "load_for_eval")):
        monkeypatch.setattr(module, name, refuse)


def test_a_run_folder_that_cannot_be_written_stops_train_before_the_model_loads(tmp_path, capsys, monkeypatch):
    _no_model_may_load(monkeypatch, tmp_path)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    for task in ("gsm8k", "medcalc"):  # medcalc loads its own tiny character model: also after the check
        code = main(["train", "--task", task, "--profile", "cpu-tiny", "--output-dir", str(blocker / "run")])
        assert code == 2
        assert "cannot write to the run folder" in _one_error_line(capsys)


def test_an_output_folder_that_cannot_be_written_stops_eval_before_the_model_loads(tmp_path, capsys, monkeypatch):
    _no_model_may_load(monkeypatch, tmp_path)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    for task in ("gsm8k", "medcalc"):
        assert main(["eval", "--task", task, "--profile", "cpu-tiny", "--limit", "2", "--out",
                     str(blocker / "out")]) == 2
        assert "cannot write to the output folder" in _one_error_line(capsys)


def test_an_empty_held_out_file_is_refused_not_scored_zero(tmp_path, capsys, monkeypatch):
    _no_model_may_load(monkeypatch, tmp_path)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    assert main(["eval", "--profile", "cpu-tiny", "--model", str(tmp_path), "--data", str(empty),
                 "--out", str(tmp_path / "out")]) == 2
    line = _one_error_line(capsys)
    assert "no rows" in line and "0.0%" not in line


def test_argument_types():
    assert positive_int("3") == 3 and non_negative_int("0") == 0
    for bad in ("0", "-1", "1.5", "x", ""):
        with pytest.raises(Exception, match="must be"):
            positive_int(bad)
    with pytest.raises(Exception, match="must be"):
        non_negative_int("-1")


def test_check_writable(tmp_path):
    assert check_writable(tmp_path / "new" / "deep") == tmp_path / "new" / "deep"
    assert (tmp_path / "new" / "deep").is_dir() and not any((tmp_path / "new" / "deep").iterdir())
    (tmp_path / "f").write_text("")
    with pytest.raises(UsageError, match="cannot write to the run folder"):
        check_writable(tmp_path / "f" / "run", "run folder")
    assert issubclass(UsageError, ValueError)  # in a notebook it is a ValueError with a plain message
