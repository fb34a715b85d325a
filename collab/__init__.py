"""collab: see the README (work in progress)."""

__all__: list[str] = []
