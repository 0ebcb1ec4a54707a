"""A Kubernetes API served to one pipeline run (issue 13).

`api`, `patch` and `server` are stdlib-only: they run in the pipeline's API sidecar, whose
Python has no third-party packages. `pki` is host-side: per-run TLS credentials and the files
shipped to the sidecar. This file is shipped too, so it must stay stdlib-only and import nothing.
"""
