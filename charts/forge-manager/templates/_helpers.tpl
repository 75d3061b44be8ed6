{{- define "fm.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "fm.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name (include "fm.name" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "fm.selectorLabels" -}}
app.kubernetes.io/name: {{ include "fm.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: block-producer
{{- end -}}

{{- define "fm.labels" -}}
{{ include "fm.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: forge-manager
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "fm.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "fm.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "fm.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* The first 10 characters of the pool id, as the sidecar's metric label and derived names use. */}}
{{- define "fm.poolShort" -}}
{{- .Values.forgeManager.pool.id | trunc 10 -}}
{{- end -}}

{{- define "fm.securityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: ["ALL"]
{{- end -}}

{{- define "fm.leaderName" -}}
{{- default (printf "%s-leader" (include "fm.fullname" .)) .Values.forgeManager.leaderName -}}
{{- end -}}

{{/* The region's CardanoForgeCluster; the sidecar gets it as CLUSTER_IDENTIFIER. */}}
{{- define "fm.clusterName" -}}
{{- printf "%s-%s" (include "fm.fullname" .) .Values.clusterManagement.region | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The Lease: forgeManager.leaseName, else {fullname}-leader (the reference chart's rule), so two
releases in one namespace never share one election. */}}
{{- define "fm.leaseName" -}}
{{- default (printf "%s-leader" (include "fm.fullname" .)) .Values.forgeManager.leaseName -}}
{{- end -}}

{{/* A peer region's CardanoForgeCluster: peers[].cluster, else the name this chart gives that
region when installed with the same release name ({fullname}-{peer name}). */}}
{{- define "fm.peerClusterName" -}}
{{- $root := .root -}}
{{- default (printf "%s-%s" (include "fm.fullname" $root) .peer.name | trunc 63 | trimSuffix "-") .peer.cluster -}}
{{- end -}}

{{/* "true" when the sidecar is a native sidecar: sidecar.mode native, or auto on Kubernetes
1.29 or later (earlier versions drop the init container's restartPolicy, so the pod would never
leave PodInitializing). */}}
{{- define "fm.nativeSidecar" -}}
{{- $mode := .Values.sidecar.mode -}}
{{- if eq $mode "native" -}}true
{{- else if eq $mode "container" -}}false
{{- else if semverCompare ">=1.29.0-0" .Capabilities.KubeVersion.Version -}}true
{{- else -}}false
{{- end -}}
{{- end -}}

{{/* The StatefulSet's minReadySeconds field exists from Kubernetes 1.25 (GA). */}}
{{- define "fm.hasMinReadySeconds" -}}
{{- if semverCompare ">=1.25.0-0" .Capabilities.KubeVersion.Version -}}true{{- else -}}false{{- end -}}
{{- end -}}

{{/* The directory of the node's config.json and genesis files: /config (the ConfigMap
node.configMap) or the node image's own copy for forgeManager.network. */}}
{{- define "fm.nodeConfigDir" -}}
{{- $node := .Values.node -}}
{{- if eq $node.configSource "image" -}}
{{- $net := .Values.forgeManager.network -}}
{{- if not (has $net (list "mainnet" "preprod" "preview")) -}}
{{- fail (printf "node.configSource image: the node image ships mainnet, preprod and preview only, not forgeManager.network %q; use node.configSource configMap" $net) -}}
{{- end -}}
{{- printf "%s/%s" (trimSuffix "/" $node.imageConfigDir) $net -}}
{{- else -}}
/config
{{- end -}}
{{- end -}}

{{/* The mithril-client image; the restore needs its endpoint, key and a pinned tag. */}}
{{- define "fm.mithrilImage" -}}
{{- $m := .Values.mithril -}}
{{- if not $m.image.tag -}}
{{- fail "mithril.enabled: set mithril.image.tag (a mithril-client release you checked)" -}}
{{- end -}}
{{- if not $m.aggregatorEndpoint -}}
{{- fail "mithril.enabled: set mithril.aggregatorEndpoint (your network's aggregator)" -}}
{{- end -}}
{{- if not $m.genesisVerificationKey -}}
{{- fail "mithril.enabled: set mithril.genesisVerificationKey (your network's Mithril genesis key)" -}}
{{- end -}}
{{- printf "%s:%s" $m.image.repository $m.image.tag -}}
{{- end -}}

{{/* The relays as NetworkPolicy peers: pods by label (in this namespace, or in the namespaces
relays.namespaceSelector selects), and CIDRs. */}}
{{- define "fm.relayPeers" -}}
{{- $r := .Values.networkPolicy.relays -}}
{{- if $r.podSelector }}
- podSelector:
    matchLabels: {{- toYaml $r.podSelector | nindent 6 }}
  {{- with $r.namespaceSelector }}
  namespaceSelector:
    matchLabels: {{- toYaml . | nindent 6 }}
  {{- end }}
{{- end }}
{{- range $r.cidrs }}
- ipBlock:
    cidr: {{ . }}
{{- end }}
{{- end -}}

{{/* The node guard's reload room in ms (--reload-room-ms): STOP_GRACE, capped at
RENEW_DEADLINE - RETRY_PERIOD as the sidecar caps its own, so the guard never refuses a start
the sidecar sends right after a renewal. */}}
{{- define "fm.guardReloadRoomMs" -}}
{{- $fm := .Values.forgeManager -}}
{{- $cap := subf $fm.renewDeadline $fm.retryPeriod | maxf 0 -}}
{{- round (mulf (minf $fm.stopGrace $cap) 1000) 0 | int -}}
{{- end -}}
