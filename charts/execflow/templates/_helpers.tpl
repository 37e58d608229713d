{{/*
Name of the chart, overridable with nameOverride.
*/}}
{{- define "execflow.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name of the release's objects: the release name, prefixed to the chart name unless it
already contains it. Truncated to 63 characters (DNS label limit).
*/}}
{{- define "execflow.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "execflow.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "execflow.selectorLabels" -}}
app.kubernetes.io/name: {{ include "execflow.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "execflow.labels" -}}
helm.sh/chart: {{ include "execflow.chart" . }}
{{ include "execflow.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: execflow
{{- end }}

{{- define "execflow.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "execflow.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The operator logs at INFO, or at DEBUG (its --verbose flag).
*/}}
{{- define "execflow.logLevel" -}}
{{- $level := upper .Values.logLevel }}
{{- if not (has $level (list "INFO" "DEBUG")) }}
{{- fail (printf "logLevel must be INFO or DEBUG, not %q" .Values.logLevel) }}
{{- end }}
{{- $level }}
{{- end }}

{{- define "execflow.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/*
RBAC rules for what the operator does inside a namespace it watches: reconcile the four kinds,
run Jobs, read pods and their logs, store results in ConfigMaps, read Secrets named by ResultSets
(keys, S3 credentials), post Events, read quotas, and peer with its other replicas.
*/}}
{{- define "execflow.namespacedRules" -}}
- apiGroups: ["execflow.dev"]
  resources: ["tools", "tasks", "workflows", "resultsets"]
  verbs: ["get", "list", "watch", "patch", "update"]
# Workflows create and delete their child Tasks, and create the ResultSet spec.resultSet asks for.
- apiGroups: ["execflow.dev"]
  resources: ["tasks"]
  verbs: ["create", "delete"]
- apiGroups: ["execflow.dev"]
  resources: ["resultsets"]
  verbs: ["create"]
- apiGroups: ["execflow.dev"]
  resources: ["tools/status", "tasks/status", "workflows/status", "resultsets/status"]
  verbs: ["get", "patch", "update"]
# Children (Jobs, Tasks, ResultSets) carry owner references that block their owner's deletion;
# where the OwnerReferencesPermissionEnforcement admission plugin runs, that needs this.
- apiGroups: ["execflow.dev"]
  resources: ["tasks/finalizers", "workflows/finalizers"]
  verbs: ["update"]
# Jobs are attempts: created, stopped (patched) when their pod can never be created, deleted.
- apiGroups: ["batch"]
  resources: ["jobs"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["get", "list", "watch", "delete"]
- apiGroups: [""]
  resources: ["pods/log"]
  verbs: ["get"]
- apiGroups: [""]
  resources: ["configmaps"]
  verbs: ["get", "list", "watch", "create", "update", "patch", "delete"]
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get"]
# Events are posted about Tasks; the Job controller's FailedCreate Events are watched.
- apiGroups: [""]
  resources: ["events"]
  verbs: ["list", "watch", "create", "patch"]
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
- apiGroups: [""]
  resources: ["resourcequotas"]
  verbs: ["get", "list", "watch"]
{{- end }}

{{/*
RBAC rules for cluster-scoped reads the operator needs in every mode: node allocatable resources
(resource-aware scheduling), namespaces and CRDs (kopf scans both at startup).
*/}}
{{- define "execflow.clusterRules" -}}
- apiGroups: [""]
  resources: ["nodes"]
  verbs: ["get", "list", "watch"]
- apiGroups: [""]
  resources: ["namespaces"]
  verbs: ["get", "list", "watch"]
- apiGroups: ["apiextensions.k8s.io"]
  resources: ["customresourcedefinitions"]
  verbs: ["get", "list", "watch"]
{{- end }}

{{/*
Leader election: the replicas hold the Lease `execflow-operator` in the release namespace.
*/}}
{{- define "execflow.leaseRules" -}}
- apiGroups: ["coordination.k8s.io"]
  resources: ["leases"]
  verbs: ["get", "create", "patch"]
{{- end }}

{{/*
The Service the API server reaches the admission webhook through, and the Secret the operator
keeps the webhook's CA and certificate in (`<service>-tls`, created by the operator).
*/}}
{{- define "execflow.webhookServiceName" -}}
{{- printf "%s-webhook" (include "execflow.fullname" . | trunc 55 | trimSuffix "-") }}
{{- end }}

{{/*
The admission webhook: the operator registers (creates, then patches) the cluster-scoped
ValidatingWebhookConfiguration `execflow.dev`. A create cannot be limited to a name.
*/}}
{{- define "execflow.webhookClusterRules" -}}
- apiGroups: ["admissionregistration.k8s.io"]
  resources: ["validatingwebhookconfigurations"]
  verbs: ["create"]
- apiGroups: ["admissionregistration.k8s.io"]
  resources: ["validatingwebhookconfigurations"]
  resourceNames: ["execflow.dev"]
  verbs: ["get", "patch"]
{{- end }}

{{/*
The admission webhook's certificate: the replicas share it through a Secret in the release
namespace, which the first of them creates and a later one replaces when it no longer fits.
*/}}
{{- define "execflow.webhookSecretRules" -}}
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["create"]
- apiGroups: [""]
  resources: ["secrets"]
  resourceNames: [{{ printf "%s-tls" (include "execflow.webhookServiceName" .) | quote }}]
  verbs: ["get", "patch"]
{{- end }}
