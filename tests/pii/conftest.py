def found(pii, text: str, entity: str, language: str = "auto") -> list[str]:
    """The substrings of `text` that the engine reports as `entity`."""
    return [text[e.start:e.end] for e in pii.analyze(text, language) if e.type == entity]
