"""`kubectl storemigration`: watch and drive a StoreMigration from kubectl.

Installed as the console script `kubectl-storemigration` (pyproject [project.scripts]), so
kubectl finds it on PATH as a plugin. Every command that changes something is a merge patch
of the StoreMigration's spec (auditable, GitOps-friendly: the same fields a manifest sets),
and every command prints JSON with `-o json`. The views read the same typed status the
operator writes (storemigration_operator.core.status).
"""
