"""YAML loading that remembers where each key stood, so validation errors can name file and line."""

from pathlib import Path

import yaml


class LineDict(dict):
    """A dict from YAML that knows the line of each key and of itself."""

    line: int = 0
    key_lines: dict

    def line_of(self, key) -> int:
        return self.key_lines.get(key, self.line)

    @classmethod
    def empty(cls, line: int) -> "LineDict":
        """A missing section, standing at the line of its parent, so defaults apply and errors still point."""
        result = cls()
        result.line, result.key_lines = line, {}
        return result


class _Loader(yaml.SafeLoader):
    pass


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> LineDict:
    loader.flatten_mapping(node)
    result = LineDict()
    result.line = node.start_mark.line + 1
    result.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in result:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key '{key}'", key_node.start_mark)
        result[key] = loader.construct_object(value_node, deep=True)
        result.key_lines[key] = key_node.start_mark.line + 1
    return result


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load(path: Path, error: type[Exception]):
    """Parse a YAML file; a syntax error becomes `error("file line N: ...")`."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"{Path(path).name}: cannot be read ({exc.__class__.__name__})") from None
    return parse(text, Path(path).name, error)


def parse(text: str, name: str, error: type[Exception]):
    """Parse YAML text read from `name`; a syntax error becomes `error("name line N: ...")`."""
    try:
        # _Loader is a SafeLoader: it builds no Python objects.
        return yaml.load(text, Loader=_Loader)  # nosec B506
    except RecursionError:
        raise error(f"{name}: nested too deeply to read") from None
    except (ValueError, TypeError, OverflowError):  # a scalar YAML types but cannot build: 0000-00-00
        raise error(f"{name}: holds a value YAML cannot read (an impossible date or number)") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "not valid YAML"
        raise error(f"{name}{where}: {problem}") from None
