"""Reading a YAML config file into values that remember their line, and checking them
against the settings of ferrotick's config classes.

The file is parsed with PyYAML's safe composer, so every key keeps the line it is on;
``${VAR}`` and ``${VAR:-default}`` in string values are replaced from the environment;
each section's keys are checked for their type here (with the file's line in the
message), and the config class the section builds checks their bounds (its message is
given the line of the key it names). Values of secret keys never appear in a message.
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import math
import os
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NamedTuple

import yaml

from ._errors import ConfigError

__all__ = [
    "Field",
    "Item",
    "Section",
    "Source",
    "check",
    "field_for",
    "fields_of",
    "is_secret_name",
    "path_arg",
    "read",
]

# keys whose values are secrets, besides those annotated ``Secret``
_SECRET_NAMES = frozenset({"api_key", "api_secret", "secret", "token", "password"})
_SECRET_SUFFIXES = ("_secret", "_token", "_password")

# ${NAME} or ${NAME:-default}; $${...} stands for a literal ${...}
_REF = re.compile(r"\$(\$?)\{([^}]*)\}")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
# YAML 1.1 reads 1e-3 (no dot) as a string; number settings take it as a number
_EXPONENT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+\Z")
_STR_TAG = "tag:yaml.org,2002:str"
# environment variables whose values are kept out of messages
_SECRET_ENV = re.compile(r"SECRET|TOKEN|PASSW|API_?KEY|CREDENTIAL", re.IGNORECASE)
# the password of a URL such as redis://user:password@host
_URL_PASSWORD = re.compile(r"://[^/@:\s]*:([^@/\s]+)@")


def is_secret_name(name: str) -> bool:
    return name in _SECRET_NAMES or name.endswith(_SECRET_SUFFIXES)


class Source:
    """The file being read: its name as the user gave it and the environment used for
    substitution. Errors read ``<file>:<line>: <dotted.key>: <what is wrong>``."""

    def __init__(self, name: str, env: Mapping[str, str]) -> None:
        self.name = name
        self.env = env
        self.secrets: set[str] = set()  # values to keep out of messages

    def add_secret(self, value: str) -> None:
        # shorter values are no secrets worth the name, and would garble messages
        if len(value) >= 4:
            self.secrets.add(value)

    def error(self, line: int | None, key: str, message: str) -> ConfigError:
        for s in sorted(self.secrets, key=len, reverse=True):
            message = message.replace(s, "***")
        where = f"{self.name}:{line}" if line else self.name
        return ConfigError(f"{where}: {key}: {message}" if key else f"{where}: {message}")


@dataclasses.dataclass
class Item:
    """A value of the file: a scalar, a list of Items or a dict of key -> Item, with
    the line of its key (1-based). ``text`` is the substituted string when the value
    came from one ``${...}`` reference, for settings that take strings."""

    value: Any
    line: int
    text: str | None = None


def read(path: str, env: Mapping[str, str]) -> tuple[Item | None, Source]:
    """The file's top-level Item (None for an empty file) and its Source."""
    src = Source(path, env)
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory, not a config file") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a UTF-8 text file") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read the config file: {e.strerror}") from None
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = f":{mark.line + 1}" if mark is not None else ""
        what = str(e.problem or "cannot be parsed")
        if e.context:
            what += f" {e.context}"
            c = e.context_mark
            if c is not None and mark is not None and c.line != mark.line:
                what += f" started on line {c.line + 1}"
        raise ConfigError(f"{path}{line}: invalid YAML: {_one_line(what)}") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: invalid YAML: {_one_line(str(e))}") from None
    if root is None:
        return None, src
    return _Converter(src).item(root, "", root.start_mark.line + 1), src


def _one_line(s: str) -> str:
    return " ".join(s.split())


