{{/* Names, labels and the shared pieces every template uses. */}}

{{- define "store-migration.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "store-migration.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "store-migration.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "store-migration.labels" -}}
helm.sh/chart: {{ include "store-migration.chart" . }}
app.kubernetes.io/name: {{ include "store-migration.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: store-migration
{{- end }}

{{/* Selector labels for one component: include with (dict "ctx" $ "component" "api"). */}}
{{- define "store-migration.selectorLabels" -}}
app.kubernetes.io/name: {{ include "store-migration.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "store-migration.apiName" -}}
{{- printf "%s-api" (include "store-migration.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "store-migration.operatorName" -}}
{{- printf "%s-operator" (include "store-migration.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "store-migration.secretName" -}}
{{- default (include "store-migration.fullname" .) .Values.secrets.existingSecret }}
{{- end }}

{{- define "store-migration.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag }}
{{- if .Values.image.digest }}
{{- printf "%s:%s@%s" .Values.image.repository $tag .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{/* True (non-empty) when a PostgreSQL URL is available to the pods. */}}
{{- define "store-migration.databaseConfigured" -}}
{{- if or .Values.secrets.existingSecret .Values.secrets.databaseUrl }}true{{ end }}
{{- end }}

{{/* The DATABASE_URL env var, from the Secret. optional when no database is configured yet. */}}
{{- define "store-migration.databaseUrlEnv" -}}
- name: DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "store-migration.secretName" . }}
      key: {{ .Values.secrets.databaseUrlKey }}
      {{- if not (include "store-migration.databaseConfigured" .) }}
      optional: true
      {{- end }}
{{- end }}

{{/* Refuse combinations that would lose data or leak credentials. */}}
{{- define "store-migration.validate" -}}
{{- if and (gt (int .Values.api.replicas) 1) (not .Values.api.inMemoryRetired) }}
{{- fail "api.replicas > 1 needs api.inMemoryRetired=true: while memory is written each replica would hold its own copy (see docs/ARCHITECTURE.md)" }}
{{- end }}
{{- if and (eq .Values.api.env.appEnv "production") (or .Values.secrets.databaseUrl .Values.secrets.adminToken) }}
{{- fail "api.env.appEnv=production: put DATABASE_URL and ADMIN_TOKEN in a Secret and set secrets.existingSecret, not secrets.databaseUrl/adminToken" }}
{{- end }}
{{- if and (gt (int .Values.operator.replicas) 1) (not .Values.operator.peering.enabled) }}
{{- fail "operator.replicas > 1 needs operator.peering.enabled=true (leader election)" }}
{{- end }}
{{- if and (gt (int .Values.api.replicas) 1) .Values.api.persistence.enabled (has "ReadWriteOnce" .Values.api.persistence.accessModes) }}
{{- fail "api.replicas > 1 cannot share a ReadWriteOnce journal volume: disable api.persistence once memory is retired, or use ReadWriteMany" }}
{{- end }}
{{- end }}

{{- define "store-migration.tmpVolumeMount" -}}
- name: tmp
  mountPath: /tmp
{{- end }}
