"""A user's environment module whose own dependency is not installed: importing it fails."""

import a_dependency_that_is_not_installed  # noqa: F401
