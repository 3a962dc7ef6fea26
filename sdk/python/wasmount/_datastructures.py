"""The containers a request carries: :class:`Headers` and the multi-valued :class:`MultiDict`.

Free of any WebAssembly binding and of the SDK's other modules (werkzeug's ``datastructures``
is the model).
"""

from __future__ import annotations

import collections.abc
import urllib.parse
from typing import Any, Iterable, Iterator, Mapping, NoReturn

__all__ = ["Headers", "MultiDict", "FormData"]


class Headers(collections.abc.Mapping[str, str]):
    """HTTP headers: a read-only, case-insensitive mapping of name to its first value.

    ``headers["Content-Type"]`` and ``headers["content-type"]`` are the same; every value of a
    repeated header is in :meth:`get_all`; :meth:`pairs` gives them all, in order.
    """

    __slots__ = ("_pairs", "_index")

    def __init__(self, pairs: Iterable[tuple[str, str]] | Mapping[str, str] = ()) -> None:
        if isinstance(pairs, collections.abc.Mapping):
            pairs = list(pairs.items())
        self._pairs: list[tuple[str, str]] = [(str(n), str(v)) for n, v in pairs]
        self._index: dict[str, list[str]] = {}
        for name, value in self._pairs:
            self._index.setdefault(name.lower(), []).append(value)

    def __getitem__(self, name: str) -> str:
        return self._index[name.lower()][0]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._index

    def __iter__(self) -> Iterator[str]:
        return iter(self._index)

    def __len__(self) -> int:
        return len(self._index)

    def get_all(self, name: str) -> list[str]:
        """Every value of header ``name``, in order; ``[]`` when absent."""
        return list(self._index.get(name.lower(), ()))

    def pairs(self) -> list[tuple[str, str]]:
        """Every ``(name, value)``, repeated headers included, in the order received."""
        return list(self._pairs)

    def __repr__(self) -> str:
        return f"Headers({self._pairs!r})"


class MultiDict(dict[str, str]):
    """Fields that may repeat (a query's, an urlencoded form's), read-only: ``fields["name"]``
    and ``fields.get("name")`` give the first value of a field, :meth:`getlist` all of them
    (checkboxes, multiple selects, ``?tag=a&tag=b``).

    It is a ``dict`` of the first values, so it compares, copies (``dict(fields)``) and
    serializes (``json(fields)``) as one; changing it raises ``TypeError``.
    """

    __slots__ = ("_lists",)

    def __init__(self, lists: Mapping[str, Iterable[str]] | None = None) -> None:
        """``lists`` maps each field to its values, in order (a field without any is left
        out)."""
        kept = {str(name): [str(value) for value in values]
                for name, values in (lists or {}).items()}
        kept = {name: values for name, values in kept.items() if values}
        super().__init__({name: values[0] for name, values in kept.items()})
        self._lists: dict[str, list[str]] = kept

    @classmethod
    def parse(cls, text: str) -> "MultiDict":
        """The fields of urlencoded ``text`` (``a=1&a=2&b=x+y``); blank values are kept (an
        empty input is ``""``)."""
        return cls(urllib.parse.parse_qs(text, keep_blank_values=True))

    def getlist(self, name: str) -> list[str]:
        """Every value of field ``name``, in order; ``[]`` when absent."""
        return list(self._lists.get(name, ()))

    def lists(self) -> dict[str, list[str]]:
        """All fields, each with every value (a new ``dict``, yours to change)."""
        return {name: list(values) for name, values in self._lists.items()}

    def _read_only(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise TypeError(f"a {type(self).__name__} is read-only; change a copy: dict(fields) "
                        "or fields.lists()")

    __setitem__ = __delitem__ = __ior__ = _read_only
    clear = pop = popitem = setdefault = update = _read_only

    def __reduce__(self) -> tuple[type["MultiDict"], tuple[dict[str, list[str]]]]:
        return (type(self), (self._lists,))  # copy and pickle without calling __setitem__

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._lists!r})"


#: What :attr:`Request.form <wasmount.Request.form>` is: a :class:`MultiDict` of the fields.
FormData = MultiDict
