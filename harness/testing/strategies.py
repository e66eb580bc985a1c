"""Hypothesis strategies for Direktiv variables, ``files:`` entries, archives and action inputs.

Every strategy is a plural noun and takes keyword-only options that are checked when it is
called, so a bad option fails at once with :class:`hypothesis.errors.InvalidArgument`, not
when the first example is drawn. Importing this module imports Hypothesis; the pytest plugin
never does. For example::

    from hypothesis import given
    from direktiv_sdk.store import validate_key
    from harness.testing.strategies import variable_keys

    @given(variable_keys())
    def test_keys_validate(key):
        assert validate_key(key) == key
"""

from __future__ import annotations

import string
from collections.abc import Collection, Iterable
from typing import Final

try:
    from hypothesis import assume
    from hypothesis import strategies as st
    from hypothesis.errors import InvalidArgument
except ModuleNotFoundError as missing:  # pragma: no cover - depends on the installed extras
    if missing.name != "hypothesis":
        raise
    raise ModuleNotFoundError(
        "harness.strategies needs Hypothesis, which comes with the testing extra: "
        "pip install 'direktiv-sdk[testing]'",
        name="hypothesis",
    ) from missing

from direktiv_sdk.engine.functions import FILE_SCOPES, FILE_TYPES
from direktiv_sdk.expr import gojson
from direktiv_sdk.expr.gojson import JSON
from direktiv_sdk.store import Scope
from harness.testing._strategy_parts import (
    FORMATS,
    HOSTILE_KINDS,
    HOSTILE_NAME,
    INNER,
    FileSpec,
    benign_members,
    file_spec,
    hostile_members,
    pack,
    trees,
)

__all__ = [
    "HOSTILE_KINDS",
    "HOSTILE_NAME",
    "FileSpec",
    "action_inputs",
    "file_specs",
    "invalid_variable_keys",
    "mime_types",
    "scopes",
    "tar_archives",
    "variable_keys",
    "variable_values",
]

_LETTERS: Final = string.ascii_letters
_ALNUM: Final = _LETTERS + string.digits
_TOKEN: Final = _ALNUM + "!#$&-^_.+"
"""Characters of a mime type or subtype token (RFC 6838)."""

_MAX_SAFE_INT: Final = 2**53
"""Direktiv decodes numbers into float64: larger integers would not arrive intact."""


# --------------------------------------------------------------------------- option checks


