"""Each Colab pin set in ``colab_pins.txt``, installed on the recorded Colab runtime (``data/colab/``).

``grpo_course.colab_install`` runs Colab's own pip (24.1.2) in dry-run mode inside a fake Colab: a virtual
environment of a local CPython 3.13 (and 3.12) holding the metadata of every package Colab preinstalls, so pip
keeps what already satisfies the pins, as on Colab. Binary wheels for Colab's platform (manylinux x86_64, glibc
2.35). A Python version with no local interpreter is skipped with the reason.

Checked per Colab Python and GPU profile: the set resolves, every pin ends up installed, the install holds
wheels only and fits the profile (vLLM only where the profile generates with it, a CUDA torch), nothing the
course imports is left with a broken requirement (what ``pip check`` would say, plus the torch companions whose
metadata does not name their torch), and the committed ``data/colab/install_plan.json`` is what this run
measures. Results are reused for ``GRPO_COURSE_PIN_CACHE_HOURS`` hours (default 6) for identical pins, record and
pip; CI (``CI`` set) always resolves afresh. Four resolutions (two pin sets, two Pythons) run at once.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from grpo_course import bootstrap, colab_install, colab_runtime
from grpo_course.colab_install import Simulation, abi_mismatch, broken_requirements, check_roots
from grpo_course.hardware import PROFILES

pytestmark = pytest.mark.xdist_group("colab-pins")  # the resolver tests run pip (network, slow)

GPU_PROFILES = colab_install.GPU_PROFILES
RUNTIMES = colab_runtime.runtime_versions()
CASES = [(python, profile) for python in RUNTIMES for profile in GPU_PROFILES]


def _name(pin: str) -> str:
    return colab_runtime.canonical_name(pin.split("==")[0])


@pytest.fixture(scope="module")
def simulations() -> dict[tuple[str, str], Simulation]:
    """(python, profile) -> the simulated install; identical pin sets share one run, all run at once (pip mostly
    waits on the network)."""
    jobs: dict[tuple[str, tuple[str, ...]], list[str]] = {}
    for python, profile in CASES:
        if colab_install.local_python(python) is not None:
            jobs.setdefault((python, tuple(bootstrap.gpu_pins(profile))), []).append(profile)
    keys = list(jobs)
    sims = colab_install.simulate_many([(list(pins), colab_runtime.runtime(py)) for py, pins in keys], workers=4)
    out = {}
    for (python, _), sim in zip(keys, sims):
        how = "cached" if sim.cached else f"{sim.seconds} s"
        print(f"Colab {python} {','.join(jobs[python, tuple(sim.pins)])}: {len(sim.install)} packages, "
              f"{sim.download_bytes / 1e6:.0f} MB ({how})")
        for profile in jobs[python, tuple(sim.pins)]:
            out[python, profile] = sim
    return out


def _simulation(simulations, python, profile) -> Simulation:
    if (python, profile) not in simulations:
        pytest.skip(f"no CPython {python} on this machine to simulate Colab's Python {python}")
    return simulations[python, profile]


@pytest.mark.network
@pytest.mark.slow
@pytest.mark.parametrize(("python", "profile"), CASES)
def test_pin_set_installs_on_colab(simulations, python, profile):
    sim = _simulation(simulations, python, profile)
    rt = colab_runtime.runtime(python)
    assert sim.ok, f"The {profile} pin set does not install on Colab's Python {rt.python_full}. pip says:\n{sim.stderr}"
    after = {**rt.packages, **sim.versions()}
    for pin in bootstrap.gpu_pins(profile):
        assert after.get(_name(pin)) == pin.split("==")[1], f"{pin}: Colab ends with {after.get(_name(pin))}"


@pytest.mark.network
@pytest.mark.slow
@pytest.mark.parametrize(("python", "profile"), CASES)
def test_install_is_binary_and_fits_the_profile(simulations, python, profile):
    sim = _simulation(simulations, python, profile)
    assert sim.ok, sim.stderr
    rt = colab_runtime.runtime(python)
    assert all(item["filename"].endswith(".whl") for item in sim.install.values())
    after = {**rt.packages, **sim.versions()}
    assert ("vllm" in after) == PROFILES[profile].uses_vllm
    torch_requires = sim.install["torch"]["requires_dist"] if "torch" in sim.install else []
    cuda = "+cu" in after["torch"] or any(r.startswith("nvidia-") for r in torch_requires)
    assert cuda and "triton" in after, f"torch {after['torch']} is not a CUDA build"


@pytest.mark.network
@pytest.mark.slow
@pytest.mark.parametrize(("python", "profile"), CASES)
def test_nothing_the_course_imports_is_left_broken(simulations, python, profile):
    sim = _simulation(simulations, python, profile)
    assert sim.ok, sim.stderr
    check = broken_requirements(sim, colab_runtime.runtime(python), check_roots(sim.pins))
    assert not check.unknown, ("preinstalled packages without a recorded Requires-Dist: run "
                               f"`python -m grpo_course.colab_install requires`: {check.unknown}")
    assert not check.missing, f"imported by the course but absent after the install: {check.missing}"
    assert [str(b) for b in check.broken] == []
    assert len(check.checked) > 50  # the closure went through the dependencies


@pytest.mark.network
@pytest.mark.slow
@pytest.mark.parametrize(("python", "profile"), CASES)
def test_committed_install_plan_is_what_pip_does_today(simulations, python, profile):
    sim = _simulation(simulations, python, profile)
    committed = colab_runtime.load_plan()["runtimes"][python]["profiles"][profile]["now"]
    measured = colab_install._row(sim, colab_runtime.runtime(python))
    assert measured == committed, ("data/colab/install_plan.json is stale: run "
                                   "`python -m grpo_course.colab_install plan` and commit it")


def _closure(sim: Simulation, rt, root: str) -> set[str]:
    """Names present after the install because ``root`` requires them (transitively, extras included)."""
    checked = colab_install._unmet(colab_install.after_install(sim, rt), rt, [root])[1]
    return {entry.split("==")[0] for entry in checked}


@pytest.mark.network
@pytest.mark.slow
@pytest.mark.parametrize("python", RUNTIMES)
def test_vllm_profiles_install_only_what_vllm_brings(simulations, python):
    """L4 downloads what T4 does plus vLLM's own requirements (torch 2.10.0 among them) and the torch companions
    that must move with torch: as little as vLLM allows."""
    t4, l4 = _simulation(simulations, python, "t4"), _simulation(simulations, python, "l4")
    assert t4.ok and l4.ok
    rt = colab_runtime.runtime(python)
    extra = set(l4.install) - set(t4.install) - _closure(l4, rt, "vllm") - set(colab_install.TORCH_COMPANIONS)
    assert not extra, f"the L4 set installs more than vLLM needs: {sorted(extra)}"
    assert l4.download_bytes - t4.download_bytes >= sum(l4.install[n]["size"] for n in ("vllm", "torch"))


# ------------------------------------------------------------------------------------- offline checks


@pytest.mark.parametrize("python", RUNTIMES)
def test_committed_plan_is_for_these_pins_and_meets_the_targets(python):
    """The T4 set downloads at most a tenth of what the old pins did, and keeps Colab's torch."""
    profiles = colab_runtime.load_plan()["runtimes"][python]["profiles"]
    assert list(profiles) == GPU_PROFILES
    for profile, row in profiles.items():
        assert row["now"]["pins"] == bootstrap.gpu_pins(profile), "plan measured for other pins: re-run it"
        assert row["now"]["broken"] == []
    assert profiles["t4"]["now"]["download_bytes"] <= profiles["t4"]["before"]["download_bytes"] / 10
    assert "torch" not in profiles["t4"]["now"]["replaces"]  # Colab's own torch stays on a T4


