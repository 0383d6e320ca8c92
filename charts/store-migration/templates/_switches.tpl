{{/*
The migration switches the operator moves (STORE_BACKEND and the flags, global and per
store). They are never rendered as chart literals on an upgrade: helm's three-way merge
re-applies any rendered value that differs from the live object, so a routine
`helm upgrade` in the middle of a migration would reset the operator's work.

- Install (no live Deployment): STORE_BACKEND from api.env.storeBackend and the flags
  through env valueFrom.configMapKeyRef from the switches ConfigMap (optional keys: a key
  the operator has not written leaves the API's default).
- Upgrade (the Deployment exists): exactly the entries the live Deployment has for these
  names, as they are (literal, ConfigMap reference or absent), so the rendered manifest
  equals the live state and the merge changes none of them.
*/}}

{{- define "store-migration.ownedSwitchNames" -}}
{{- $flags := list "DUAL_WRITE_MODE" "READ_FROM_POSTGRES_PERCENT" "IN_MEMORY_WRITES" }}
{{- $names := list "STORE_BACKEND" "REHYDRATE_ON_START" }}
{{- range $flags }}{{ $names = append $names . }}{{ end }}
{{- range $prefix := list "GRAPH_STORE_" "AGENT_TASK_STORE_" }}
{{- $names = append $names (printf "%sBACKEND" $prefix) }}
{{- range $flags }}{{ $names = append $names (printf "%s%s" $prefix .) }}{{ end }}
{{- end }}
{{- toJson $names }}
{{- end }}

{{/* The StoreMigration that drives this release (the example's name, by default). */}}
{{- define "store-migration.migrationName" -}}
{{- default (include "store-migration.fullname" .) .Values.api.migration.storeMigration }}
{{- end }}

{{/* The ConfigMap the operator owns for that StoreMigration: "<name>-switches". */}}
{{- define "store-migration.switchesConfigMap" -}}
{{- printf "%s-switches" (include "store-migration.migrationName" .) }}
{{- end }}

{{/* The live API container ({} on install, and under `helm template` without a cluster). */}}
{{- define "store-migration.liveApiContainer" -}}
{{- $live := lookup "apps/v1" "Deployment" .Release.Namespace (include "store-migration.apiName" .) }}
{{- $found := dict }}
{{- range (dig "spec" "template" "spec" "containers" list $live) }}
{{- if eq .name "api" }}{{ $found = . }}{{ end }}
{{- end }}
{{- toJson $found }}
{{- end }}

{{- define "store-migration.switchEnv" -}}
{{- $owned := include "store-migration.ownedSwitchNames" . | fromJsonArray }}
{{- $live := include "store-migration.liveApiContainer" . | fromJson }}
{{- if $live }}
{{- range ($live.env | default list) }}
{{- if has .name $owned }}
{{ toYaml (list .) }}
{{- end }}
{{- end }}
{{- else }}
- name: STORE_BACKEND
  value: {{ .Values.api.env.storeBackend | quote }}
{{- if ne .Values.api.env.storeBackend "postgres" }}
{{- range $name := list "DUAL_WRITE_MODE" "READ_FROM_POSTGRES_PERCENT" "IN_MEMORY_WRITES" "REHYDRATE_ON_START" }}
- name: {{ $name }}
  valueFrom:
    configMapKeyRef:
      name: {{ include "store-migration.switchesConfigMap" $ }}
      key: {{ $name }}
      optional: true
{{- end }}
{{- end }}
{{- end }}
{{- end }}
