"""Suite-wide settings: hypothesis profiles (dev by default, ci when CI is
set), and the reliability suites' report lines at the end of the run."""

import os

from hypothesis import HealthCheck, settings

settings.register_profile("dev", max_examples=60, deadline=None)
settings.register_profile(
    "ci", max_examples=150, deadline=None, derandomize=True, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))


def pytest_terminal_summary(terminalreporter):
    from tests.reliability.harness import REPORT_LINES
    if REPORT_LINES:
        terminalreporter.section("reliability reports")
        for line in REPORT_LINES:
            terminalreporter.write_line(line)
