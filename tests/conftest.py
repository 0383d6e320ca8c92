"""Project-wide pytest plugins: the real servers the harness starts (see tests/harness)."""

pytest_plugins = ["tests.harness.postgres", "tests.harness.kube", "tests.harness.s3"]
