{{- define "chirp-common.deployment" -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "chirp-common.fullname" . }}
  labels:
    {{- include "chirp-common.labels" (dict "ctx" . "component" "api") | nindent 4 }}
spec:
  {{- if not .Values.autoscaling.enabled }}
  replicas: {{ .Values.replicaCount }}
  {{- end }}
  revisionHistoryLimit: 5
  selector:
    matchLabels:
      {{- include "chirp-common.selectorLabels" (dict "ctx" . "component" "api") | nindent 6 }}
  strategy:
    type: RollingUpdate
    rollingUpdate:
      maxUnavailable: {{ .Values.strategy.maxUnavailable }}
      maxSurge: {{ .Values.strategy.maxSurge }}
  template:
    metadata:
      labels:
        {{- include "chirp-common.labels" (dict "ctx" . "component" "api") | nindent 8 }}
        {{- with .Values.podLabels }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      annotations:
        # Roll the pods when their configuration changes.
        checksum/config: {{ include (print $.Template.BasePath "/configmap.yaml") . | sha256sum }}
        checksum/secret: {{ include (print $.Template.BasePath "/secret.yaml") . | sha256sum }}
        {{- with .Values.podAnnotations }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
    spec:
      serviceAccountName: {{ include "chirp-common.serviceAccountName" . }}
      automountServiceAccountToken: false
      enableServiceLinks: false
      {{- with .Values.imagePullSecrets }}
      imagePullSecrets:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      securityContext:
        {{- include "chirp-common.podSecurityContext" . | nindent 8 }}
      # > preStop sleep + gunicorn's graceful timeout (checked at render time).
      terminationGracePeriodSeconds: {{ .Values.terminationGracePeriodSeconds }}
      {{- if .Values.migrations.enabled }}
      initContainers:
        # Schema migrations, before the service starts, in every pod: the
        # first waits for the database and migrates under an advisory lock,
        # the others then find the schema current (services/common/migrations.py).
        # Any start order and any replica count is safe, on install and on
        # upgrade (new pods migrate before they serve; the old ones keep
        # serving, so migrations stay compatible with the previous release).
        - name: migrate
          image: {{ include "chirp-common.image" . | quote }}
          imagePullPolicy: {{ .Values.image.pullPolicy }}
          command: ["python", "-m", "{{ .Chart.Name | replace "-" "_" }}", "upgrade", "--wait", "{{ required "migrations.waitSeconds is required" .Values.migrations.waitSeconds }}"]
          {{- include "chirp-common.env" . | nindent 10 }}
          resources:
            {{- toYaml .Values.migrations.resources | nindent 12 }}
          securityContext:
            {{- include "chirp-common.containerSecurityContext" . | nindent 12 }}
          volumeMounts:
            {{- include "chirp-common.scratchMounts" . | nindent 12 }}
      {{- end }}
      containers:
        - name: {{ .Chart.Name }}
          image: {{ include "chirp-common.image" . | quote }}
          imagePullPolicy: {{ .Values.image.pullPolicy }}
          ports:
            - name: http
              containerPort: {{ .Values.containerPort }}
              protocol: TCP
          {{- include "chirp-common.env" . | nindent 10 }}
          startupProbe:
            httpGet:
              path: /healthz
              port: http
            periodSeconds: {{ .Values.probes.startup.periodSeconds }}
            failureThreshold: {{ .Values.probes.startup.failureThreshold }}
          livenessProbe:
            # /healthz touches no dependency: a database outage must not
            # restart every pod.
            httpGet:
              path: /healthz
              port: http
            periodSeconds: {{ .Values.probes.liveness.periodSeconds }}
            timeoutSeconds: {{ .Values.probes.liveness.timeoutSeconds }}
            failureThreshold: {{ .Values.probes.liveness.failureThreshold }}
          readinessProbe:
            # /readyz is 503 while the service's own database is unreachable.
            httpGet:
              path: /readyz
              port: http
            periodSeconds: {{ .Values.probes.readiness.periodSeconds }}
            timeoutSeconds: {{ .Values.probes.readiness.timeoutSeconds }}
            failureThreshold: {{ .Values.probes.readiness.failureThreshold }}
          lifecycle:
            preStop:
              # Keep serving while the endpoint removal propagates; the image
              # needs no shell for this (sleep action, GA in Kubernetes 1.30).
              sleep:
                seconds: {{ .Values.preStopSleepSeconds }}
          resources:
            {{- toYaml .Values.resources | nindent 12 }}
          securityContext:
            {{- include "chirp-common.containerSecurityContext" . | nindent 12 }}
          volumeMounts:
            {{- include "chirp-common.scratchMounts" . | nindent 12 }}
      volumes:
        {{- include "chirp-common.scratchVolumes" . | nindent 8 }}
      {{- if .Values.topologySpread.enabled }}
      topologySpreadConstraints:
        - maxSkew: {{ .Values.topologySpread.maxSkew }}
          topologyKey: kubernetes.io/hostname
          whenUnsatisfiable: ScheduleAnyway
          labelSelector:
            matchLabels:
              {{- include "chirp-common.selectorLabels" (dict "ctx" . "component" "api") | nindent 14 }}
          matchLabelKeys:
            - pod-template-hash
      {{- end }}
      affinity:
        {{- if .Values.affinity }}
        {{- toYaml .Values.affinity | nindent 8 }}
        {{- else }}
        podAntiAffinity:
          preferredDuringSchedulingIgnoredDuringExecution:
            - weight: 100
              podAffinityTerm:
                topologyKey: kubernetes.io/hostname
                labelSelector:
                  matchLabels:
                    {{- include "chirp-common.selectorLabels" (dict "ctx" . "component" "api") | nindent 20 }}
        {{- end }}
      {{- with .Values.nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with .Values.tolerations }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
{{- end }}
