#!/bin/sh
# packaging/kubernetes/: both overlays rendered with kustomize (kubectl
# kustomize) and the result checked: SQLite with one replica on a volume,
# PostgreSQL with three replicas, a PodDisruptionBudget, the probes on
# /healthz and /readyz, a ServiceMonitor, requests and limits, a hardened
# pod, every ITL_* variable one attestd accepts.  No cluster is needed
# (or used).  TAP output.   env: SRCDIR, ATTESTD, YAML2JSON
set -u
: "${SRCDIR:?}" "${ATTESTD:?}" "${YAML2JSON:?}"
. "$SRCDIR/tests/lib/test-lib.sh"
K=$SRCDIR/packaging/kubernetes
command -v kubectl >/dev/null 2>&1 || { echo "1..0 # SKIP kubectl (kustomize) is not installed"; exit 0; }

render() { # render OVERLAY: $TMP/OVERLAY.json, a JSON array of the objects
	kubectl kustomize "$K/overlays/$1" > "$TMP/$1.yaml" 2>"$TMP/$1.err" &&
		"$YAML2JSON" "$TMP/$1.yaml" | jq -s . > "$TMP/$1.json"
}
q() { jq -e "$2" "$TMP/$1.json" >/dev/null; }
DEP='(.[] | select(.kind == "Deployment" and .metadata.name == "attestation"))'
POD="$DEP.spec.template.spec"
C="$POD.containers[0]"

for o in sqlite postgresql; do
	say "--- overlay $o"
	check "kubectl kustomize renders overlays/$o" render "$o"
	check "$o: everything in the namespace attestation" q "$o" 'all(.[]; .kind == "Namespace" or .metadata.namespace == "attestation")'
	check "$o: the Service selects the Deployment's pods" q "$o" \
		"(.[] | select(.kind == \"Service\").spec.selector) as \$s | $DEP.spec.template.metadata.labels | contains(\$s)"
	check "$o: liveness on /healthz, readiness on /readyz, a startup probe, on the named port" \
		q "$o" "$C | .livenessProbe.httpGet.path == \"/healthz\" and .readinessProbe.httpGet.path == \"/readyz\" and .startupProbe.httpGet.path == \"/healthz\" and .ports[0].name == \"http\" and .ports[0].containerPort == 8080"
	check "$o: requests and a memory limit" q "$o" "$C.resources | .requests.cpu and .requests.memory and .limits.memory"
	check "$o: non-root, read-only root filesystem, no capabilities, no privilege escalation, seccomp" \
		q "$o" "($POD.securityContext | .runAsNonRoot and .runAsUser == 10001 and .seccompProfile.type == \"RuntimeDefault\") and ($C.securityContext | .readOnlyRootFilesystem and .allowPrivilegeEscalation == false and .capabilities.drop == [\"ALL\"]) and $POD.automountServiceAccountToken == false"
	check "$o: a ServiceMonitor scrapes /metrics on the Service's port and selects it" \
		q "$o" '(.[] | select(.kind == "ServiceMonitor").spec) as $m | ($m.endpoints[0].path == "/metrics" and $m.endpoints[0].port == "http") and ((.[] | select(.kind == "Service").metadata.labels) | contains($m.selector.matchLabels))'
	check "$o: the env ConfigMap and Secret the pod names exist (generated names resolved)" \
		q "$o" ". as \$all | [$C.envFrom[] | (.configMapRef.name // .secretRef.name)] | length == 2 and all(.[]; . as \$x | any(\$all[]; .metadata.name == \$x))"
	# every ITL_* value in the ConfigMap (and ITL_DB_URL as the overlay sets it) is accepted by attestd
	jq -r '.[] | select(.kind == "ConfigMap" and .metadata.name == "attestation-env").data | to_entries[] | "\(.key)=\(.value)"' \
		"$TMP/$o.json" > "$TMP/$o.env"
	check "$o: attestd --check-config accepts the ConfigMap's settings" sh -c \
		"env -i \$(cat $TMP/$o.env) ITL_ENROLLMENT_CA_DIR=$TMP/ca ITL_DB_URL=\${ITL_DB_URL:-sqlite:///$TMP/x.db} '$ATTESTD' --check-config >$TMP/cc 2>&1"
done

say "--- what differs"
check "sqlite: one replica, Recreate (never two writers on the file)" q sqlite "$DEP.spec | .replicas == 1 and .strategy.type == \"Recreate\""
check "sqlite: the state on a PersistentVolumeClaim that exists" \
	q sqlite "($POD.volumes[] | select(.name == \"data\").persistentVolumeClaim.claimName) as \$c | any(.[]; .kind == \"PersistentVolumeClaim\" and .metadata.name == \$c)"
check "sqlite: ITL_DB_URL is SQLite on that volume" q sqlite '.[] | select(.kind == "ConfigMap").data.ITL_DB_URL == "sqlite:////var/lib/itl-reg/db/machines.db"'
check "postgresql: three replicas, rolling one at a time" q postgresql "$DEP.spec | .replicas == 3 and .strategy.rollingUpdate.maxUnavailable == 1"
check "postgresql: a PodDisruptionBudget keeping 2 of them, selecting the pods" \
	q postgresql "(.[] | select(.kind == \"PodDisruptionBudget\").spec) as \$p | \$p.minAvailable == 2 and ($DEP.spec.template.metadata.labels | contains(\$p.selector.matchLabels))"
check "postgresql: spread over nodes" q postgresql "$POD.topologySpreadConstraints[0].topologyKey == \"kubernetes.io/hostname\""
check "postgresql: ITL_DB_URL from the CloudNativePG cluster's app secret; 3 instances" \
	q postgresql "($C.env[] | select(.name == \"ITL_DB_URL\").valueFrom.secretKeyRef | .name == \"attestation-db-app\" and .key == \"uri\") and (.[] | select(.kind == \"Cluster\").spec.instances == 3)"
check "postgresql: the Enrollment CA shared read-only from a Secret" \
	q postgresql "($C.volumeMounts[] | select(.mountPath == \"/var/lib/itl-reg/ca\") | .readOnly) and ($POD.volumes[] | select(.name == \"enrollment-ca\").secret.secretName == \"attestation-enrollment-ca\")"
check "postgresql: no PersistentVolumeClaim for attestd (stateless replicas)" q postgresql 'all(.[]; .kind != "PersistentVolumeClaim")'
check "the image is this release's version" sh -c "jq -e '$C.image | endswith(\":$(sed -n "s/^  version: '\([^']*\)',/\1/p" "$SRCDIR/meson.build")\")' $TMP/sqlite.json >/dev/null"
done_testing
