"""The worker side: the lifecycle middleware, job context, guarded effects, presence, metrics."""
