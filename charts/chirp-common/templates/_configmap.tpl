{{- define "chirp-common.configmap" -}}
{{- include "chirp-common.validate" . }}
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ include "chirp-common.fullname" . }}
  labels:
    {{- include "chirp-common.labels" (dict "ctx" . "component" "api") | nindent 4 }}
data:
  HOST: "0.0.0.0"
  PORT: {{ .Values.containerPort | quote }}
  LOG_LEVEL: {{ .Values.config.logLevel | quote }}
  WEB_CONCURRENCY: {{ .Values.config.webConcurrency | quote }}
  GUNICORN_THREADS: {{ .Values.config.gunicornThreads | quote }}
  GUNICORN_TIMEOUT: {{ .Values.config.gunicornTimeout | quote }}
  GUNICORN_GRACEFUL_TIMEOUT: {{ .Values.config.gunicornGracefulTimeout | quote }}
  GUNICORN_KEEPALIVE: {{ .Values.config.gunicornKeepalive | quote }}
  {{- with .Values.userService }}
  USER_SERVICE_URL: {{ tpl .url $ | quote }}
  {{- end }}
  {{- with .Values.tweetService }}
  TWEET_SERVICE_URL: {{ tpl .url $ | quote }}
  {{- end }}
  {{- with .Values.feedService }}
  FEED_SERVICE_URL: {{ tpl .url $ | quote }}
  {{- end }}
  {{- range $k, $v := .Values.config.extraEnv }}
  {{ $k }}: {{ $v | quote }}
  {{- end }}
{{- end }}
