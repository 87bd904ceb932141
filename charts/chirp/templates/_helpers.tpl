{{- define "chirp.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "chirp.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* (dict "ctx" . "name" "redis" "component" "cache") */}}
{{- define "chirp.labels" -}}
helm.sh/chart: {{ include "chirp.chart" .ctx }}
{{ include "chirp.selectorLabels" . }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
app.kubernetes.io/part-of: chirp
{{- end }}

{{- define "chirp.selectorLabels" -}}
app.kubernetes.io/name: {{ .name }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/*
The Service name a subchart gives itself (same rule as its fullname helper);
pass (dict "ctx" . "chart" "user-service").
*/}}
{{- define "chirp.serviceName" -}}
{{- $values := index .ctx.Values .chart }}
{{- if $values.fullnameOverride }}
{{- $values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .chart $values.nameOverride }}
{{- if contains $name .ctx.Release.Name }}
{{- .ctx.Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .ctx.Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* The Service port of a subchart; pass (dict "ctx" . "chart" "user-service"). */}}
{{- define "chirp.servicePort" -}}
{{- $values := index .ctx.Values .chart }}
{{- if and $values.service $values.service.port }}
{{- $values.service.port }}
{{- else if eq .chart "user-service" }}5001
{{- else if eq .chart "tweet-service" }}5002
{{- else }}5003
{{- end }}
{{- end }}

{{- define "chirp.routes" -}}
- path: /users
  chart: user-service
- path: /tweets
  chart: tweet-service
- path: /follows
  chart: feed-service
- path: /timelines
  chart: feed-service
{{- end }}

{{- define "chirp.redis.fullname" -}}
{{- printf "%s-redis" .Release.Name | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "chirp.validate" -}}
{{- $us := index .Values "user-service" }}
{{- if and (not .Values.redis.enabled) $us.redis $us.redis.inCluster }}
{{- fail "redis.enabled=false: point user-service.redis.url (or existingSecret) at your Redis and set user-service.redis.inCluster=false." }}
{{- end }}
{{- $fs := index .Values "feed-service" }}
{{- if and (not .Values.redis.enabled) $fs.redis $fs.redis.inCluster }}
{{- fail "redis.enabled=false: point feed-service.redis.url (or existingSecret) at your Redis and set feed-service.redis.inCluster=false." }}
{{- end }}
{{- end }}

{{- define "chirp.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end }}
