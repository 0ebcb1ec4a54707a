"""A kratix-sdk pipeline in the shape of kratix-python's examples/deployment: a Deployment to
the output, a status published through the Kubernetes API mid-pipeline (publish_status), then
status.yaml (write_status) and destination selectors."""

from __future__ import annotations

import sys

import kratix_sdk as ks
import yaml


def promise_configure() -> int:
    sdk = ks.KratixSDK()
    print(sdk.read_promise_input().get_name())
    return 0


def deployment(name: str) -> dict[str, object]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels},
                         "spec": {"containers": [{"name": name, "image": "nginx:1.25",
                                                  "ports": [{"containerPort": 80}]}]}},
        },
    }


def resource_configure() -> int:
    sdk = ks.KratixSDK()
    resource = sdk.read_resource_input()
    key = resource.get_value("spec.key")
    if not key or not isinstance(key, str):
        raise SystemExit("spec.key is required and must be a non-empty string")
    sdk.write_output("deployment.yaml", yaml.safe_dump(deployment(key)).encode())

    published = ks.Status()  # through the API, at once (a PATCH of the status subresource)
    published.set("phase", "updates-from-mid-stage")
    sdk.publish_status(resource, published)

    status = ks.Status()  # /kratix/metadata/status.yaml, merged when the pipeline ends
    status.set("message", f"created deployment {key}")
    sdk.write_status(status)
    sdk.write_destination_selectors([ks.DestinationSelector(match_labels={"environment": "test"})])
    return 0


def main() -> int:
    commands = {"promise-configure": promise_configure, "resource-configure": resource_configure}
    if len(sys.argv) < 2 or sys.argv[1] not in commands:
        print(f"usage: configure.py [{'|'.join(commands)}]", file=sys.stderr)
        return 2
    return commands[sys.argv[1]]()


if __name__ == "__main__":
    raise SystemExit(main())
