"""Root conftest: registers yolobench's pytest plugins (fixtures/) for tests/ and benchmarks/."""

import yolobench  # noqa: F401  (first: keeps every library offline before anything imports them)

pytest_plugins = ["fixtures.variants", "fixtures.parity_log"]
