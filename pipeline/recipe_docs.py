"""Generate the recipe reference (docs/recipe.md) from the pydantic schema, so the
docs cannot drift from what the loader accepts. A test compares the two."""
import types
import typing

from pydantic import BaseModel

from edgepipe.convert.formats import VARIANTS
from edgepipe.pipeline.recipe import Recipe

HEADER = ("# Recipe reference\n\nGenerated from `pipeline/recipe.py` by "
          "`python -m edgepipe.pipeline.recipe_docs > docs/recipe.md`; do not edit by hand.\n"
          "Unknown keys are refused. `profiles` maps a name to a `train` section; `profile` picks one.\n")


def _type_name(annotation) -> str:
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:  # a constrained type: its base (the bounds are in the schema's errors)
        return _type_name(typing.get_args(annotation)[0])
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


def variants_table() -> list[str]:
    """Every export variant of ``convert.formats.VARIANTS``: what a recipe's
    ``export.variants``, ``edgepipe convert --variant`` and the report name."""
    lines = ["\n## Export variants (`export.variants`, `edgepipe convert --variant NAME`)\n",
             "Gates (`evaluate/gates.py`): exact = max abs error, half = PSNR, quantized = top-1 agreement / "
             "edge F-score drop / PSNR, lossy = the same with looser limits. Calibrated variants use "
             "`export.calibration_samples` images from the training data.\n",
             "| name | format | precision | suffix | calibration | runner | gate | runs on | note |",
             "|---|---|---|---|---|---|---|---|---|"]
    for v in VARIANTS.values():
        lines.append(f"| `{v.name}` | {v.format} | {v.label} | `{v.suffix}` | "
                     f"{'yes' if v.needs_calibration else 'no'} | {v.runner} | {v.gate} | {v.runs_on} | {v.note} |")
    return lines


def reference() -> str:
    return HEADER + "\n".join(_section("(top level)", Recipe) + variants_table()) + "\n"


if __name__ == "__main__":
    print(reference(), end="")
