{{- define "chirp-common.postgresql" -}}
{{- if .Values.postgresql.enabled }}
{{- $name := include "chirp-common.postgresql.fullname" . }}
{{- $pg := .Values.postgresql }}
{{- /*
The password: the value if given, else the one already stored in the
cluster (lookup), else a new random one. Without the lookup every upgrade
would rotate it while the data directory keeps the old one.
*/}}
{{- $password := $pg.auth.password }}
{{- if not $password }}
{{- $existing := lookup "v1" "Secret" .Release.Namespace $name }}
{{- if and $existing $existing.data (hasKey $existing.data "password") }}
{{- $password = index $existing.data "password" | b64dec }}
{{- else }}
{{- $password = randAlphaNum 32 }}
{{- end }}
{{- end }}
apiVersion: v1
kind: Secret
metadata:
  name: {{ $name }}
  labels:
    {{- include "chirp-common.labels" (dict "ctx" . "component" "database") | nindent 4 }}
  annotations:
    # Kept by `helm uninstall`, like the data volume (a StatefulSet's PVCs
    # outlive it): a reinstall reads the password back (lookup above) and
    # matches the data. `make undeploy` deletes both.
    helm.sh/resource-policy: keep
type: Opaque
data:
  username: {{ $pg.auth.username | b64enc | quote }}
  password: {{ $password | b64enc | quote }}
  database-url: {{ printf "postgresql+psycopg2://%s:%s@%s:%d/%s" $pg.auth.username $password $name (int $pg.port) $pg.auth.database | b64enc | quote }}
---
apiVersion: v1
kind: Service
metadata:
  name: {{ $name }}
  labels:
    {{- include "chirp-common.labels" (dict "ctx" . "component" "database") | nindent 4 }}
spec:
  type: ClusterIP
  selector:
    {{- include "chirp-common.selectorLabels" (dict "ctx" . "component" "database") | nindent 4 }}
  ports:
    - name: postgresql
      port: {{ $pg.port }}
      targetPort: postgresql
      protocol: TCP
---
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: {{ $name }}
  labels:
    {{- include "chirp-common.labels" (dict "ctx" . "component" "database") | nindent 4 }}
spec:
  serviceName: {{ $name }}
  replicas: 1
  selector:
    matchLabels:
      {{- include "chirp-common.selectorLabels" (dict "ctx" . "component" "database") | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "chirp-common.labels" (dict "ctx" . "component" "database") | nindent 8 }}
    spec:
      automountServiceAccountToken: false
      enableServiceLinks: false
      securityContext:
        runAsNonRoot: true
        runAsUser: {{ $pg.uid }}
        runAsGroup: {{ $pg.uid }}
        # Makes the volume writable for the postgres user.
        fsGroup: {{ $pg.uid }}
        seccompProfile:
          type: RuntimeDefault
      terminationGracePeriodSeconds: 30
      containers:
        - name: postgresql
          image: {{ include "chirp-common.postgresql.image" . | quote }}
          imagePullPolicy: {{ $pg.image.pullPolicy }}
          # Explicit, and checked against what the service's pods can open
          # (chirp-common.connectionBudget).
          args: ["-c", "max_connections={{ $pg.maxConnections }}"]
          env:
            - name: POSTGRES_USER
              value: {{ $pg.auth.username | quote }}
            - name: POSTGRES_DB
              value: {{ $pg.auth.database | quote }}
            - name: POSTGRES_PASSWORD
              valueFrom:
                secretKeyRef:
                  name: {{ $name }}
                  key: password
            # A subdirectory: the volume root may hold lost+found.
            - name: PGDATA
              value: /var/lib/postgresql/data/pgdata
          ports:
            - name: postgresql
              containerPort: {{ $pg.port }}
              protocol: TCP
          # pg_isready over TCP: the entrypoint's first-boot init server
          # listens on the socket only, so the pod turns ready after init.
          startupProbe:
            exec:
              command: ["pg_isready", "-h", "127.0.0.1", "-p", "{{ $pg.port }}", "-U", "{{ $pg.auth.username }}", "-d", "{{ $pg.auth.database }}"]
            periodSeconds: 2
            failureThreshold: 60
          readinessProbe:
            exec:
              command: ["pg_isready", "-h", "127.0.0.1", "-p", "{{ $pg.port }}", "-U", "{{ $pg.auth.username }}", "-d", "{{ $pg.auth.database }}"]
            periodSeconds: 5
            timeoutSeconds: 3
          livenessProbe:
            exec:
              command: ["pg_isready", "-h", "127.0.0.1", "-p", "{{ $pg.port }}", "-U", "{{ $pg.auth.username }}", "-d", "{{ $pg.auth.database }}"]
            periodSeconds: 10
            timeoutSeconds: 5
            failureThreshold: 6
          resources:
            {{- toYaml $pg.resources | nindent 12 }}
          securityContext:
            {{- include "chirp-common.containerSecurityContext" . | nindent 12 }}
          volumeMounts:
            - name: data
              mountPath: /var/lib/postgresql/data
            - name: run
              mountPath: /var/run/postgresql
            - name: tmp
              mountPath: /tmp
      volumes:
        - name: run
          emptyDir:
            sizeLimit: 16Mi
        - name: tmp
          emptyDir:
            sizeLimit: 64Mi
      {{- with .Values.nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with .Values.tolerations }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
  volumeClaimTemplates:
    - metadata:
        name: data
        labels:
          {{- include "chirp-common.selectorLabels" (dict "ctx" . "component" "database") | nindent 10 }}
      spec:
        accessModes: ["ReadWriteOnce"]
        {{- with $pg.persistence.storageClass }}
        storageClassName: {{ . | quote }}
        {{- end }}
        resources:
          requests:
            storage: {{ $pg.persistence.size }}
{{- end }}
{{- end }}
