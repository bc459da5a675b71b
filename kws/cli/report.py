"""CLI verbs of this area (placeholder until implemented)."""


def register(sub) -> None:
    pass
