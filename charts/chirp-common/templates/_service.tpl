{{- define "chirp-common.service" -}}
apiVersion: v1
kind: Service
metadata:
  name: {{ include "chirp-common.fullname" . }}
  labels:
    {{- include "chirp-common.labels" (dict "ctx" . "component" "api") | nindent 4 }}
spec:
  type: {{ .Values.service.type }}
  selector:
    {{- include "chirp-common.selectorLabels" (dict "ctx" . "component" "api") | nindent 4 }}
  ports:
    - name: http
      port: {{ .Values.service.port }}
      targetPort: http
      protocol: TCP
      appProtocol: http
{{- end }}
