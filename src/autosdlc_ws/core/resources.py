"""The resources events are about: one table for the message models and the permissions.

A resource key names, in an event's ``data``, the resource it concerns (and
is what filters use); its kind is how permissions name it
(``read:agent:<id>``, ``read:repo:<owner/name>``).
"""

from __future__ import annotations

#: Resource key in ``data`` -> resource kind in permissions.
KIND_OF_KEY: dict[str, str] = {"agentId": "agent", "taskId": "task", "workflowId": "workflow",
                               "repository": "repo"}
RESOURCE_KEYS: tuple[str, ...] = tuple(KIND_OF_KEY)
RESOURCE_KINDS: tuple[str, ...] = tuple(KIND_OF_KEY.values())
