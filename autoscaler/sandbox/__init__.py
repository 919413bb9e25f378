"""The embedded world: emulated Trino, Spark and Kubernetes over real HTTP on loopback.

The Kubernetes sandbox (``kube*.py``) against the real kube-apiserver v1.37
-------------------------------------------------------------------------
``tests/peers/test_kube_contract.py`` runs the same tests against this sandbox and a real kube-apiserver
(issue 13): a stale Lease update is 409 with the server's message; a Lease or custom resource updated without
a resourceVersion is 422 naming the resource (``leases.coordination.k8s.io "x" is invalid: ...``); the scale
subresource's selector, PUT, 409 (with the server's ``details``) and 404 messages; the status subresource
apart from spec and generation; a pod-deletion-cost patch seen through label selectors (``in``, ``!=``).

What stays different, on purpose or because it does not matter to the controller or the demo:

- No Namespace objects: every namespace exists (the real server needs one created first).
- Pods cannot be created directly (405); they come from Deployments and StatefulSets.
- Every pod has the IP the sandbox is given (127.0.0.1 in the tests), so the port tells workers apart; the
  real tests give kwok pods loopback IPs of their own (a Node with ``spec.podCIDR`` 127.0.1.0/24).
- No other writers: on the real server the Deployment controller writes status right after a change, moving
  the resourceVersion the scale subresource carries, so a read-modify-write of a scale may lose (409) and is
  retried there; in the sandbox a resourceVersion only moves when a client or a tick changes the object.

The Trino emulator (``trino*.py``) against a real Trino 476
----------------------------------------------------------
``tests/peers/test_trino_contract.py`` asks both the same questions. Query CPU differs in timing only: a
running query's ``queryStats.totalCpuTime`` grows smoothly here, where the real one moves in steps of seconds
as task statuses reach the coordinator; and ``ConsumedCpuTimeSecs`` adds the query's exact CPU (cut to whole
seconds, as upstream), where the real one adds what the stats said at the moment the query ended, which fell
short for a cancelled query (tests/peers/TRINO_FACTS.md section 11).
"""
