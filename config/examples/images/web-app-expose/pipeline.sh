#!/bin/sh
# WebApp pipeline 2 of 2: an Ingress for the app, plus a catalog entry in the "catalog"
# directory group, which destination-selectors.yaml sends to Destinations labelled
# role=catalog. The Ingress (root group) is scheduled like any resource workload.
set -eu
. /scripts/lib.sh  # IN, OUT, META and yget

name=$KRATIX_OBJECT_NAME ns=$KRATIX_OBJECT_NAMESPACE
domain=$(yget "$IN" spec.domain)
image=$(yget "$IN" spec.image)
host=$name.${domain:-apps.example.com}

cat > "$OUT/ingress.yaml" <<YAML
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: $name
  namespace: $ns
spec:
  ingressClassName: ${INGRESS_CLASS:-nginx}
  rules:
    - host: $host
      http:
        paths:
          - path: /
            pathType: Prefix
            backend:
              service:
                name: $name
                port:
                  number: 80
YAML
mkdir -p "$OUT/catalog"
cat > "$OUT/catalog/$ns-$name.yaml" <<YAML
apiVersion: v1
kind: ConfigMap
metadata:
  name: catalog-$ns-$name
  namespace: catalog
data:
  url: http://$host
  image: $image
YAML
cat > "$META/destination-selectors.yaml" <<YAML
- directory: catalog
  matchLabels:
    role: catalog
YAML
cat > "$META/status.yaml" <<YAML
message: Available at http://$host
url: http://$host
YAML
