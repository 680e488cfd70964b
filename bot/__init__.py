"""Podbot core: config, manifests, pipeline, router, rbac, queue, runner."""
