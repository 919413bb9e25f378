"""The test world: the sandbox emulators (Kubernetes API, Trino, Spark), the wiring that makes a sandbox pod
an emulated worker (:mod:`lab.pod_workers`), and ``queuescale demo`` with its plots.

Installed with the project so ``pip install -e . && queuescale demo`` works, but never imported by the
product (``adapter``, ``autoscaler``, ``core``) and left out of the controller/adapter image.
"""
