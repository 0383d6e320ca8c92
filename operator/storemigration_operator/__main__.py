"""`python -m storemigration_operator`: run the handlers with kopf.

WATCH_NAMESPACE limits the operator to one namespace (default: cluster-wide). With
OPERATOR_PEERING=<name> kopf's peering elects one active operator among replicas;
without it the operator runs standalone.
"""

from __future__ import annotations

import os

import kopf

from . import handlers  # noqa: F401  (registers the handlers)


def main() -> None:
    namespace = os.environ.get("WATCH_NAMESPACE")
    peering = os.environ.get("OPERATOR_PEERING")
    kopf.configure(verbose=os.environ.get("OPERATOR_VERBOSE") == "1")
    kopf.run(
        standalone=not peering,
        peering_name=peering or None,
        namespaces=[namespace] if namespace else (),
        clusterwide=not namespace,
        liveness_endpoint=os.environ.get("OPERATOR_LIVENESS"),
    )


if __name__ == "__main__":
    main()
