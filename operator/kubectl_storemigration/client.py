"""The plugin's only contact with the cluster: read a StoreMigration, merge-patch its spec.

The kubeconfig is found as kubectl finds it (--kubeconfig, else $KUBECONFIG, else
~/.kube/config), with --context and the context's namespace; inside a pod the service
account is used.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import kubernetes
import urllib3.exceptions
from kubernetes.client.exceptions import ApiException
from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

GROUP, VERSION, PLURAL = "migrations.storemigration.dev", "v1alpha1", "storemigrations"
TIMEOUT = (5.0, 30.0)


class PluginEnv(BaseSettings):
    """The variables the plugin reads (kubectl passes its environment through)."""

    model_config = SettingsConfigDict(env_ignore_empty=True, extra="ignore")

    kubeconfig: str | None = Field(None, validation_alias=AliasChoices("KUBECONFIG"))
    kubernetes_service_host: str | None = Field(
        None, validation_alias=AliasChoices("KUBERNETES_SERVICE_HOST"))


class ClusterError(RuntimeError):
    """The object could not be read or patched; the message says why."""


@dataclass
class Cluster:
    api: kubernetes.client.CustomObjectsApi
    namespace: str

    @classmethod
    def connect(cls, kubeconfig: str | None, context: str | None, namespace: str | None
                ) -> Cluster:
        env = PluginEnv()
        in_pod = env.kubernetes_service_host and not kubeconfig and not env.kubeconfig
        try:
            if in_pod:
                kubernetes.config.load_incluster_config()  # type: ignore[no-untyped-call]
                client = kubernetes.client.ApiClient()
                default_ns = "default"
            else:
                client = kubernetes.config.new_client_from_config(  # type: ignore[no-untyped-call]
                    config_file=kubeconfig, context=context)
                _, active = kubernetes.config.list_kube_config_contexts(  # type: ignore[no-untyped-call]
                    config_file=kubeconfig)
                if context:
                    contexts, _ = kubernetes.config.list_kube_config_contexts(  # type: ignore[no-untyped-call]
                        config_file=kubeconfig)
                    active = next((c for c in contexts if c["name"] == context), active)
                default_ns = (active or {}).get("context", {}).get("namespace") or "default"
        except (kubernetes.config.ConfigException, OSError) as e:
            raise ClusterError(f"no usable kubeconfig: {e}") from None
        return cls(kubernetes.client.CustomObjectsApi(client), namespace or default_ns)

    def _call(self, what: str, name: str, fn: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
        try:
            resp = fn(GROUP, VERSION, self.namespace, PLURAL, name, *args,
                      _preload_content=False, _request_timeout=TIMEOUT, **kwargs)
        except ApiException as e:
            if e.status == 404:
                raise ClusterError(f"storemigration {name!r} not found in namespace "
                                   f"{self.namespace!r}") from None
            reason = e.reason
            try:
                reason = json.loads(e.body or "{}").get("message") or reason
            except ValueError:
                pass
            raise ClusterError(f"{what} storemigration {name}: {e.status} {reason}") from None
        except (urllib3.exceptions.HTTPError, OSError) as e:
            raise ClusterError(f"{what} storemigration {name}: {e}") from None
        doc: dict[str, Any] = json.loads(resp.data)
        return doc

    def get(self, name: str) -> dict[str, Any]:
        return self._call("get", name, self.api.get_namespaced_custom_object)

    def patch_spec(self, name: str, spec: dict[str, Any]) -> dict[str, Any]:
        """A JSON merge patch of .spec (what `kubectl patch --type=merge` sends)."""
        return self._call("patch", name, self.api.patch_namespaced_custom_object,
                          {"spec": spec}, _content_type="application/merge-patch+json")
