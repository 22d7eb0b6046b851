"""The sshd of the remote-target tests, for a predictor built on a target."""

from tests.remote.conftest import sshd  # noqa: F401  (a fixture, used by name)
