{{/* Names and labels. */}}
{{- define "camblet-agent.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "camblet-agent.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "camblet-agent.selectorLabels" -}}
app.kubernetes.io/name: {{ include "camblet-agent.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "camblet-agent.labels" -}}
{{ include "camblet-agent.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "camblet-agent.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "camblet-agent.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* Checks the values that have a fixed set of choices, with a message naming the key. */}}
{{- define "camblet-agent.validate" -}}
{{- if not (has .Values.dataPlane (list "auto" "kernel" "proxy")) -}}
{{- fail (printf "dataPlane: %q is not auto, kernel or proxy" .Values.dataPlane) -}}
{{- end -}}
{{- if not (has .Values.ca.backend (list "self-signed" "vault" "spire")) -}}
{{- fail (printf "ca.backend: %q is not self-signed, vault or spire" .Values.ca.backend) -}}
{{- end -}}
{{- if and (eq .Values.ca.backend "vault") (not .Values.ca.vault.config.address) -}}
{{- fail "ca.vault.config.address: required when ca.backend is vault" -}}
{{- end -}}
{{- if and (eq .Values.ca.backend "spire") (not .Values.ca.spire.config.serverAddress) -}}
{{- fail "ca.spire.config.serverAddress: required when ca.backend is spire" -}}
{{- end -}}
{{- end -}}

{{/* /etc/camblet/config.yaml, from the values. */}}
{{- define "camblet-agent.config" -}}
{{- $agent := dict
  "trustDomain" .Values.trustDomain
  "driver" .Values.dataPlane
  "policiesPath" (list "/etc/camblet/policies")
  "servicesPath" (list "/etc/camblet/services")
  "caPEMPath" "/var/lib/camblet/ca/ca.pem"
  "controlSocket" "/run/camblet/agent.sock"
  "ca" .Values.ca.backend
-}}
{{- $proxy := dict "failClosed" .Values.proxy.failClosed "outboundPort" .Values.proxy.outboundPort "inboundPort" .Values.proxy.inboundPort -}}
{{- if .Values.proxy.cgroupPath }}{{ $_ := set $proxy "cgroupPath" .Values.proxy.cgroupPath }}{{ end -}}
{{- $_ := set $agent "proxy" $proxy -}}
{{- $collectors := dict -}}
{{- with .Values.attestation.kubernetes -}}
{{- $k := dict "enabled" .enabled "kubeletPort" .kubeletPort "skipKubeletVerification" .skipKubeletVerification -}}
{{- if .kubeletCA }}{{ $_ := set $k "kubeletCA" .kubeletCA }}{{ end -}}
{{- $_ := set $collectors "kubernetes" $k -}}
{{- end -}}
{{- $_ := set $collectors "containerd" (dict "enabled" .Values.attestation.containerd.enabled "socketPath" "/run/containerd/containerd.sock") -}}
{{- $_ := set $agent "metadataCollectors" $collectors -}}
{{- $plugins := dict -}}
{{- if eq .Values.ca.backend "vault" -}}
{{- $vault := deepCopy .Values.ca.vault.config -}}
{{- if .Values.ca.vault.caCertSecret -}}
{{- $tls := default (dict) $vault.tls -}}
{{- $_ := set $tls "caCert" "/etc/camblet-vault/ca.crt" -}}
{{- $_ := set $vault "tls" $tls -}}
{{- end -}}
{{- $_ := set $plugins "ca" (dict "vault" $vault) -}}
{{- else if eq .Values.ca.backend "spire" -}}
{{- $_ := set $plugins "ca" (dict "spire" .Values.ca.spire.config) -}}
{{- end -}}
{{- with .Values.policies.sources }}{{ $_ := set $plugins "policySource" . }}{{ end -}}
{{- $config := dict "agent" $agent -}}
{{- if $plugins }}{{ $_ := set $config "plugins" $plugins }}{{ end -}}
{{- mustMergeOverwrite $config (deepCopy .Values.extraConfig) | toYaml -}}
{{- end -}}
