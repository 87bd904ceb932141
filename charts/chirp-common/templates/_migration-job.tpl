{{- define "chirp-common.migrationJob" -}}
{{- if .Values.migrations.enabled }}
{{- /*
Schema migrations: one Job per install/upgrade, so replicas never race.

Hooks: post-install + pre-upgrade.
- pre-upgrade: the new schema is in place before the new pods roll out
  (migrations must stay compatible with the previous release's code, which
  keeps serving until the rollout replaces it).
- post-install (not pre-install): pre-install hooks run before any normal
  resource exists, so on a first install the in-chart PostgreSQL (a normal
  StatefulSet, kept across upgrades like any release resource) and its
  Secret would not exist yet. Making them hooks instead would take them out
  of the release: Helm would neither upgrade nor delete them, and
  re-creating them on every upgrade would restart the database.
  On first install the Job therefore runs after the Deployment is applied;
  the Job retries (backoffLimit) until the database answers.
*/}}
apiVersion: batch/v1
kind: Job
metadata:
  name: {{ printf "%s-migrate" (include "chirp-common.fullname" .) | trunc 63 | trimSuffix "-" }}
  labels:
    {{- include "chirp-common.labels" (dict "ctx" . "component" "migrate") | nindent 4 }}
  annotations:
    helm.sh/hook: post-install,pre-upgrade
    helm.sh/hook-weight: "0"
    helm.sh/hook-delete-policy: before-hook-creation,hook-succeeded
spec:
  backoffLimit: {{ .Values.migrations.backoffLimit }}
  activeDeadlineSeconds: {{ .Values.migrations.activeDeadlineSeconds }}
  ttlSecondsAfterFinished: 3600
  template:
    metadata:
      labels:
        {{- include "chirp-common.labels" (dict "ctx" . "component" "migrate") | nindent 8 }}
    spec:
      restartPolicy: Never
      serviceAccountName: {{ include "chirp-common.serviceAccountName" . }}
      automountServiceAccountToken: false
      enableServiceLinks: false
      {{- with .Values.imagePullSecrets }}
      imagePullSecrets:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      securityContext:
        {{- include "chirp-common.podSecurityContext" . | nindent 8 }}
      containers:
        - name: migrate
          image: {{ include "chirp-common.image" . | quote }}
          imagePullPolicy: {{ .Values.image.pullPolicy }}
          command: ["python", "-m", "{{ .Chart.Name | replace "-" "_" }}", "upgrade"]
          {{- include "chirp-common.env" . | nindent 10 }}
          resources:
            {{- toYaml .Values.migrations.resources | nindent 12 }}
          securityContext:
            {{- include "chirp-common.containerSecurityContext" . | nindent 12 }}
          volumeMounts:
            {{- include "chirp-common.scratchMounts" . | nindent 12 }}
      volumes:
        {{- include "chirp-common.scratchVolumes" . | nindent 8 }}
      {{- with .Values.nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with .Values.tolerations }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
{{- end }}
{{- end }}
