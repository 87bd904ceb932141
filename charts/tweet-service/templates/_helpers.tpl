{{/*
Naming and labels. Every define is prefixed with the chart name: Helm shares
one template namespace between a parent chart and its subcharts.
*/}}

{{- define "tweet-service.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "tweet-service.fullname" -}}
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

{{- define "tweet-service.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels common to every object; pass (dict "ctx" . "component" "api"). */}}
{{- define "tweet-service.labels" -}}
helm.sh/chart: {{ include "tweet-service.chart" .ctx }}
{{ include "tweet-service.selectorLabels" . }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
app.kubernetes.io/part-of: chirp
{{- end }}

{{/* Immutable selector labels; pass (dict "ctx" . "component" "api"). */}}
{{- define "tweet-service.selectorLabels" -}}
app.kubernetes.io/name: {{ include "tweet-service.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "tweet-service.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "tweet-service.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "tweet-service.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag | toString) }}
{{- end }}
{{- end }}

{{- define "tweet-service.postgresql.fullname" -}}
{{- printf "%s-postgresql" (include "tweet-service.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "tweet-service.postgresql.image" -}}
{{- with .Values.postgresql.image }}
{{- if .digest }}
{{- printf "%s@%s" .repository .digest }}
{{- else }}
{{- printf "%s:%s" .repository (.tag | toString) }}
{{- end }}
{{- end }}
{{- end }}

{{/* Where DATABASE_URL comes from: (list secretName key). */}}
{{- define "tweet-service.databaseSecretRef" -}}
{{- if .Values.postgresql.enabled -}}
{{ include "tweet-service.postgresql.fullname" . }} database-url
{{- else if .Values.externalDatabase.existingSecret -}}
{{ .Values.externalDatabase.existingSecret }} {{ .Values.externalDatabase.existingSecretKey }}
{{- else -}}
{{ include "tweet-service.fullname" . }} database-url
{{- end }}
{{- end }}

{{/* Fail early on contradictory settings, before anything reaches the API. */}}
{{- define "tweet-service.validate" -}}
{{- $ext := or .Values.externalDatabase.url .Values.externalDatabase.existingSecret }}
{{- if and .Values.postgresql.enabled $ext }}
{{- fail "Set either postgresql.enabled=true or externalDatabase.url/existingSecret, not both." }}
{{- end }}
{{- if and (not .Values.postgresql.enabled) (not $ext) }}
{{- fail "postgresql.enabled=false needs externalDatabase.url or externalDatabase.existingSecret." }}
{{- end }}
{{- $needed := add .Values.preStopSleepSeconds .Values.config.gunicornGracefulTimeout }}
{{- if le (int .Values.terminationGracePeriodSeconds) (int $needed) }}
{{- fail (printf "terminationGracePeriodSeconds (%v) must exceed preStopSleepSeconds + config.gunicornGracefulTimeout (%v)." .Values.terminationGracePeriodSeconds $needed) }}
{{- end }}
{{- with .Values.redis }}
{{- if and .url .existingSecret }}
{{- fail "Set redis.url or redis.existingSecret, not both." }}
{{- end }}
{{- end }}
{{- end }}

{{/* The restricted Pod Security profile, container level. */}}
{{- define "tweet-service.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* Env shared by the serving container and the migration Job. */}}
{{- define "tweet-service.env" -}}
envFrom:
  - configMapRef:
      name: {{ include "tweet-service.fullname" . }}
env:
  {{- $db := include "tweet-service.databaseSecretRef" . | splitList " " }}
  - name: DATABASE_URL
    valueFrom:
      secretKeyRef:
        name: {{ index $db 0 }}
        key: {{ index $db 1 }}
  {{- with .Values.redis }}
  {{- if .existingSecret }}
  - name: REDIS_URL
    valueFrom:
      secretKeyRef:
        name: {{ .existingSecret }}
        key: {{ .existingSecretKey }}
  {{- else if .url }}
  - name: REDIS_URL
    valueFrom:
      secretKeyRef:
        name: {{ include "tweet-service.fullname" $ }}
        key: redis-url
  {{- end }}
  {{- end }}
{{- end }}

{{/* Writable scratch space on a read-only root filesystem. */}}
{{- define "tweet-service.scratchVolumes" -}}
- name: tmp
  emptyDir:
    sizeLimit: 64Mi
- name: dev-shm
  emptyDir:
    medium: Memory
    sizeLimit: 64Mi
{{- end }}

{{- define "tweet-service.scratchMounts" -}}
- name: tmp
  mountPath: /tmp
- name: dev-shm
  mountPath: /dev/shm
{{- end }}

{{- define "tweet-service.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
fsGroup: 10001
seccompProfile:
  type: RuntimeDefault
{{- end }}
