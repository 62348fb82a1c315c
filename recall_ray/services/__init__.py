"""Domain services: what each AI route and job does, over the repositories and the model graphs.

They run inside Ray (the Serve ingress and job tasks), never inside Flask. Each takes a ``Context`` (settings,
database, object storage, model calls) and the ``Caller`` it acts for; every read is scoped to that caller.
"""