def _sim(install: dict[str, str], pins=()) -> Simulation:
    return Simulation(pins=list(pins), python="3.13", returncode=0, stderr="", seconds=0.0, install={
        n: {"version": v, "filename": f"{n}-{v}.whl", "size": 1, "requires_dist": []} for n, v in install.items()})


def test_the_check_reports_torch_companions_built_for_another_torch():
    """Replacing Colab's torch alone breaks torchvision (metadata), torchaudio and torchcodec (ABI tables)."""
    rt = colab_runtime.runtime("3.13")
    check = broken_requirements(_sim({"torch": "2.10.0"}), rt, ["torch", "torchvision", "torchaudio", "torchcodec"])
    text = "\n".join(map(str, check.broken))
    assert "torchvision 0.26.0+cu128 requires torch==2.11.0, but has 2.10.0" in text
    assert "torchaudio 2.11.0+cu128 is built for torch 2.11, but torch is 2.10.0" in text
    assert "torchcodec 0.11.0+cu128 is built for torch 2.11, but torch is 2.10.0" in text
    moved = _sim({"torch": "2.10.0", "torchvision": "0.25.0", "torchaudio": "2.10.0", "torchcodec": "0.10.0"})
    assert [str(b) for b in broken_requirements(moved, rt, ["torch", "torchaudio", "torchcodec"]).broken] == []


