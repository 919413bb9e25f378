"""The controller: ScalingPolicy objects in, scale actions, drains and decommissions on Kubernetes out."""
