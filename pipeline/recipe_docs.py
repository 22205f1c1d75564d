"""Generate the recipe reference (docs/recipe.md) from the pydantic schema, so the
docs cannot drift from what the loader accepts. A test compares the two."""
import types
import typing

from pydantic import BaseModel

from edgepipe.pipeline.recipe import Recipe

HEADER = ("# Recipe reference\n\nGenerated from `pipeline/recipe.py` by "
          "`python -m edgepipe.pipeline.recipe_docs > docs/recipe.md`; do not edit by hand.\n"
          "Unknown keys are refused. `profiles` maps a name to a `train` section; `profile` picks one.\n")


def _type_name(annotation) -> str:
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return " or ".join(f"`{a}`" for a in typing.get_args(annotation))
    if origin in (list, dict):
        return f"{origin.__name__}[{', '.join(_type_name(a) for a in typing.get_args(annotation))}]"
    return getattr(annotation, "__name__", str(annotation))


def _section(name: str, model: type[BaseModel]) -> list[str]:
    lines = [f"\n## `{name}`\n", "| key | type | default | meaning |", "|---|---|---|---|"]
    nested = []
    for key, field in model.model_fields.items():
        ann = field.annotation
        optional = [a for a in typing.get_args(ann) if a is not type(None)]
        if typing.get_origin(ann) in (typing.Union, types.UnionType) and len(optional) == 1:
            ann = optional[0]  # an optional section (``prune: null`` = off) documents its keys
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            nested.append((f"{name}.{key}" if name != "(top level)" else key, ann))
        if typing.get_origin(ann) is dict and issubclass(typing.get_args(ann)[1], BaseModel):
            nested.append((f"{key}.<name>", typing.get_args(ann)[1]))
        if typing.get_origin(ann) is list and isinstance(typing.get_args(ann)[0], type) \
                and issubclass(typing.get_args(ann)[0], BaseModel):
            nested.append((f"{key}[]", typing.get_args(ann)[0]))
        default = "required" if field.is_required() else repr(field.default)
        if isinstance(field.default, BaseModel):
            default = "(section)"
        lines.append(f"| `{key}` | {_type_name(ann)} | {default} | {field.description or ''} |")
    for sub_name, sub in nested:
        lines += _section(sub_name, sub)
    return lines


def reference() -> str:
    return HEADER + "\n".join(_section("(top level)", Recipe)) + "\n"


if __name__ == "__main__":
    print(reference(), end="")
