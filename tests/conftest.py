import os

import pytest


@pytest.fixture(autouse=True)
def in_tmp_dir(tmp_path, monkeypatch):
    """Every test runs in a fresh folder, so runs/ and videos/ never land in the repository, and leaves the
    environment variables as it found them (a run that records a video sets SDL_VIDEODRIVER for its process)."""
    monkeypatch.chdir(tmp_path)
    environment = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(environment)