def test_the_check_follows_requirements_and_reports_missing_ones():
    rt = colab_runtime.runtime("3.13")
    sim = _sim({"datasets": "4.8.5"})
    sim.install["datasets"]["requires_dist"] = ["pyarrow>=21.0.0", "no-such-package>=1; python_version >= '3.9'",
                                                "never-on-linux; sys_platform == 'win32'", "extra-only; extra == 'x'"]
    check = broken_requirements(sim, rt, ["datasets"])
    assert [str(b) for b in check.broken] == ["datasets 4.8.5 requires no-such-package>=1, but it is absent",
                                             "datasets 4.8.5 requires pyarrow>=21.0.0, but has 18.1.0"]
    assert check.checked == ["datasets==4.8.5", "pyarrow==18.1.0"] and not check.missing
    assert broken_requirements(sim, rt, ["no-such-root"]).missing == ["no-such-root"]
    colab_as_is = broken_requirements(_sim({}), rt, ["ipython"])  # Colab ships IPython 7.34 without jedi
    assert [str(b) for b in colab_as_is.already] == ["ipython 7.34.0 requires jedi>=0.16, but it is absent"]
    assert colab_as_is.broken == []


def test_abi_tables():
    assert abi_mismatch("torchaudio", "2.10.0", "2.10.0+cu128") is None
    assert abi_mismatch("torchaudio", "2.11.0+cu128", "2.10.0")
    assert abi_mismatch("torchcodec", "0.12.1", "2.12.0") is None  # 0.12+ is ABI-stable for torch >= 2.11
    assert abi_mismatch("torchcodec", "0.11.0+cu128", "2.10.0") and abi_mismatch("torchcodec", "0.10.0", "2.10.0") is None


def test_roots_are_the_course_imports_and_vllm_only_where_pinned():
    t4, l4 = check_roots(bootstrap.gpu_pins("t4")), check_roots(bootstrap.gpu_pins("l4"))
    for name in ("transformers", "trl", "peft", "datasets", "torch", "ipywidgets", "matplotlib", "torchvision"):
        assert name in t4 and name in l4
    assert not any(r.startswith("vllm") for r in t4) and "vllm" in l4 and "deepspeed" not in l4


def test_fake_colab_holds_colabs_packages_with_their_requirements(tmp_path):
    """What pip sees in the fake Colab: every preinstalled package at Colab's version, with the recorded
    Requires-Dist (so pip replaces torchvision when a pin moves torch, as it would on Colab)."""
    rt = colab_runtime.runtime("3.13")
    exe = colab_install.fake_colab(rt, tmp_path / "env", sys.executable)
    code = ("import importlib.metadata as m, json; ds = list(m.distributions()); print(json.dumps([len(ds), "
            "m.version('torch'), m.version('ipywidgets'), m.requires('torchvision'), m.requires('pytest')]))")
    out = subprocess.run([str(exe), "-c", code], capture_output=True, text=True, check=True).stdout
    count, torch, widgets, torchvision_requires, pytest_requires = __import__("json").loads(out)
    assert count == len(rt.packages) - 1  # all but pip, which runs from its own wheel
    assert (torch, widgets) == ("2.11.0+cu128", "7.7.1")
    assert "torch==2.11.0" in "".join(torchvision_requires).replace(" ", "").replace("(", "").replace(")", "")
    assert pytest_requires is None  # not reached by the course's install: no requirements recorded


def test_dry_run_ignores_this_machines_pip_config():
    env = colab_install.pip_env()
    assert env["PIP_CONFIG_FILE"] == os.devnull
    assert not {"PIP_CONSTRAINT", "PIP_FIND_LINKS", "PIP_EXTRA_INDEX_URL", "PIP_NO_INDEX"} & set(env)
    out = subprocess.run([sys.executable, "-m", "pip", "config", "list"], env=env, capture_output=True,
                         text=True, check=True).stdout
    assert "constraint" not in out and "find-links" not in out and "extra-index-url" not in out
