#!/bin/sh
# WebApp pipeline 1 of 2: a Deployment and a Service for the requested image.
set -eu
IN=/kratix/input/object.yaml OUT=/kratix/output META=/kratix/metadata

# yget FILE a.b.c: the plain scalar at that path of a block-style YAML mapping indented
# by two spaces (as object.yaml is written). Quotes around the value are removed.
yget() {
  awk -v want="$2" -v q="'" '
    /^[[:space:]]*(#|$)/ { next }
    {
      match($0, /^ */); depth = RLENGTH / 2
      key = substr($0, RLENGTH + 1)
      if (key !~ /^[A-Za-z0-9_.\/-]+:/) next
      val = key; sub(/:.*/, "", key); sub(/^[^:]*:[ ]*/, "", val)
      path[depth] = key; p = path[0]
      for (i = 1; i <= depth; i++) p = p "." path[i]
      if (p == want && val != "") {
        gsub(/^"|"$/, "", val); gsub("^" q "|" q "$", "", val); print val; exit
      }
    }' "$1"
}

name=$KRATIX_OBJECT_NAME ns=$KRATIX_OBJECT_NAMESPACE
image=$(yget "$IN" spec.image)
replicas=$(yget "$IN" spec.replicas)
port=$(yget "$IN" spec.port)
tier=$(yget "$IN" spec.tier)
[ -n "$image" ] || { echo "spec.image is required" >&2; exit 1; }

cat > "$OUT/deployment.yaml" <<YAML
apiVersion: apps/v1
kind: Deployment
metadata:
  name: $name
  namespace: $ns
  labels:
    app: $name
    tier: ${tier:-frontend}
spec:
  replicas: ${replicas:-1}
  selector:
    matchLabels:
      app: $name
  template:
    metadata:
      labels:
        app: $name
    spec:
      containers:
        - name: app
          image: $image
          ports:
            - containerPort: ${port:-8080}
YAML
cat > "$OUT/service.yaml" <<YAML
apiVersion: v1
kind: Service
metadata:
  name: $name
  namespace: $ns
spec:
  selector:
    app: $name
  ports:
    - port: 80
      targetPort: ${port:-8080}
YAML
cat > "$META/status.yaml" <<YAML
message: Deployed $image
replicas: ${replicas:-1}
YAML
