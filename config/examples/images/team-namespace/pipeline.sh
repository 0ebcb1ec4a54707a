#!/bin/sh
# TeamNamespace Promise pipeline. Promise workflow: the ClusterRole every team gets.
# Resource workflow: a Namespace, ResourceQuota and RoleBinding for one team.
set -eu
. /scripts/lib.sh  # IN, OUT, META and yget

if [ "$KRATIX_WORKFLOW_TYPE" = promise ]; then
  cat > "$OUT/clusterrole.yaml" <<YAML
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: team-namespace-admin
  labels:
    app.kubernetes.io/managed-by: promisebot
rules:
  - apiGroups: ["", "apps", "networking.k8s.io"]
    resources: ["*"]
    verbs: ["*"]
YAML
  echo 'message: ClusterRole team-namespace-admin installed' > "$META/status.yaml"
  exit 0
fi

ns=$KRATIX_OBJECT_NAME
team=$(yget "$IN" spec.team)
cpu=$(yget "$IN" spec.quota.cpu)
memory=$(yget "$IN" spec.quota.memory)
[ -n "$team" ] || { echo "spec.team is required" >&2; exit 1; }

cat > "$OUT/namespace.yaml" <<YAML
apiVersion: v1
kind: Namespace
metadata:
  name: $ns
  labels:
    team: $team
YAML
cat > "$OUT/resourcequota.yaml" <<YAML
apiVersion: v1
kind: ResourceQuota
metadata:
  name: team-quota
  namespace: $ns
spec:
  hard:
    requests.cpu: "${cpu:-2}"
    requests.memory: ${memory:-4Gi}
YAML
cat > "$OUT/rolebinding.yaml" <<YAML
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: $team-admins
  namespace: $ns
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: team-namespace-admin
subjects:
  - apiGroup: rbac.authorization.k8s.io
    kind: Group
    name: $team
YAML
cat > "$META/status.yaml" <<YAML
message: Namespace $ns ready for team $team
namespace: $ns
YAML
