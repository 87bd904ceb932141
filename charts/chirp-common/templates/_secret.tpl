{{- define "chirp-common.secret" -}}
{{- /* Connection strings given as plain values (external DB, Redis URL). */}}
{{- $data := dict }}
{{- if and (not .Values.postgresql.enabled) .Values.externalDatabase.url (not .Values.externalDatabase.existingSecret) }}
{{- $_ := set $data "database-url" .Values.externalDatabase.url }}
{{- end }}
{{- with .Values.redis }}
{{- if and .url (not .existingSecret) }}
{{- $_ := set $data "redis-url" (tpl .url $) }}
{{- end }}
{{- end }}
{{- if $data }}
apiVersion: v1
kind: Secret
metadata:
  name: {{ include "chirp-common.fullname" . }}
  labels:
    {{- include "chirp-common.labels" (dict "ctx" . "component" "api") | nindent 4 }}
type: Opaque
data:
  {{- range $k, $v := $data }}
  {{ $k }}: {{ $v | b64enc | quote }}
  {{- end }}
{{- end }}
{{- end }}
