"""The repository's own test configuration (not shipped in the wheel): the suite drives pytest with pytester."""

pytest_plugins = ["pytester"]
