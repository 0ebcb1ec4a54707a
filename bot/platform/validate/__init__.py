"""`promisebot validate`'s rules: every problem of every object, with file, line and field
(`platform.validate_platform`; per kind in `promise`, `stores`, `common`)."""
