#!/bin/sh
# WebApp pipeline 1 of 2: a Deployment and a Service for the requested image.
set -eu
. /scripts/lib.sh  # IN, OUT, META and yget

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
