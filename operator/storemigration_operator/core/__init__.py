"""The pure core: spec parsing, gate evaluation and the planner.

Nothing here imports kopf, kubernetes or an HTTP client, and time is always an argument,
so a seven-week rollout can be replayed in milliseconds by a table-driven test.
"""