def _check_int(name: str, value: object, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise InvalidArgument(f"invalid {name} {value!r}: pass an int of at least {low}")
    return value


def _check_bool(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise InvalidArgument(f"invalid {name} {value!r}: pass True or False")
    return value


def _check_choices(name: str, value: object, allowed: Collection[str]) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise InvalidArgument(
            f"invalid {name} {value!r}: pass a non-empty collection of {sorted(allowed)}"
        )
    chosen = tuple(value)
    unknown = [item for item in chosen if item not in allowed]
    if unknown or not chosen:
        raise InvalidArgument(
            f"invalid {name} {value!r}: pass a non-empty collection of {sorted(allowed)}"
        )
    return tuple(dict.fromkeys(chosen))


# --------------------------------------------------------------------------- keys and scopes


def _is_key(text: str) -> bool:
    """Direktiv's key rule spelled out character by character (independent of the regex)."""
    return (
        bool(text)
        and text[0] in _LETTERS
        and text[-1] in _ALNUM
        and all(char in INNER for char in text)
    )


def variable_keys(*, min_size: int = 1, max_size: int = 32) -> st.SearchStrategy[str]:
    """Return a strategy for variable names that Direktiv accepts (``a``, ``my.var-2``).

    A letter first, then letters, digits, ``_``, ``-`` or ``.``, ending in a letter or digit.
    """
    _check_int("min_size", min_size, 1)
    _check_int("max_size", max_size, min_size)
    single = st.sampled_from(_LETTERS)
    if max_size == 1:
        return single
    longer = st.builds(
        lambda first, middle, last: first + middle + last,
        st.sampled_from(_LETTERS),
        st.text(INNER, min_size=max(min_size - 2, 0), max_size=max_size - 2),
        st.sampled_from(_ALNUM),
    )
    return longer if min_size > 1 else st.one_of(single, longer)


def invalid_variable_keys(*, max_size: int = 32) -> st.SearchStrategy[str]:
    """Return a strategy for strings that break Direktiv's variable-name rule.

    Empty names, a bad first or last character, a character outside the rule (spaces, ``/``,
    ``ä``, control characters) and the regex trap of a trailing newline (``"a\\n"``).
    """
    _check_int("max_size", max_size, 2)
    inner = st.text(INNER, max_size=max_size - 2)
    bad_char = st.characters(exclude_characters=INNER, exclude_categories=["Cs"])
    return st.one_of(
        st.just(""),
        st.builds(lambda first, rest: first + rest, st.sampled_from("0123456789_-."), inner),
        st.builds(
            lambda key, last: key + last,
            variable_keys(max_size=max_size - 1),
            st.sampled_from("_-."),
        ),
        st.builds(
            lambda head, char, tail: head + char + tail,
            st.text(INNER, max_size=(max_size - 1) // 2),
            bad_char,
            st.text(INNER, max_size=(max_size - 1) // 2),
        ),
        st.builds(lambda key: key + "\n", variable_keys(max_size=max_size - 1)),
        st.text(max_size=max_size).filter(lambda text: not _is_key(text)),
    )


def scopes(*, include_file: bool = False) -> st.SearchStrategy[str]:
    """Return a strategy for ``instance``, ``workflow``, ``namespace`` (and ``file``)."""
    _check_bool("include_file", include_file)
    names = tuple(scope.value for scope in Scope)
    return st.sampled_from((*names, "file") if include_file else names)


_COMMON_MIME_TYPES: Final = (
    "application/json",
    "text/plain",
    "text/plain; charset=utf-8",
    "application/octet-stream",
    "application/x-tar",
    "application/gzip",
    "text/csv",
    "image/png",
)


def mime_types(*, allow_empty: bool = False) -> st.SearchStrategy[str]:
    """Return a strategy for mime types as a function sends them in ``Content-Type``.

    ``allow_empty`` adds ``""``, the mime type of variables collected from ``out/``.
    """
    _check_bool("allow_empty", allow_empty)
    token = st.text(_TOKEN, min_size=1, max_size=20).filter(lambda t: t[0] in _ALNUM)
    kinds = st.sampled_from(("application", "text", "image", "audio", "video", "font", "model"))
    generated = st.builds(
        lambda kind, sub, charset: f"{kind}/{sub}{'; charset=utf-8' if charset else ''}",
        kinds,
        token,
        st.booleans(),
    )
    options = [st.sampled_from(_COMMON_MIME_TYPES), generated]
    if allow_empty:
        options.append(st.just(""))
    return st.one_of(options)


# --------------------------------------------------------------------------- values and inputs


def _json_values(max_leaves: int, *, objects_only: bool = False) -> st.SearchStrategy[JSON]:
    text = st.text(st.characters(exclude_categories=["Cs"]), max_size=20)
    scalars: st.SearchStrategy[JSON] = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-_MAX_SAFE_INT, _MAX_SAFE_INT),
        st.floats(allow_nan=False, allow_infinity=False),
        text,
    )
    values = st.recursive(
        scalars,
        lambda children: st.one_of(
            st.lists(children, max_size=4), st.dictionaries(text, children, max_size=4)
        ),
        max_leaves=max_leaves,
    )
    if objects_only:
        return st.dictionaries(text, values, max_size=4)
    return values


def variable_values(
    *, min_size: int = 0, max_size: int | None = None, json: bool = False
) -> st.SearchStrategy[bytes]:
    """Return a strategy for variable data: any bytes, or with ``json=True`` Go-JSON text.

    ``json=True`` gives what a setter state stores (``"hello"``, ``5``, ``{"a":1}``); the size
    bounds (default 0 to 1024 bytes) apply to raw values only.
    """
    _check_bool("json", json)
    if json:
        if min_size != 0 or max_size is not None:
            raise InvalidArgument(
                f"invalid size bounds ({min_size!r}, {max_size!r}) with json=True: "
                "they limit raw values only, so drop them or pass json=False"
            )
        return _json_values(8).map(lambda value: gojson.dumps(value).encode())
    _check_int("min_size", min_size, 0)
    _check_int("max_size", 1024 if max_size is None else max_size, min_size)
    return st.binary(min_size=min_size, max_size=1024 if max_size is None else max_size)


def action_inputs(*, max_leaves: int = 10, objects_only: bool = False) -> st.SearchStrategy[JSON]:
    """Return a strategy for action inputs as Direktiv sends them (any JSON value).

    Strings are valid Unicode, numbers finite and integers within ±2**53, because Direktiv
    decodes numbers into float64. ``objects_only`` gives only objects, like a whole-data input.
    """
    _check_int("max_leaves", max_leaves, 1)
    _check_bool("objects_only", objects_only)
    return _json_values(max_leaves, objects_only=objects_only)


def tar_archives(*, gzip: bool = False, hostile: bool = False) -> st.SearchStrategy[bytes]:
    """Return a strategy for the bytes of real tar (``gzip=True``: tar.gz) archives.

    Members are regular files and folders with safe names, written in the ustar, GNU or pax
    format, named ``a/b``, ``/a/b`` (as Direktiv's own archives) or ``./a/b``. ``hostile=True``
    mixes in one or more members that try to leave the folder: ``..`` names, absolute names,
    symbolic and hard links (some followed by a file written through them), devices, fifos;
    see :data:`HOSTILE_KINDS`. Hostile members name their file :data:`HOSTILE_NAME`. All but
    absolute names are errors for the harness; an absolute name is read below the target
    folder (as Direktiv does, and as the archives of ``out/`` folders need), so it must only
    never land outside.
    """
    _check_bool("gzip", gzip)
    _check_bool("hostile", hostile)

    @st.composite
    def archives(draw: st.DrawFn) -> bytes:
        members = draw(benign_members(draw(trees())))
        if hostile:
            for extra in draw(st.lists(hostile_members(), min_size=1, max_size=3)):
                at = draw(st.integers(0, len(members)))
                members[at:at] = extra
        return pack(members, compressed=gzip, tar_format=draw(st.sampled_from(FORMATS)))

    return archives()


def file_specs(
    *,
    min_size: int = 0,
    max_size: int = 4,
    types: Collection[str] = FILE_TYPES,
    scopes: Collection[str] = ("instance", "workflow", "namespace"),
    permissions: bool = True,
) -> st.SearchStrategy[tuple[FileSpec, ...]]:
    """Return a strategy for an action's ``files:`` list with the data each entry reads.

    Each example is a tuple of :class:`FileSpec` whose targets are distinct and never nested
    in one another (nor ``out``), and whose sources (scope and key) are distinct. Seed the
    store with :meth:`FileSpec.seed`, pass the :attr:`FileSpec.file` entries to the call and
    compare the temp dir with :attr:`FileSpec.contents` / :attr:`FileSpec.tree`. Now and then
    an entry's variable does not exist (an empty file or folder is expected). ``permissions``
    modes always keep the owner's read bit.

    Args:
        min_size: The fewest entries.
        max_size: The most entries.
        types: The ``type`` values to use (of ``""``, ``plain``, ``base64``, ``tar``,
            ``tar.gz``).
        scopes: The scopes to read from (of ``instance``, ``workflow``, ``namespace``,
            ``file``; ``file`` needs ``root=`` when seeding and calling).
        permissions: Whether entries may carry ``permissions``.
    """
    _check_int("min_size", min_size, 0)
    _check_int("max_size", max_size, min_size)
    chosen_types = _check_choices("types", types, FILE_TYPES)
    chosen_scopes = _check_choices("scopes", scopes, FILE_SCOPES)
    _check_bool("permissions", permissions)

    keys = variable_keys(max_size=12)

    @st.composite
    def specs(draw: st.DrawFn) -> tuple[FileSpec, ...]:
        targets: list[str] = []
        sources: list[tuple[str, str]] = []
        drawn: list[FileSpec] = []
        wanted = draw(st.integers(min_size, max_size))
        attempts = 0
        while len(drawn) < wanted:
            attempts += 1
            if attempts > wanted * 10:
                # Clashes are rare; rejecting the example keeps min_size honest.
                assume(len(drawn) >= min_size)
                break
            spec = draw(
                file_spec(
                    keys=keys,
                    types=chosen_types,
                    scope_names=chosen_scopes,
                    permissions=permissions,
                    taken_targets=targets,
                    taken_sources=sources,
                )
            )
            if spec is not None:
                drawn.append(spec)
        return tuple(drawn)

    return specs()
