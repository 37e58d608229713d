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
RBAC rules for what the operator does inside a namespace it watches; every verb is one the
operator's code calls (the chart README explains each). No `get` where a watch already keeps a
copy, no `update` where the operator patches, no `watch` where it only reads on demand.
*/}}
{{- define "execflow.namespacedRules" -}}
# The four kinds are watched (list + watch keep the operator's copies).
- apiGroups: ["execflow.dev"]
  resources: ["tools", "tasks", "workflows", "resultsets"]
  verbs: ["list", "watch"]
# A Task is read once more right before its attempt's Job is created; Workflows create their
# child Tasks, suspend or cancel them (patch) and replace the failed ones when resumed (delete).
- apiGroups: ["execflow.dev"]
  resources: ["tasks"]
  verbs: ["get", "create", "patch", "delete"]
# A finished Workflow is deleted once its ttlAfterFinished has passed.
- apiGroups: ["execflow.dev"]
  resources: ["workflows"]
  verbs: ["delete"]
# The ResultSet a Workflow's spec.resultSet asks for; the finalizer that holds a set stored in S3
# until its objects are deleted.
- apiGroups: ["execflow.dev"]
  resources: ["resultsets"]
  verbs: ["create", "patch"]
- apiGroups: ["execflow.dev"]
  resources: ["tools/status", "tasks/status", "workflows/status", "resultsets/status"]
  verbs: ["patch"]
# Jobs (owned by Tasks) and child Tasks and ResultSets (owned by Workflows) carry owner references
# with blockOwnerDeletion; where the OwnerReferencesPermissionEnforcement admission plugin runs
# (OpenShift, hardened clusters), setting it needs `update` on the owner's finalizers.
- apiGroups: ["execflow.dev"]
  resources: ["tasks/finalizers", "workflows/finalizers"]
  verbs: ["update"]
# Jobs are attempts: watched, created, stopped (patched) when their pod can never be created,
# deleted when a Task is cancelled or suspended.
- apiGroups: ["batch"]
  resources: ["jobs"]
  verbs: ["list", "watch", "create", "patch", "delete"]
# Pods are watched: the attempts' own, and the others for the resources they hold; quotas too.
- apiGroups: [""]
  resources: ["pods", "resourcequotas"]
  verbs: ["list", "watch"]
# Events are posted about Tasks, Workflows and ResultSets; the Job controller's FailedCreate
# Events are watched (a pod that cannot be created).
- apiGroups: [""]
  resources: ["events"]
  verbs: ["list", "watch", "create"]
# ResultSets with backend ConfigMap keep their data in ConfigMaps they own: listed by the set's
# label to read them back, created, appended to (patch), deleted when the set's ttl expires.
- apiGroups: [""]
  resources: ["configmaps"]
  verbs: ["list", "create", "patch", "delete"]
# A ResultSet's encryption key and S3 credentials are read from the Secrets its spec names. RBAC
# cannot narrow this to names the operator learns from users' objects: `get` only, no list or
# watch, so the operator reads a Secret only when a ResultSet names it.
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get"]
{{- end }}

{{/*
RBAC rules for cluster-scoped reads: node allocatable resources (resource-aware scheduling) and
CRDs (kopf, the operator's framework, watches them to follow API changes); with watchNamespaces,
namespaces too (kopf watches them to know which of the named ones exist).
*/}}
{{- define "execflow.clusterRules" -}}
- apiGroups: [""]
  resources: ["nodes"]
  verbs: ["list", "watch"]
- apiGroups: ["apiextensions.k8s.io"]
  resources: ["customresourcedefinitions"]
  verbs: ["list", "watch"]
{{- if .Values.watchNamespaces }}
- apiGroups: [""]
  resources: ["namespaces"]
  verbs: ["list", "watch"]
{{- end }}
{{- end }}

{{/*
Leader election: the replicas hold the Lease `execflow-operator` in the release namespace. The
first one creates it (a create cannot be limited to a name); reading and renewing it can.
*/}}
{{- define "execflow.leaseRules" -}}
- apiGroups: ["coordination.k8s.io"]
  resources: ["leases"]
  verbs: ["create"]
- apiGroups: ["coordination.k8s.io"]
  resources: ["leases"]
  resourceNames: ["execflow-operator"]
  verbs: ["get", "patch"]
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

{{/*
The MCP endpoint (mcp.enabled): its objects' name, `<fullname>-mcp`; the namespace whose Tools it
serves (mcp.namespace, or the release namespace); its ServiceAccount. Its pods carry their own
`app.kubernetes.io/name` so that neither the operator's Deployment nor its Services select them.
*/}}
{{- define "execflow.mcpName" -}}
{{- printf "%s-mcp" (include "execflow.fullname" . | trunc 59 | trimSuffix "-") }}
{{- end }}

{{- define "execflow.mcpNamespace" -}}
{{- .Values.mcp.namespace | default .Release.Namespace }}
{{- end }}

{{- define "execflow.mcpServiceAccountName" -}}
{{- if .Values.mcp.serviceAccount.create }}
{{- default (include "execflow.mcpName" .) .Values.mcp.serviceAccount.name }}
{{- else }}
{{- required "mcp.serviceAccount.name is required when mcp.serviceAccount.create is false" .Values.mcp.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "execflow.mcpSelectorLabels" -}}
app.kubernetes.io/name: {{ printf "%s-mcp" (include "execflow.name" . | trunc 59 | trimSuffix "-") }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: mcp
{{- end }}

{{- define "execflow.mcpLabels" -}}
helm.sh/chart: {{ include "execflow.chart" . }}
{{ include "execflow.mcpSelectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: execflow
{{- end }}

{{/*
RBAC rules of the MCP endpoint in the namespace it serves; every verb is one its code calls (the
chart README explains each). The agents' own rights are checked per request with the reviews of
execflow.mcpClusterRules; these are what the endpoint then does with its own identity.
*/}}
{{- define "execflow.mcpRules" -}}
# The Tools it serves are watched (list + watch keep its tool list).
- apiGroups: ["execflow.dev"]
  resources: ["tools"]
  verbs: ["list", "watch"]
# A call creates a Task; the Tasks calls made are watched (a waiting call wakes on its Task's
# events); a cancelled call cancels its Task (patch spec.cancel); resources/list lists Tasks and
# resources/read gets one.
- apiGroups: ["execflow.dev"]
  resources: ["tasks"]
  verbs: ["get", "list", "watch", "create", "patch"]
# resources/list lists Workflows and ResultSets, resources/read gets one.
- apiGroups: ["execflow.dev"]
  resources: ["workflows", "resultsets"]
  verbs: ["get", "list"]
{{- end }}

{{/*
Cluster-scoped: who a bearer token belongs to (TokenReview) and whether that identity may do what
its request does (SubjectAccessReview). The same two grants as the built-in system:auth-delegator.
*/}}
{{- define "execflow.mcpClusterRules" -}}
- apiGroups: ["authentication.k8s.io"]
  resources: ["tokenreviews"]
  verbs: ["create"]
- apiGroups: ["authorization.k8s.io"]
  resources: ["subjectaccessreviews"]
  verbs: ["create"]
{{- end }}
