"""`python -m storemigration_operator`: run the handlers with kopf.

WATCH_NAMESPACE limits the operator to one namespace (default: cluster-wide). With
OPERATOR_PEERING=<name> kopf's peering elects one active operator among replicas;
without it the operator runs standalone (every variable: settings.OperatorSettings).
"""

from __future__ import annotations

import kopf

from . import handlers  # noqa: F401  (registers the handlers)
from .settings import OperatorSettings


def main() -> None:
    settings = OperatorSettings()
    namespace, peering = settings.watch_namespace, settings.peering
    kopf.configure(verbose=settings.verbose)
    kopf.run(
        standalone=not peering,
        peering_name=peering or None,
        namespaces=[namespace] if namespace else (),
        clusterwide=not namespace,
        liveness_endpoint=settings.liveness,
    )


if __name__ == "__main__":
    main()
