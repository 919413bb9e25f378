"""The embedded world: emulated Trino, Spark and Kubernetes over real HTTP on loopback.

The Kubernetes sandbox (``kube*.py``) against the real kube-apiserver v1.37
-------------------------------------------------------------------------
``tests/peers/test_kube_contract.py`` runs the same tests against this sandbox and a real kube-apiserver
(issue 13): a stale Lease update is 409 with the server's message; a Lease or custom resource updated without
a resourceVersion is 422 naming the resource (``leases.coordination.k8s.io "x" is invalid: ...``); the scale
subresource's selector, PUT, 409 (with the server's ``details``) and 404 messages; the status subresource
apart from spec and generation; a pod-deletion-cost patch seen through label selectors (``in``, ``!=``);
a list then a watch from its resourceVersion (ADDED, MODIFIED, DELETED in order at the writes'
resourceVersions); BOOKMARKs (kind and resourceVersion only, about 2 s before ``timeoutSeconds``, and only
when the type moved: a quiet watch ends with no event); a watch from a forgotten resourceVersion (200, one
ERROR event with a 410 ``Expired`` Status without ``details``, then the end of the stream). Found by those
and fixed here: the sandbox sent a bookmark at every watch's timeout (and with ``creationTimestamp: null``),
its Status errors carried an empty ``details``, and its spark-operator CRDs lacked the
``api-approved.kubernetes.io`` annotation the real server requires of a group under ``k8s.io``.

What stays different, on purpose or because it does not matter to the controller or the demo:

- No Namespace objects: every namespace exists (the real server needs one created first).
- Pods cannot be created directly (405); they come from Deployments and StatefulSets.
- Every pod has the IP the sandbox is given (127.0.0.1 in the tests), so the port tells workers apart; the
  real tests give kwok pods loopback IPs of their own (a Node with ``spec.podCIDR`` 127.0.1.0/24).
- No other writers: on the real server the Deployment controller writes status right after a change, moving
  the resourceVersion the scale subresource carries, so a read-modify-write of a scale may lose (409) and is
  retried there; in the sandbox a resourceVersion only moves when a client or a tick changes the object.
- A watch's history: the sandbox keeps a type's last changes (bounded by count) from its start until
  ``compact()``; the real server's watch cache keeps a type's from when the cache began (for a CRD: once it is
  established), so a watch from before that is 410 there without any compaction. The 410's message names the
  oldest version each can serve, which differs.
- A CRD in a protected group (``*.k8s.io``, ``*.kubernetes.io``) without ``api-approved.kubernetes.io`` is
  refused by the real server (422) and taken by the sandbox.
- A watch from a resourceVersion newer than the store's: the sandbox answers 504 ``ResourceVersionTooLarge``
  at once; the real server was seen to wait (a 3 s watch answered 200 and nothing), not checked further.
- Bookmarks are timed on a 1 s tick on the real server, to the poll interval (0.25 s) in the sandbox.

The Trino emulator (``trino*.py``) against a real Trino 476
----------------------------------------------------------
``tests/peers/test_trino_contract.py`` asks both the same questions. Query CPU differs in timing only: a
running query's ``queryStats.totalCpuTime`` grows smoothly here, where the real one moves in steps of seconds
as task statuses reach the coordinator; and ``ConsumedCpuTimeSecs`` adds the query's exact CPU (cut to whole
seconds, as upstream), where the real one adds what the stats said at the moment the query ended, which fell
short for a cancelled query (tests/peers/TRINO_FACTS.md section 11).
"""
