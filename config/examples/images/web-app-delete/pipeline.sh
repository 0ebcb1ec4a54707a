#!/bin/sh
# WebApp delete pipeline: its output is ignored (contract §4.5); it only reports.
set -eu
echo "tearing down web app $KRATIX_OBJECT_NAMESPACE/$KRATIX_OBJECT_NAME"
echo "message: Web app $KRATIX_OBJECT_NAME removed" > /kratix/metadata/status.yaml
