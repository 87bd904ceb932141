{{- define "chirp-common.serviceAccount" -}}
{{- if .Values.serviceAccount.create }}
apiVersion: v1
kind: ServiceAccount
metadata:
  name: {{ include "chirp-common.serviceAccountName" . }}
  labels:
    {{- include "chirp-common.labels" (dict "ctx" . "component" "api") | nindent 4 }}
  {{- with .Values.serviceAccount.annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
# The service never talks to the Kubernetes API: no token in its pods.
automountServiceAccountToken: false
{{- end }}
{{- end }}
