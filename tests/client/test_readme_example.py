"""The README's library example, run as written against a real `pairflow serve`."""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path

from tests.conftest import LiveServer

README = Path(__file__).resolve().parents[2] / "README.md"


def library_example() -> str:
    text = README.read_text()
    section = text[text.index("### The library"):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_readme_library_example_signs_in_and_calls_the_api(live_server: LiveServer, tmp_path: Path) -> None:
    live_server.pairflow("admin", "org", "create", "Acme")
    live_server.pairflow("admin", "user", "create", "--email", "ann@example.com", "--org", "Acme", "--password-stdin",
                         input="long-password\n")
    made = json.loads(live_server.pairflow("admin", "client", "create", "--name", "Printer", "--json").stdout)
    code = (library_example()
            .replace('"http://127.0.0.1:8000"', repr(live_server.url))
            .replace('"<client_id>"', repr(made["client_id"]))
            .replace('"<client_secret>"', repr(made["client_secret"])))
    env = {**os.environ, "PAIRFLOW_HOME": str(tmp_path / "home"), "PAIRFLOW_TOKEN_STORE": "file"}
    example = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert example.stdout is not None
        first = example.stdout.readline()
        url = re.search(r"Open (\S+)", first).group(1)
        pairing_code = re.search(r"pairing_code%3D([A-Za-z0-9]+)", url).group(1)
        live_server.pairflow("admin", "pairing", "approve", pairing_code, "--user", "ann@example.com")
        out, err = example.communicate(timeout=60)
    finally:
        example.kill()
    assert example.returncode == 0, err
    me = ast.literal_eval(out.strip().splitlines()[-1])  # the example prints the /api/me dict
    assert me["email"] == "ann@example.com" and me["organisation"]["name"] == "Acme"
    stored = json.loads((tmp_path / "home" / "tokens.json").read_text())
    assert stored["entries"][0]["client_id"] == made["client_id"]
