"""`make lab` opens the course in JupyterLab with nbgrader's extensions (started on loopback)."""
import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from tests.support import free_port, stop_process, wait_until

ROOT = Path(__file__).resolve().parents[2]


def get(url):
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.status, response.read().decode()


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    port, token = free_port(), "course-test-token"
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
               JUPYTER_RUNTIME_DIR=str(tmp_path_factory.mktemp("runtime")))
    # the same launch as `make lab` (tools/course.py lab), on a private port without a browser
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "tools" / "course.py"), "lab", "--no-browser", f"--port={port}",
         "--ip=127.0.0.1", f"--IdentityProvider.token={token}"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until("jupyter lab", lambda: get(f"{base}/api/status?token={token}"), 90, process=process)
    except BaseException:
        process.kill()
        raise
    yield base, token
    stop_process(process, timeout=20)


def test_lab_serves_the_nbgrader_extensions(lab):
    base, token = lab
    _, body = get(f"{base}/lab/api/extensions?token={token}")
    names = {extension["name"] for extension in json.loads(body)}
    assert "jupyter-nbgrader" in names, names


def test_lab_lists_the_released_notebooks_and_the_formgrader_answers(lab):
    base, token = lab
    _, body = get(f"{base}/api/contents/notebooks/01_cnn?token={token}")
    assert {item["name"] for item in json.loads(body)["content"]} >= {"cnn_pytorch.ipynb", "cnn_tensorflow.ipynb"}
    status, page = get(f"{base}/formgrader/?token={token}")
    assert status == 200 and "formgrader" in page.lower()
