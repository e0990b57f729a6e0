import pytest

from course_utils.profiles import current_profile, pick


def test_pick_follows_the_profile(monkeypatch):
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    for name, expected in [("smoke", 1), ("standard", 5), ("full", 15)]:
        monkeypatch.setenv("COURSE_PROFILE", name)
        assert current_profile() == name
        assert pick(smoke=1, standard=5, full=15) == expected
    assert pick(smoke=1, standard=5) == 5  # full falls back to standard


def test_nbgrader_execution_forces_smoke(monkeypatch):
    monkeypatch.setenv("COURSE_PROFILE", "full")
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    assert current_profile() == "smoke"


def test_default_depends_on_gpu(monkeypatch):
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    monkeypatch.delenv("COURSE_PROFILE", raising=False)
    monkeypatch.setattr("course_utils.profiles.gpu_available", lambda: True)
    assert current_profile() == "full"
    monkeypatch.setattr("course_utils.profiles.gpu_available", lambda: False)
    assert current_profile() == "standard"


def test_unknown_profile_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    monkeypatch.setenv("COURSE_PROFILE", "fast")
    with pytest.raises(ValueError, match="COURSE_PROFILE='fast' is not a profile; expected one of smoke, standard, full"):
        current_profile()
    with pytest.raises(ValueError, match="not one of"):
        pick(1, 2, profile="huge")


def test_pick_full_defaults_to_standard_but_none_is_a_value():
    assert pick(1, 2, profile="full") == 2
    assert pick(smoke=1, standard=2, full=None, profile="full") is None
    assert pick(smoke=1, standard=2, full=None, profile="standard") == 2
    assert pick(smoke=None, standard=2, profile="smoke") is None
