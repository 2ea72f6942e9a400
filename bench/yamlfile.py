"""YAML spec files read as YAML 1.2's core schema, not PyYAML's YAML 1.1: `010` is ten, `1:30` and
`yes` are strings, and a key given twice in one mapping is refused instead of the first one dropped."""
from __future__ import annotations

import re
from typing import Any

import yaml

_BOOL, _INT, _FLOAT = "tag:yaml.org,2002:bool", "tag:yaml.org,2002:int", "tag:yaml.org,2002:float"
_FLOAT_TEXT = re.compile(r"^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?$")
_SPECIAL_FLOATS = {".inf": float("inf"), "+.inf": float("inf"), "-.inf": float("-inf"), ".nan": float("nan")}


class CoreLoader(yaml.SafeLoader):
    """SafeLoader with the YAML 1.2 core schema's booleans, integers and floats, refusing duplicate keys."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, str) and key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key '{key}'", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep)


CoreLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in (_BOOL, _INT, _FLOAT)]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}
CoreLoader.add_implicit_resolver(_BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))
CoreLoader.add_implicit_resolver(_INT, re.compile(r"^[-+]?[0-9]+$"), list("-+0123456789"))
CoreLoader.add_implicit_resolver(_FLOAT, re.compile(_FLOAT_TEXT.pattern + r"|^[-+]?\.(?:inf|Inf|INF)$|^\.(?:nan|NaN|NAN)$"),
                                 list("-+0123456789."))
CoreLoader.add_constructor(_BOOL, lambda loader, node: loader.construct_scalar(node).lower() == "true")
CoreLoader.add_constructor(_INT, lambda loader, node: int(loader.construct_scalar(node), 10))
CoreLoader.add_constructor(_FLOAT, lambda loader, node: _SPECIAL_FLOATS.get(
    loader.construct_scalar(node).lower(), None) or float(loader.construct_scalar(node)))


def load_yaml(text: str) -> Any:
    """Raises yaml.YAMLError on invalid YAML or a duplicate key."""
    return yaml.load(text, Loader=CoreLoader)  # noqa: S506 - CoreLoader is a SafeLoader
