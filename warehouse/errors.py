"""Errors the warehouse raises for bad input or an unusable database."""

from __future__ import annotations


class WarehouseError(Exception):
    """A problem a user can fix: the message is one plain sentence."""


class ExtractError(WarehouseError):
    """An extract file is not well-formed (not a row-level breach)."""
