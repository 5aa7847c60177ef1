"""chronik's root error, and the one base every chronik error is built on.

This module sits below chronik's four packages and imports none of them, so each
package has its errors under the one root without importing another package for it.

An error declares its data as annotated class attributes, in the order its
constructor takes them; a class-level value is a default, and a subclass's fields
follow its bases' fields::

    class JournalClosedError(JournalError, RuntimeError):
        path: str
        template = "journal {path!r} is closed; open it again to use it"

The base derives the rest. The constructor binds its arguments to the fields as a
function binds its parameters (a wrong count or an unknown name is a ``TypeError``
naming the error), sets an attribute per field, and makes ``args`` the field values
in order, so the error pickles and its repr reads as its construction. The message
is ``template`` formatted with the fields (``{path!r}``, ``{timeout:g}``), or the
``__str__`` the class writes when a template cannot say it. Errors compare by
identity, as every exception does.
"""

from __future__ import annotations

import inspect
import string
from typing import Any, ClassVar, dataclass_transform

__all__ = ["ChronikError"]

_FIELD = inspect.Parameter.POSITIONAL_OR_KEYWORD
_EMPTY = inspect.Parameter.empty  # a field with no default


@dataclass_transform(eq_default=False)
class ChronikError(Exception):
    """Root of every error chronik raises on purpose."""

    # The message, formatted with the fields; None: the class writes __str__.
    template: ClassVar[str | None] = None
    # The fields, as the constructor binds them (inspect.signature shows it too).
    __signature__: ClassVar[inspect.Signature] = inspect.Signature()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        fields: dict[str, inspect.Parameter] = {}  # inherited fields first
        for klass in reversed(cls.__mro__):
            if issubclass(klass, ChronikError) and klass is not ChronikError:
                fields.update(_declared_fields(klass))
        try:
            cls.__signature__ = inspect.Signature(list(fields.values()))
        except ValueError as error:  # a field without a default after one with
            raise TypeError(f"{cls.__qualname__}: {error}") from None
        _check_template(cls)

    def __init__(self, *args: object, **kwargs: object) -> None:
        try:
            bound = self.__signature__.bind(*args, **kwargs)
        except TypeError as error:
            raise TypeError(f"{type(self).__qualname__}(): {error}") from None
        bound.apply_defaults()
        for name, value in bound.arguments.items():
            setattr(self, name, value)
        # Exception's own __init__, not super(): OSError (under TimeoutError) would
        # read the values as errno, strerror, filename and keep two of them in args.
        Exception.__init__(self, *bound.arguments.values())

    def __str__(self) -> str:
        if self.template is None:
            return super().__str__()
        fields = {name: getattr(self, name) for name in self.__signature__.parameters}
        return self.template.format_map(fields)


def _declared_fields(klass: type) -> dict[str, inspect.Parameter]:
    """The fields ``klass`` itself declares, in order, with their defaults."""
    own = vars(klass)
    return {
        name: inspect.Parameter(name, _FIELD, default=own.get(name, _EMPTY))
        for name, annotation in own.get("__annotations__", {}).items()
        if not _is_class_var(annotation)
    }


def _is_class_var(annotation: object) -> bool:
    # Under ``from __future__ import annotations`` an annotation is its source text.
    text = annotation if isinstance(annotation, str) else repr(annotation)
    return text.startswith(("ClassVar", "typing.ClassVar"))


def _check_template(cls: type[ChronikError]) -> None:
    """A template naming no field of its class fails at import, not when raised."""
    if cls.template is None:
        return
    for _, field, _, _ in string.Formatter().parse(cls.template):
        name = None if field is None else field.partition(".")[0].partition("[")[0]
        if name is not None and name not in cls.__signature__.parameters:
            raise TypeError(
                f"{cls.__qualname__}.template names {{{field}}}, which is not one "
                f"of its fields {list(cls.__signature__.parameters)}"
            )
