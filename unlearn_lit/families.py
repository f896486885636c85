"""The architecture families: one record per family, the single place that says what a family is.

A :class:`Family` names the HF ``config.model_type`` values it covers and whether its attention is
causal. Everything that depends on the family reads it here: the HF wrapper (``model_type`` -> family,
:mod:`unlearn_lit.models.hf`), the per-example Fisher's attention mask
(:mod:`unlearn_lit.methods.fisher`) and SURE's decoder handling; the unit layer registers one layout
per family (:data:`unlearn_lit.units.LAYOUTS`), and a test checks that every family here has one.
Adding a family is one :func:`register` line here and one layout function in ``units/``; a
``model_type`` no family claims is rejected with the supported ones named (never guessed: a decoder
taken for an encoder would get a non-causal mask).
"""

from __future__ import annotations

from dataclasses import dataclass

from unlearn_lit.registry import Registry, UnknownNameError


@dataclass(frozen=True)
class Family:
    """An architecture family.

    Attributes:
        name: the family (``bert``, ``vit``, ``llama``, ...): ``Backbone.family``.
        model_types: HF ``config.model_type`` values of this family (none for timm ViTs).
        causal: decoder self-attention (each token sees the tokens before it).
    """

    name: str
    model_types: tuple[str, ...] = ()
    causal: bool = False


FAMILIES: Registry[Family] = Registry("architecture family")


def register(family: Family) -> Family:
    """Registers ``family`` under its name (a name, and a model type, can be claimed once)."""
    claimed = {t: f for f in FAMILIES.names() for t in FAMILIES.get(f).model_types}
    taken = [t for t in family.model_types if t in claimed]
    if taken:
        raise ValueError(f"model types {taken} already belong to family {claimed[taken[0]]!r}")
    return FAMILIES.register(family.name)(family)


def family_of(model_type: str) -> Family:
    """The family of an HF ``config.model_type``; unknown types name the supported ones."""
    for name in FAMILIES.names():
        if model_type in FAMILIES.get(name).model_types:
            return FAMILIES.get(name)
    supported = sorted(t for n in FAMILIES.names() for t in FAMILIES.get(n).model_types)
    raise UnknownNameError(
        f"unsupported HF model_type {model_type!r}; supported: {', '.join(supported)} "
        "(add a Family in unlearn_lit/families.py and a unit layout in unlearn_lit/units/)"
    )


def is_causal(family: str) -> bool:
    """Whether ``family``'s attention is causal (raises for an unknown family)."""
    return FAMILIES.get(family).causal


for _family in (
    Family("bert", ("bert",)),
    Family("roberta", ("roberta", "xlm-roberta")),
    Family("distilbert", ("distilbert",)),
    Family("vit"),  # timm VisionTransformer (not an HF model type)
    Family("llama", ("llama",), causal=True),
    Family("mistral", ("mistral",), causal=True),
    Family("gpt2", ("gpt2",), causal=True),
):
    register(_family)
