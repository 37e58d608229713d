"""The controller runtime every kind uses: watch-fed stores, a work queue, the reconcile loop.

See `store` (objects by uid, reconciled against every listing), `informer` (streams into a store),
`workqueue` (one key at a time, delayed re-adds, per-key backoff) and `controller` (the loop and
its error classes). A kind's controller in `execflow.handlers` supplies only the reconcile:
snapshot from the stores, pure core decisions, writes through `execflow.kube.client`.
"""
