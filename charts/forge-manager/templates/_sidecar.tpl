{{/* The forge-manager sidecar container: a native sidecar (an init container with
restartPolicy: Always) on Kubernetes >= 1.29, a regular container before it (1.20 to 1.28
ignore the field, and the pod would hang in PodInitializing). */}}
{{- define "fm.sidecarContainer" -}}
{{- $fm := .Values.forgeManager -}}
{{- $cm := .Values.clusterManagement -}}
{{- $guard := eq .Values.layout "guard" -}}
{{- $port := int $fm.metricsPort -}}
- name: forge-manager
  image: {{ include "fm.image" . }}
  imagePullPolicy: {{ .Values.image.pullPolicy }}
  args: ["run"]
  {{- if eq (include "fm.nativeSidecar" .) "true" }}
  # Native sidecar (Kubernetes >= 1.29): starts before and outlives the node.
  restartPolicy: Always
  {{- end }}
  env:
    - name: NAMESPACE
      valueFrom: { fieldRef: { fieldPath: metadata.namespace } }
    - name: POD_NAME
      valueFrom: { fieldRef: { fieldPath: metadata.name } }
    # Part of the Lease holder identity: a pod replacing a force-deleted one waits out the old
    # tenure.
    - name: POD_UID
      valueFrom: { fieldRef: { fieldPath: metadata.uid } }
    - name: CARDANO_NETWORK
      value: {{ $fm.network | quote }}
    {{- if $fm.networkMagic }}
    - name: NETWORK_MAGIC
      value: {{ $fm.networkMagic | quote }}
    {{- end }}
    {{- range $k, $v := dict "POOL_ID" $fm.pool.id "POOL_ID_HEX" $fm.pool.idHex "POOL_NAME" $fm.pool.name "POOL_TICKER" $fm.pool.ticker "LEASE_NAME" (include "fm.leaseName" $) "CRD_NAME" (include "fm.leaderName" $) }}
    {{- if $v }}
    - name: {{ $k }}
      value: {{ $v | quote }}
    {{- end }}
    {{- end }}
    - name: APPLICATION_TYPE
      value: {{ $fm.applicationType | quote }}
    - name: NAMING_SCHEME
      value: {{ $fm.namingScheme | quote }}
    - name: LEASE_DURATION
      value: {{ $fm.leaseDuration | quote }}
    - name: RENEW_DEADLINE
      value: {{ $fm.renewDeadline | quote }}
    - name: RETRY_PERIOD
      value: {{ $fm.retryPeriod | quote }}
    - name: STOP_GRACE
      value: {{ $fm.stopGrace | quote }}
    - name: API_TIMEOUT
      value: {{ $fm.apiTimeout | quote }}
    - name: SHUTDOWN_TIMEOUT
      value: {{ $fm.shutdownTimeout | quote }}
    - name: NODE_SOCKET
      value: /ipc/node.socket
    {{- if $guard }}
    - name: GUARD_SOCKET
      value: /ipc/forge-guard.sock
    {{- end }}
    - name: NODE_STARTS_NON_PRODUCING
      value: "true"
    - name: SOURCE_KES_KEY
      value: /secrets/kes.skey
    - name: SOURCE_VRF_KEY
      value: /secrets/vrf.skey
    - name: SOURCE_OP_CERT
      value: /secrets/node.cert
    - name: TARGET_KES_KEY
      value: /opt/cardano/secrets/kes.skey
    - name: TARGET_VRF_KEY
      value: /opt/cardano/secrets/vrf.skey
    - name: TARGET_OP_CERT
      value: /opt/cardano/secrets/node.cert
    - name: METRICS_PORT
      value: {{ $port | quote }}
    - name: LOG_LEVEL
      value: {{ $fm.logLevel | quote }}
    - name: LOG_FORMAT
      value: {{ $fm.logFormat | quote }}
    {{- if $cm.enabled }}
    - name: ENABLE_CLUSTER_MANAGEMENT
      value: "true"
    - name: CLUSTER_IDENTIFIER
      value: {{ include "fm.clusterName" . | quote }}
    - name: CLUSTER_REGION
      value: {{ required "clusterManagement.region is required" $cm.region | quote }}
    - name: CLUSTER_PRIORITY
      value: {{ $cm.priority | quote }}
    - name: CLUSTER_ENVIRONMENT
      value: {{ $cm.environment | quote }}
    {{- if $cm.peers }}
    - name: PEER_CLUSTERS
      value: {{ $peers := list }}{{ range $cm.peers }}{{ $peers = append $peers (printf "%s=%s" (include "fm.peerClusterName" (dict "root" $ "peer" .)) .kubeconfig) }}{{ end }}{{ join "," $peers | quote }}
    {{- end }}
    {{- if $cm.healthCheck.enabled }}
    - name: HEALTH_CHECK_ENDPOINT
      value: {{ required "clusterManagement.healthCheck.endpoint is required" $cm.healthCheck.endpoint | quote }}
    - name: HEALTH_CHECK_INTERVAL
      value: {{ trimSuffix "s" $cm.healthCheck.interval | quote }}
    {{- end }}
    {{- end }}
    {{- with $fm.extraEnv }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  ports:
    - name: forge-metrics
      containerPort: {{ $port }}
  startupProbe:
    httpGet: { path: /startup-status, port: forge-metrics }
    periodSeconds: 2
    timeoutSeconds: 2
    failureThreshold: 300
  readinessProbe:
    httpGet: { path: /readyz, port: forge-metrics }
    periodSeconds: 5
    timeoutSeconds: 2
    failureThreshold: 3
  livenessProbe:
    httpGet: { path: /health, port: forge-metrics }
    periodSeconds: 10
    timeoutSeconds: 3
    failureThreshold: 3
  securityContext: {{- include "fm.securityContext" . | nindent 4 }}
  resources: {{- toYaml $fm.resources | nindent 4 }}
  volumeMounts:
    - name: forging-keys
      mountPath: /secrets
      readOnly: true
    - name: forging-keys-target
      mountPath: /opt/cardano/secrets
    - name: ipc
      mountPath: /ipc
    {{- if and $cm.enabled $cm.peerKubeconfigSecret }}
    - name: peer-kubeconfigs
      mountPath: /peers
      readOnly: true
    {{- end }}
{{- end -}}