class _Converter:
    """yaml nodes -> Items, substituting ``${...}`` in strings."""

    def __init__(self, src: Source) -> None:
        self.src = src
        self.constructor = yaml.constructor.SafeConstructor()
        self.resolver = yaml.resolver.Resolver()

    def item(self, node: yaml.Node, key: str, line: int) -> Item:
        if isinstance(node, yaml.MappingNode):
            return Item(self.mapping(node, key), line)
        if isinstance(node, yaml.SequenceNode):
            return Item(
                [
                    self.item(n, f"{key}[{i}]", n.start_mark.line + 1)
                    for i, n in enumerate(node.value)
                ],
                line,
            )
        if node.tag == _STR_TAG and "$" in node.value:
            return self.substituted(node, key, line)
        try:
            value = self.constructor.construct_object(node, deep=True)
        except yaml.YAMLError as e:
            raise self.src.error(line, key, f"invalid value: {_one_line(str(e))}") from None
        if isinstance(value, str):
            self.scan(value)
        return Item(value, line)

    def scan(self, text: str) -> None:
        for password in _URL_PASSWORD.findall(text):
            self.src.add_secret(password)

    def mapping(self, node: yaml.MappingNode, key: str) -> dict[str, Item]:
        out: dict[str, Item] = {}
        for knode, vnode in node.value:
            kline = knode.start_mark.line + 1
            if not isinstance(knode, yaml.ScalarNode) or knode.tag != _STR_TAG:
                raise self.src.error(kline, key, "keys must be names")
            name = knode.value
            dotted = f"{key}.{name}" if key else name
            if name in out:
                raise self.src.error(
                    kline, dotted, f"duplicate key (first on line {out[name].line})"
                )
            out[name] = item = self.item(vnode, dotted, kline)
            if (
                is_secret_name(name)
                and item.value is not None
                and not isinstance(item.value, (dict, list))
            ):
                # known before any key is checked, so no message can show it
                self.src.add_secret(str(item.text if item.text is not None else item.value))
        return out

    def substituted(self, node: yaml.ScalarNode, key: str, line: int) -> Item:
        raw = node.value
        env = self.src.env
        src = self.src

        def replace(m: re.Match[str]) -> str:
            if m.group(1):
                return "${" + m.group(2) + "}"
            name, sep, default = m.group(2).partition(":-")
            if not _ENV_NAME.match(name):
                raise src.error(
                    line,
                    key,
                    f"bad environment reference ${{{m.group(2)}}}: "
                    "expected ${NAME} or ${NAME:-default}",
                )
            value = env.get(name)
            if value is not None and _SECRET_ENV.search(name):
                src.add_secret(value)  # whichever key it is given to
            if value is None or (sep and value == ""):
                if not sep:
                    raise src.error(
                        line,
                        key,
                        f"environment variable {name} is not set "
                        f"(give a default with ${{{name}:-...}})",
                    )
                return default
            return value

        if "${" in _REF.sub("", raw):
            raise src.error(line, key, "unclosed ${ in the value (write $${ for a literal ${)")
        text = _REF.sub(replace, raw)
        self.scan(text)
        whole = _REF.fullmatch(raw)
        if node.style is None and whole is not None and not whole.group(1):
            # a plain `key: ${VAR}` is typed as if the variable's text were written there
            tag = self.resolver.resolve(yaml.ScalarNode, text, (True, False))
            try:
                value = self.constructor.construct_object(yaml.ScalarNode(tag, text))
            except yaml.YAMLError:
                value = text
            return Item(value, line, text)
        return Item(text, line)


# -- settings and their checks -------------------------------------------------------


class Field(NamedTuple):
    """What one key takes: ``kinds`` among int, float, bool, str, null, any, list[int],
    list[float]; ``choices`` for strings; ``convert`` applied to a checked value."""

    kinds: frozenset[str]
    secret: bool = False
    choices: tuple[str, ...] = ()
    convert: Callable[[Any], Any] | None = None


_ANNOTATIONS = {
    "int": "int",
    "float": "float",
    "bool": "bool",
    "str": "str",
    "None": "null",
    "Any": "any",
    "Secret": "str",
    "tuple[int, ...]": "list[int]",
    "list[int]": "list[int]",
    "Sequence[int]": "list[int]",
    "tuple[float, ...]": "list[float]",
    "list[float]": "list[float]",
    "Sequence[float]": "list[float]",
}


