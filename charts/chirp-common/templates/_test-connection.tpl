{{- define "chirp-common.testConnection" -}}
{{- if .Values.tests.enabled }}
{{- /* `helm test`: the service answers through its Service and is ready
(its database answers). Uses the service image itself: no extra image. */}}
apiVersion: v1
kind: Pod
metadata:
  name: {{ printf "%s-test" (include "chirp-common.fullname" .) | trunc 63 | trimSuffix "-" }}
  labels:
    {{- include "chirp-common.labels" (dict "ctx" . "component" "test") | nindent 4 }}
  annotations:
    helm.sh/hook: test
    helm.sh/hook-delete-policy: before-hook-creation,hook-succeeded
spec:
  restartPolicy: Never
  automountServiceAccountToken: false
  enableServiceLinks: false
  securityContext:
    {{- include "chirp-common.podSecurityContext" . | nindent 4 }}
  containers:
    - name: test
      image: {{ include "chirp-common.image" . | quote }}
      imagePullPolicy: {{ .Values.image.pullPolicy }}
      command:
        - python
        - -c
        - |
          import json, sys, urllib.request
          base = "http://{{ include "chirp-common.fullname" . }}:{{ .Values.service.port }}"
          for path in ("/healthz", "/readyz", "/openapi.json"):
              with urllib.request.urlopen(base + path, timeout=10) as r:
                  assert r.status == 200, (path, r.status)
                  print(path, r.status)
          with urllib.request.urlopen(base + "/metrics", timeout=10) as r:
              assert r.status == 200
          print("ok")
      resources:
        requests:
          cpu: 10m
          memory: 32Mi
        limits:
          cpu: 200m
          memory: 128Mi
      securityContext:
        {{- include "chirp-common.containerSecurityContext" . | nindent 8 }}
      volumeMounts:
        {{- include "chirp-common.scratchMounts" . | nindent 8 }}
  volumes:
    {{- include "chirp-common.scratchVolumes" . | nindent 4 }}
{{- end }}
{{- end }}
