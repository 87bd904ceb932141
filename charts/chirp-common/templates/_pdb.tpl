{{- define "chirp-common.podDisruptionBudget" -}}
{{- if .Values.podDisruptionBudget.enabled }}
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ include "chirp-common.fullname" . }}
  labels:
    {{- include "chirp-common.labels" (dict "ctx" . "component" "api") | nindent 4 }}
spec:
  maxUnavailable: {{ .Values.podDisruptionBudget.maxUnavailable }}
  selector:
    matchLabels:
      {{- include "chirp-common.selectorLabels" (dict "ctx" . "component" "api") | nindent 6 }}
{{- end }}
{{- end }}