def _split_union(annotation: str) -> list[str]:
    parts, depth, cur = [], 0, ""
    for ch in annotation:
        depth += ch == "["
        depth -= ch == "]"
        if ch == "|" and depth == 0:
            parts.append(cur.strip())
            cur = ""
        else:
            cur += ch
    parts.append(cur.strip())
    return parts


def field_for(name: str, annotation: Any, enums: Mapping[str, type] | None = None) -> Field | None:
    """The Field for a parameter annotated ``annotation`` (a string, as under
    ``from __future__ import annotations``), or None when a file cannot express it
    (classes, callables)."""
    if not isinstance(annotation, str):
        annotation = getattr(annotation, "__name__", str(annotation))
    kinds: set[str] = set()
    choices: tuple[str, ...] = ()
    convert = None
    secret = is_secret_name(name)
    for part in _split_union(annotation):
        if part == "Secret":
            secret = True
        if enums and part in enums:
            enum_cls = enums[part]
            kinds.add("str")
            choices = tuple(dict.fromkeys(str(m.value) for m in enum_cls))  # type: ignore[attr-defined]
            convert = enum_cls
        elif part in _ANNOTATIONS:
            kinds.add(_ANNOTATIONS[part])
        else:
            return None
    return Field(frozenset(kinds), secret, choices, convert)


def fields_of(
    target: Any, exclude: Iterable[str] = (), enums: Mapping[str, type] | None = None
) -> dict[str, Field]:
    """The settings a file may give for ``target``: a dataclass's fields, or the keyword
    parameters of a class's constructor, minus ``exclude`` and those a file cannot
    express."""
    skip = set(exclude)
    if dataclasses.is_dataclass(target):
        pairs = [(f.name, f.type) for f in dataclasses.fields(target) if f.init]
    else:
        sig = inspect.signature(target)
        pairs = [
            (p.name, p.annotation)
            for p in sig.parameters.values()
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name != "self"
        ]
    out: dict[str, Field] = {}
    for name, annotation in pairs:
        if name in skip:
            continue
        f = field_for(name, annotation, enums)
        if f is not None:
            out[name] = f
    return out


def _describe(f: Field) -> str:
    if f.choices:
        what = "one of " + ", ".join(repr(c) for c in f.choices)
    else:
        names = {
            "int": "an integer",
            "float": "a number",
            "bool": "true or false",
            "str": "a string",
            "any": "a value",
            "list[int]": "a list of integers",
            "list[float]": "a list of numbers",
        }
        order = ["int", "float", "bool", "str", "any", "list[int]", "list[float]"]
        kinds = [k for k in order if k in f.kinds]
        if "int" in kinds and "float" in kinds:
            kinds.remove("int")
        what = " or ".join(names[k] for k in kinds) or "null"
    if "null" in f.kinds and f.kinds != {"null"}:
        what += " or null"
    return what


def _shown(f: Field, v: Any) -> str:
    if f.secret:
        return "a secret" if isinstance(v, str) else f"a {_yaml_type(v)}"
    if isinstance(v, dict):
        return "a mapping"
    if isinstance(v, list):
        return "a list"
    return repr(v)


def _yaml_type(v: Any) -> str:
    if isinstance(v, dict):
        return "mapping"
    if isinstance(v, list):
        return "list"
    return "null" if v is None else type(v).__name__


def _scalar(f: Field, v: Any) -> tuple[bool, Any]:
    k = f.kinds
    if v is None:
        return "null" in k, None
    if isinstance(v, (dict, list)):
        return False, v
    if "any" in k:
        return True, v
    if isinstance(v, bool):
        return "bool" in k, v
    if isinstance(v, int):
        return ("int" in k or "float" in k), v
    if isinstance(v, float):
        return ("float" in k and math.isfinite(v)), v
    if isinstance(v, str):
        if "str" in k:
            return (not f.choices or v in f.choices), v
        if "float" in k and _EXPONENT.match(v):
            return True, float(v)
    return False, v


