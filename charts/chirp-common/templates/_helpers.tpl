{{/*
Naming and labels. Every define is prefixed with "chirp-common.": Helm shares
one template namespace between a parent chart and its subcharts. The context
is always the calling chart's (`.Chart`, `.Values`, `.Release`), so names and
labels come out as that chart's (user-service, tweet-service).
*/}}

{{- define "chirp-common.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "chirp-common.fullname" -}}
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

{{- define "chirp-common.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels common to every object; pass (dict "ctx" . "component" "api"). */}}
{{- define "chirp-common.labels" -}}
helm.sh/chart: {{ include "chirp-common.chart" .ctx }}
{{ include "chirp-common.selectorLabels" . }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
app.kubernetes.io/part-of: chirp
{{- end }}

{{/* Immutable selector labels; pass (dict "ctx" . "component" "api"). */}}
{{- define "chirp-common.selectorLabels" -}}
app.kubernetes.io/name: {{ include "chirp-common.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "chirp-common.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "chirp-common.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "chirp-common.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag | toString) }}
{{- end }}
{{- end }}

{{- define "chirp-common.postgresql.fullname" -}}
{{- printf "%s-postgresql" (include "chirp-common.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "chirp-common.postgresql.image" -}}
{{- with .Values.postgresql.image }}
{{- if .digest }}
{{- printf "%s@%s" .repository .digest }}
{{- else }}
{{- printf "%s:%s" .repository (.tag | toString) }}
{{- end }}
{{- end }}
{{- end }}

{{/* Where DATABASE_URL comes from: (list secretName key). */}}
{{- define "chirp-common.databaseSecretRef" -}}
{{- if .Values.postgresql.enabled -}}
{{ include "chirp-common.postgresql.fullname" . }} database-url
{{- else if .Values.externalDatabase.existingSecret -}}
{{ .Values.externalDatabase.existingSecret }} {{ .Values.externalDatabase.existingSecretKey }}
{{- else -}}
{{ include "chirp-common.fullname" . }} database-url
{{- end }}
{{- end }}

{{/* Fail early on contradictory settings, before anything reaches the API. */}}
{{- define "chirp-common.validate" -}}
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
{{- include "chirp-common.connectionBudget" . }}
{{- end }}

{{/*
The connection budget of this service's database: the most connections its
pods can hold at once must fit the database's max_connections less
database.reservedConnections (migrations, admin sessions, the superuser
reserve). Pods: replicaCount, or autoscaling.maxReplicas, plus the rollout's
maxSurge. Per pod: webConcurrency workers x gunicornThreads (a thread holds
one connection at a time) x database.poolsPerWorker (services/common/db.py).
*/}}
{{- define "chirp-common.connectionBudget" -}}
{{- $v := .Values }}
{{- $hint := "(a chirp-common chart needs it: copy the key from charts/user-service/values.yaml)" }}
{{- range $key := list "database.poolsPerWorker" "database.reservedConnections" "postgresql.maxConnections" "externalDatabase.maxConnections" }}
{{- $path := splitList "." $key }}
{{- $_ := dig (index $path 0) (index $path 1) nil $v.AsMap | required (printf "%s is required %s" $key $hint) }}
{{- end }}
{{- $pods := int (ternary $v.autoscaling.maxReplicas $v.replicaCount $v.autoscaling.enabled) }}
{{- $surge := $v.strategy.maxSurge }}
{{- if kindIs "string" $surge }}
{{- $surge = div (add (mul $pods (trimSuffix "%" $surge | int)) 99) 100 }}
{{- end }}
{{- $pods = add $pods $surge }}
{{- $perPod := mul $v.config.webConcurrency $v.config.gunicornThreads $v.database.poolsPerWorker }}
{{- $need := mul $pods $perPod }}
{{- $key := ternary "postgresql.maxConnections" "externalDatabase.maxConnections" $v.postgresql.enabled }}
{{- $max := int (ternary $v.postgresql.maxConnections $v.externalDatabase.maxConnections $v.postgresql.enabled) }}
{{- $budget := sub $max $v.database.reservedConnections }}
{{- if gt (int $need) (int $budget) }}
{{- fail (printf "%s: connection budget exceeded: up to %d database connections (%d pods incl. rollout surge x %d workers x %d threads x %d pools per worker) but %s (%d) - database.reservedConnections (%d) = %d. Lower replicaCount / autoscaling.maxReplicas, config.webConcurrency or config.gunicornThreads, or raise %s." .Chart.Name (int $need) (int $pods) (int $v.config.webConcurrency) (int $v.config.gunicornThreads) (int $v.database.poolsPerWorker) $key $max (int $v.database.reservedConnections) (int $budget) $key) }}
{{- end }}
{{- end }}

{{/* The restricted Pod Security profile, container level. */}}
{{- define "chirp-common.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* Env shared by the serving container and the migrate init container. */}}
{{- define "chirp-common.env" -}}
envFrom:
  - configMapRef:
      name: {{ include "chirp-common.fullname" . }}
env:
  {{- $db := include "chirp-common.databaseSecretRef" . | splitList " " }}
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
        name: {{ include "chirp-common.fullname" $ }}
        key: redis-url
  {{- end }}
  {{- end }}
{{- end }}

{{/* Writable scratch space on a read-only root filesystem. */}}
{{- define "chirp-common.scratchVolumes" -}}
- name: tmp
  emptyDir:
    sizeLimit: 64Mi
- name: dev-shm
  emptyDir:
    medium: Memory
    sizeLimit: 64Mi
{{- end }}

{{- define "chirp-common.scratchMounts" -}}
- name: tmp
  mountPath: /tmp
- name: dev-shm
  mountPath: /dev/shm
{{- end }}

{{- define "chirp-common.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
fsGroup: 10001
seccompProfile:
  type: RuntimeDefault
{{- end }}
