"""The task dashboard: overview, live list, detail, locks, audit trail and operator actions.

Mount it with ``path("tasks/", include("powercrud_async.dashboard.urls"))`` or subclass
``powercrud_async.mixins.PowerCRUDMixin`` on a neapolitan ``CRUDView`` over your record model.
"""
