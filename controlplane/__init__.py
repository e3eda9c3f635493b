"""Berth control plane: the REST API web apps call, over a database, driving daemons over gRPC."""
