import pytest


@pytest.fixture(autouse=True)
def in_tmp_dir(tmp_path, monkeypatch):
    """Every test runs in a fresh folder, so runs/ and videos/ never land in the repository."""
    monkeypatch.chdir(tmp_path)