def check(f: Field, item: Item, key: str, src: Source) -> Any:
    """The value of ``item`` for setting ``f``, or ConfigError naming ``key`` and the
    line. A value from the environment counts as text where the setting takes text."""
    v = item.value
    if item.text is not None and "str" in f.kinds and not (v is None and "null" in f.kinds):
        v = item.text
    if f.secret and isinstance(v, str):
        src.add_secret(v)
    list_kind = next((k for k in f.kinds if k.startswith("list[")), None)
    if list_kind is not None and isinstance(v, list):
        each = Field(frozenset({list_kind[5:-1]}))
        out = []
        for i, sub in enumerate(v):
            ok, x = _scalar(each, sub.value)
            if not ok:
                raise src.error(
                    sub.line, f"{key}[{i}]", f"expected {_describe(each)}, got {_shown(each, x)}"
                )
            out.append(x)
        v = tuple(out)
    else:
        ok, v = _scalar(f, v)
        if not ok:
            raise src.error(item.line, key, f"expected {_describe(f)}, got {_shown(f, v)}")
    return f.convert(v) if f.convert is not None and v is not None else v


# -- sections ------------------------------------------------------------------------


@dataclasses.dataclass
class Section:
    """A mapping of the file: its settings, its nested sections and how it becomes an
    object. ``build`` receives the checked values (nested sections already built) and
    raises ConfigError whose message starts with the setting it is about. ``hints``
    refuses keys with a pointer to where the setting lives."""

    fields: dict[str, Field]
    build: Callable[[dict[str, Any]], Any]
    nested: dict[str, Section] = dataclasses.field(default_factory=dict)
    hints: dict[str, str] = dataclasses.field(default_factory=dict)

    def load(self, item: Item | None, key: str, src: Source) -> Any:
        """The object this section builds from ``item`` (None: the section is absent)."""
        entries = self.entries(item, key, src)
        values: dict[str, Any] = {}
        for name, sub in entries.items():
            dotted = f"{key}.{name}" if key else name
            if name in self.fields:
                values[name] = check(self.fields[name], sub, dotted, src)
            elif name in self.nested:
                values[name] = self.nested[name].load(sub, dotted, src)
            elif name in self.hints:
                raise src.error(sub.line, dotted, self.hints[name])
            else:
                raise src.error(sub.line, dotted, self.unknown(name))
        try:
            return self.build(values)
        except ConfigError as e:
            raise self.located(str(e), entries, key, item, src) from None

    def entries(self, item: Item | None, key: str, src: Source) -> dict[str, Item]:
        if item is None or item.value is None:
            return {}
        if not isinstance(item.value, dict):
            raise src.error(
                item.line,
                key,
                f"expected a mapping of settings, got {_shown(Field(frozenset()), item.value)}",
            )
        return item.value

    def known(self) -> list[str]:
        return sorted([*self.fields, *self.nested])

    def unknown(self, name: str) -> str:
        known = self.known()
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
        if close:
            return f"unknown key (did you mean {close[0]}?)"
        return f"unknown key (known: {', '.join(known)})"

    def located(
        self, message: str, entries: dict[str, Item], key: str, item: Item | None, src: Source
    ) -> ConfigError:
        """A build error given the file, the line and the dotted name of the setting
        its message starts with (else of the section)."""
        m = re.match(r"([A-Za-z_][A-Za-z0-9_]*)(?::\s*|\s+(?=must|is|should|cannot))", message)
        if m is not None and m.group(1) in self.known():
            name = m.group(1)
            sub = entries.get(name)
            line = sub.line if sub is not None else (item.line if item is not None else None)
            return src.error(line, f"{key}.{name}" if key else name, message[m.end() :])
        return src.error(item.line if item is not None else None, key, message)


def path_arg(path: Any, env: Mapping[str, str]) -> str:
    """The config file's path: ``path`` (str or path-like), else ``$FERROTICK_CONFIG``."""
    if path is None:
        path = env.get("FERROTICK_CONFIG")
        if not path:
            raise ConfigError("path: no config file given and FERROTICK_CONFIG is not set")
        return str(path)
    if isinstance(path, (str, os.PathLike)):
        p = os.fspath(path)
        if isinstance(p, str) and p:
            return p
    raise ConfigError(f"path: expected a file path (str or path-like), got {path!r}")
