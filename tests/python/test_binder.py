"""The conda environment and Binder's files (environment.yml, apt.txt, postBuild at the
repository's root) agree with the rest of the project.

Binder cannot be run from here, so these check what can go wrong without it: the files are
where repo2docker reads them (the root, with no binder/ folder that would shadow them), the
conda environment parses, its pins are the ones requirements.txt installs everywhere else,
the Rust it asks for is the kernel's minimum (scripts/setup.sh's, which evcxr sets and which
covers the crate's own, lower, rust-version), and postBuild is an executable script that
builds the project's kernel and registers it with the project's evcxr settings (its kernel
step is run for real into a temporary folder).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

from conftest import ROOT

BINDER = ROOT  # repo2docker reads the root when there is no binder/ or .binder/ folder


def requirement_pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements.txt").read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            match = re.fullmatch(r"([A-Za-z0-9_.\-]+)==([A-Za-z0-9_.\-]+)", line)
            assert match, f"requirements.txt: {line!r} is not pinned as name==version"
            pins[match.group(1).lower()] = match.group(2)
    return pins


def conda_specs() -> dict[str, str]:
    """name -> version spec ('=4.6.6', '>=1.95', '') of environment.yml."""
    env = yaml.safe_load((BINDER / "environment.yml").read_text(encoding="utf-8"))
    assert env["channels"] == ["conda-forge"], "Binder should take everything from conda-forge"
    specs = {}
    for dep in env["dependencies"]:
        assert isinstance(dep, str), f"unexpected entry {dep!r} (a pip: section is not needed)"
        match = re.fullmatch(r"([A-Za-z0-9_.\-]+)\s*([<>=!].*)?", dep)
        assert match, f"cannot read conda spec {dep!r}"
        specs[match.group(1).lower()] = (match.group(2) or "").strip()
    return specs


def crate_rust_version(folder: Path = ROOT) -> str:
    cargo = tomllib.loads((folder / "Cargo.toml").read_text(encoding="utf-8"))
    return cargo["package"]["rust-version"]


def kernel_rust_version() -> str:
    """scripts/setup.sh's UB_MIN_RUST: the Rust the notebooks need (evcxr_jupyter's minimum)."""
    setup = (ROOT / "scripts" / "setup.sh").read_text(encoding="utf-8")
    match = re.search(r"^UB_MIN_RUST=([0-9.]+)$", setup, re.MULTILINE)
    assert match, "scripts/setup.sh sets no UB_MIN_RUST"
    return match.group(1)


def version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


def test_environment_pins_agree_with_requirements() -> None:
    pins = requirement_pins()
    specs = conda_specs()
    for name in ("jupyterlab", "nbclient", "nbconvert", "nbformat"):
        assert name in specs, f"environment.yml lacks {name}"
        assert name in pins, f"requirements.txt lacks {name}"
        assert specs[name] in (f"={pins[name]}", f"=={pins[name]}"), (
            f"{name}: environment.yml says {specs[name]!r}, requirements.txt pins {pins[name]}"
        )


def test_binder_files_are_at_the_root_and_nowhere_else() -> None:
    for name in ("environment.yml", "apt.txt", "postBuild"):
        assert (ROOT / name).is_file(), f"{name} belongs at the repository's root"
    for folder in ("binder", ".binder"):
        assert not (ROOT / folder).exists(), f"{folder}/ would make repo2docker ignore the root's files"


def test_environment_has_rust_with_sources_and_builds_the_kernel_itself() -> None:
    specs = conda_specs()
    minimum = kernel_rust_version()
    assert specs.get("rust") == f">={minimum}", f"rust should be >={minimum} (scripts/setup.sh's UB_MIN_RUST)"
    assert "rust-src" in specs, "rust-src is needed for evcxr's completions"
    assert "evcxr" not in specs, "conda-forge's evcxr lacks the patches of scripts/evcxr/: postBuild builds the kernel"


def test_the_kernels_minimum_rust_builds_the_crate() -> None:
    """Two minimums: the library's (Cargo.toml's rust-version, what its code and dependencies
    need) and the notebooks' (setup.sh's UB_MIN_RUST, evcxr_jupyter's). The kernel compiles
    the crate in every notebook, so the Rust it asks for must build the crate, and the derive
    crate must build wherever the crate does."""
    kernel, crate = kernel_rust_version(), crate_rust_version()
    assert version(kernel) >= version(crate), (
        f"setup.sh asks for Rust {kernel}, older than the crate's rust-version {crate}"
    )
    derive = crate_rust_version(ROOT / "derive")
    assert version(derive) <= version(crate), f"the derive needs Rust {derive}, the crate only {crate}"


def test_post_build_is_an_executable_script_using_the_project_settings() -> None:
    post_build = BINDER / "postBuild"
    assert os.access(post_build, os.X_OK), "postBuild must be executable (chmod +x)"
    text = post_build.read_text(encoding="utf-8")
    assert text.startswith("#!/usr/bin/env bash\n")
    subprocess.run(["bash", "-n", str(post_build)], check=True)
    assert "source scripts/setup.sh" in text and "ub_install_evcxr" in text, "postBuild builds the patched kernel"
    assert "scripts/kernel.py install" in text and "scripts/kernel.py warmup" in text
    assert (ROOT / ".evcxr" / "init.evcxr").is_file()
    assert "build-essential" in (BINDER / "apt.txt").read_text(encoding="utf-8").split()


def test_kernel_registration_points_evcxr_at_the_project_settings(tmp_path: Path, rust_kernelspec: dict) -> None:
    """The step postBuild (and scripts/setup.sh) runs, into a temporary Jupyter dir."""
    # The evcxr_jupyter that scripts/setup.sh installed and registered in .venv.
    evcxr = next((arg for arg in rust_kernelspec["argv"] if arg.endswith("evcxr_jupyter")), None)
    assert evcxr and Path(evcxr).is_file(), f"no evcxr_jupyter in {rust_kernelspec['argv']}"
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "kernel.py"), "install", "--jupyter-dir", str(tmp_path), "--evcxr", evcxr],
        check=True,
        capture_output=True,
    )
    kernel_dir = tmp_path / "kernels" / "rust"
    spec = json.loads((kernel_dir / "kernel.json").read_text(encoding="utf-8"))
    assert spec["argv"] == [
        "bash", str(ROOT / "scripts" / "kernel-launch.sh"), str(Path(evcxr).resolve()), "--control_file", "{connection_file}"
    ]
    assert spec["language"] == "rust"
    config = Path(spec["env"]["EVCXR_CONFIG_DIR"])
    assert config == ROOT / ".evcxr"
    init = (config / "init.evcxr").read_text(encoding="utf-8")
    assert ":cache" in init, "init.evcxr should keep compiled dependencies between sessions"
    # evcxr_jupyter rewrites a kernelspec whose version.txt differs from its own: ours has it.
    assert (kernel_dir / "version.txt").exists()
    assert spec["env"]["JUPYTER_PATH"] == str(tmp_path.resolve())


# scripts/kernel.py is shared by postBuild and scripts/setup.sh; its GPU mode
# (`scripts/lab.sh --gpu`) is checked here too, as far as a machine without a GPU can.


def test_gpu_kernel_builds_candle_with_cuda_from_the_same_settings(tmp_path: Path, rust_kernelspec: dict) -> None:
    evcxr = next(arg for arg in rust_kernelspec["argv"] if arg.endswith("evcxr_jupyter"))
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "kernel.py"), "install", "--jupyter-dir", str(tmp_path),
         "--evcxr", evcxr, "--gpu", "--compute-cap", "86"],
        check=True,
        capture_output=True,
    )
    spec = json.loads((tmp_path / "kernels" / "rust" / "kernel.json").read_text(encoding="utf-8"))
    assert spec["argv"][:2] == ["bash", str(ROOT / "scripts" / "kernel-launch.sh")]
    assert spec["env"]["UB_BUILD_SLOTS"] == str(ROOT / ".cache" / "evcxr-cuda" / "builds")
    assert spec["env"]["CUDA_COMPUTE_CAP"] == "86"
    assert spec["metadata"]["understanding_buffers"] == {"mode": "cuda", "compute_cap": "86"}
    init = (Path(spec["env"]["EVCXR_CONFIG_DIR"]) / "init.evcxr").read_text(encoding="utf-8")
    project = (ROOT / ".evcxr" / "init.evcxr").read_text(encoding="utf-8")
    assert project.strip() in init, "the GPU kernel must keep the project's evcxr settings"
    # Its init loads a generated crate whose only job is to turn on this crate's `cuda`.
    match = re.search(r'^:dep understanding-buffers-cuda = \{ path = "([^"]+)" \}$', init, re.MULTILINE)
    assert match, f"no feature crate in the GPU kernel's init.evcxr:\n{init}"
    shim = tomllib.loads((Path(match.group(1)) / "Cargo.toml").read_text(encoding="utf-8"))
    dep = shim["dependencies"]["understanding-buffers"]
    assert Path(dep["path"]) == ROOT and dep["features"] == ["cuda"]
    cargo = tomllib.loads((ROOT / "Cargo.toml").read_text(encoding="utf-8"))
    assert "cuda" in cargo["features"], "Cargo.toml lost its `cuda` feature"


def test_setup_trusts_the_committed_lessons(tmp_path: Path) -> None:
    """lab.sh and postBuild sign the committed lessons in the server's Jupyter data dir, so
    that JupyterLab draws their figures (inline SVG) before the learner runs anything."""
    from nbformat import read
    from nbformat.sign import NotebookNotary

    data = tmp_path / "jupyter-data"
    env = dict(os.environ, JUPYTER_DATA_DIR=str(data))
    result = subprocess.run(
        ["bash", "-c", f'source "{ROOT}/scripts/setup.sh" && ub_trust_lessons'],
        env=env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    notary = NotebookNotary(data_dir=str(data))
    lessons = sorted((ROOT / "notebooks").glob("[a-z][a-z]/*.ipynb"))
    assert lessons
    for path in lessons:
        assert notary.check_signature(read(path, as_version=4)), f"{path.relative_to(ROOT)} is not trusted"
    # Another data dir (another user, another server) trusts nothing of it.
    (tmp_path / "other").mkdir()
    assert not NotebookNotary(data_dir=str(tmp_path / "other")).check_signature(read(lessons[0], as_version=4))
