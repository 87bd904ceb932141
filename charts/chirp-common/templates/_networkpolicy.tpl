{{- define "chirp-common.networkPolicy" -}}
{{- if .Values.networkPolicy.enabled }}
{{- $np := .Values.networkPolicy }}
# Who may talk to the service pods, and whom they may talk to. Everything
# not listed is denied (both policy types are set).
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: {{ include "chirp-common.fullname" . }}
  labels:
    {{- include "chirp-common.labels" (dict "ctx" . "component" "api") | nindent 4 }}
spec:
  podSelector:
    matchLabels:
      {{- include "chirp-common.selectorLabels" (dict "ctx" . "component" "api") | nindent 6 }}
  policyTypes: [Ingress, Egress]
  ingress:
    # The Ingress controller.
    - from:
        - namespaceSelector:
            {{- toYaml $np.ingressController.namespaceSelector | nindent 12 }}
          podSelector:
            {{- toYaml $np.ingressController.podSelector | nindent 12 }}
      ports:
        - port: http
          protocol: TCP
    {{- range $np.allowedClients }}
    # The {{ . }} pods of this release.
    - from:
        - podSelector:
            matchLabels:
              app.kubernetes.io/name: {{ . }}
              app.kubernetes.io/instance: {{ $.Release.Name }}
              app.kubernetes.io/component: api
      ports:
        - port: http
          protocol: TCP
    {{- end }}
    {{- if .Values.tests.enabled }}
    # `helm test` pods of this release.
    - from:
        - podSelector:
            matchLabels:
              app.kubernetes.io/instance: {{ .Release.Name }}
              app.kubernetes.io/component: test
      ports:
        - port: http
          protocol: TCP
    {{- end }}
    {{- with $np.extraIngress }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  egress:
    # DNS.
    - to:
        - namespaceSelector: {}
          podSelector:
            matchLabels:
              k8s-app: kube-dns
      ports:
        - port: 53
          protocol: UDP
        - port: 53
          protocol: TCP
    # This service's own database, and no other.
    {{- if .Values.postgresql.enabled }}
    - to:
        - podSelector:
            matchLabels:
              {{- include "chirp-common.selectorLabels" (dict "ctx" . "component" "database") | nindent 14 }}
      ports:
        - port: {{ .Values.postgresql.port }}
          protocol: TCP
    {{- else }}
    - ports:
        - port: {{ .Values.externalDatabase.port }}
          protocol: TCP
    {{- end }}
    {{- with .Values.redis }}
    {{- if or .url .existingSecret }}
    # The cache.
    {{- if .inCluster }}
    - to:
        - podSelector:
            matchLabels:
              app.kubernetes.io/name: redis
              app.kubernetes.io/instance: {{ $.Release.Name }}
      ports:
        - port: {{ .port }}
          protocol: TCP
    {{- else }}
    - ports:
        - port: {{ .port }}
          protocol: TCP
    {{- end }}
    {{- end }}
    {{- end }}
    {{- range $np.upstreams }}
    # The {{ .name }} pods of this release.
    - to:
        - podSelector:
            matchLabels:
              app.kubernetes.io/name: {{ .name }}
              app.kubernetes.io/instance: {{ $.Release.Name }}
              app.kubernetes.io/component: api
      ports:
        - port: {{ .port }}
          protocol: TCP
    {{- end }}
    {{- with $np.extraEgress }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
{{- if .Values.postgresql.enabled }}
---
# The database accepts connections only from this service's pods (their
# migrate init container and the service) and makes none.
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: {{ include "chirp-common.postgresql.fullname" . }}
  labels:
    {{- include "chirp-common.labels" (dict "ctx" . "component" "database") | nindent 4 }}
spec:
  podSelector:
    matchLabels:
      {{- include "chirp-common.selectorLabels" (dict "ctx" . "component" "database") | nindent 6 }}
  policyTypes: [Ingress, Egress]
  ingress:
    - from:
        - podSelector:
            matchLabels:
              {{- include "chirp-common.selectorLabels" (dict "ctx" . "component" "api") | nindent 14 }}
      ports:
        - port: postgresql
          protocol: TCP
  egress: []
{{- end }}
{{- end }}
{{- end }}
