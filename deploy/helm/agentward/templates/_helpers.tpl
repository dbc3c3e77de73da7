{{- define "agentward.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "agentward.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains (include "agentward.name" .) .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name (include "agentward.name" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "agentward.selectorLabels" -}}
app.kubernetes.io/name: {{ include "agentward.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "agentward.labels" -}}
{{ include "agentward.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "agentward.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "agentward.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/*
The agentward.yaml of the ConfigMap: .Values.config with the keys the pod layout decides.
Paths are relative to /etc/agentward/ (the config file's folder), where the volumes are mounted.
*/}}
{{- define "agentward.config" -}}
{{- $c := deepCopy .Values.config -}}
{{- $listen := default dict $c.listen -}}
{{- $_ := set $listen "address" (printf "0.0.0.0:%v" .Values.ports.http) -}}
{{- $_ := set $c "listen" $listen -}}
{{- $_ := set $c "admin" (dict "address" (printf "0.0.0.0:%v" .Values.ports.admin)) -}}
{{- if not $c.upstream -}}
{{- $_ := set $c "upstream" (dict "url" (printf "http://127.0.0.1:%v" .Values.tool.port)) -}}
{{- end -}}
{{- $policy := default dict $c.policy -}}
{{- if and .Values.policy.url .Values.policy.configMap -}}
{{- fail "policy.url and policy.configMap are exclusive: choose one source" -}}
{{- else if .Values.policy.url -}}
{{- $_ := set $policy "source" .Values.policy.url -}}
{{- else if .Values.policy.configMap -}}
{{- $_ := set $policy "source" (printf "./policy/%s" .Values.policy.key) -}}
{{- else -}}
{{- $_ := set $policy "source" "./policy.tar.gz" -}}
{{- end -}}
{{- if .Values.policy.verification.configMap -}}
{{- $_ := set $policy "verification" (merge (dict "keyFile" (printf "./policy-verification/%s" .Values.policy.verification.key)) (default dict $policy.verification)) -}}
{{- end -}}
{{- $_ := set $c "policy" $policy -}}
{{- if .Values.auditHashKey.secretName -}}
{{- $audit := default dict $c.audit -}}
{{- $_ := set $audit "hashKey" (dict "fromFile" (printf "./secrets/%s" .Values.auditHashKey.key)) -}}
{{- $_ := set $c "audit" $audit -}}
{{- end -}}
{{- if .Values.spiffe.enabled -}}
{{- if not .Values.spiffe.trustDomain -}}{{- fail "spiffe.trustDomain is required with spiffe.enabled" -}}{{- end -}}
{{- $workload := default dict $c.workload -}}
{{- $td := merge (dict "name" .Values.spiffe.trustDomain "bundle" (dict "file" (printf "./spiffe/%s" .Values.spiffe.bundleFile))) .Values.spiffe.trustDomainSettings -}}
{{- $_ := set $workload "trustDomains" (list $td) -}}
{{- $_ := set $c "workload" $workload -}}
{{- end -}}
{{- toYaml $c -}}
{{- end -}}
