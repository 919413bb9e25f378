"""The embedded world: emulated Trino, Spark and Kubernetes over real HTTP on loopback."""
