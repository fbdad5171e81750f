"""The one registry of feature-visualization methods: every fact about a method that the rest of
the project needs (the workflow, generation, metrics, tables, figures, the benchmark) in one entry.

Adding a method = one `register(MethodSpec(...))` entry here (or `@register_method(...)` on its
class, zennit's `@register_composite` style) plus the file that implements it. The facts stay
importable without torch: the implementation is named as ``"module:Class"`` and imported only
when a job runs it, so figures, metrics tables and the workflow's planning stay light.

An implementation class is built as ``Class(name, model_spec, model, method_config, run_dir,
device)`` and provides ``group_key(target)`` and ``plan(targets, references)`` (`fv/plan.py`).
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import import_module

from vitalstudy.errors import VitalStudyError

TARGET_KINDS = ("class", "neuron", "concept", "accentuation")  # target kinds (vitalstudy/targets.py)


@dataclass(frozen=True)
class MethodSpec:
    name: str  # as in config `generate.methods` and the 02_fv/<model>/<method>/ folder
    implementation: str | type  # "module:Class", imported on first use, or the class itself
    display: str  # short label of figures
    title: str  # label of metric tables
    marker: str  # matplotlib marker of scatter plots (the paper's Fig. 5 symbols)
    palette_index: int  # its colour: an index 0-9 into seaborn's "colorblind" palette (unique per method)
    target_kinds: tuple[str, ...]  # which stage-1 target kinds it visualises
    section: str = ""  # its settings' section of `generate` (default: its name)
    reads_references: bool = False  # optimises towards stage-1 reference images (its jobs need them)
    needs_lrp: bool = False  # needs a faithful LRP composite of the model (models.registry.RelevanceSupport)
    batchnorm_use: str = ""  # why it needs BatchNorm layers, when it does ("matches BatchNorm statistics")
    kinds_note: str = ""  # why it serves only `target_kinds`, said when another kind is asked of it
    asset: str = ""  # a run-wide input the workflow builds before its jobs ("maco_spectrum")
    extends: str = ""  # a settings section read first, its own `section` overriding it (vital_lrp: vital)

    def __post_init__(self):
        if not self.section:
            object.__setattr__(self, "section", self.name)
        if not 0 <= self.palette_index < 10:
            raise ValueError(f"method {self.name}: palette_index {self.palette_index} is not one of the 10 colours")
        unknown = set(self.target_kinds) - set(TARGET_KINDS)
        if unknown:
            raise ValueError(f"method {self.name}: unknown target kinds {sorted(unknown)}; known: {TARGET_KINDS}")

    @property
    def needs_batchnorm(self) -> bool:
        return bool(self.batchnorm_use)

    def method_class(self) -> type:
        """The implementation, imported now (it imports torch)."""
        if isinstance(self.implementation, type):
            return self.implementation
        module, _, name = self.implementation.partition(":")
        return getattr(import_module(module), name)

    def serves(self, kind: str) -> bool:
        return kind in self.target_kinds

    def unavailable_on(self, model_spec) -> str | None:
        """Why this method cannot run on the model at all (the paper leaves its cells empty), or None."""
        if self.batchnorm_use and not model_spec.has_batchnorm:
            return f"{self.title} {self.batchnorm_use} and {model_spec.name} has no BatchNorm"
        if self.needs_lrp and model_spec.relevance.composite is None:
            return f"no faithful LRP relevance for {model_spec.name}: {model_spec.relevance.reason}"
        return None

    def kind_refusal(self, kind: str) -> str | None:
        """Why this method cannot visualise `kind` targets on any model, or None."""
        if self.serves(kind):
            return None
        return f"{self.title} {self.kinds_note}" if self.kinds_note else f"{self.title} does not visualise {kind} targets"

    def not_applicable(self, model_spec, kind: str) -> str | None:
        """Why this method cannot visualise a `kind` target of the model, or None."""
        return self.unavailable_on(model_spec) or self.kind_refusal(kind)


METHODS: dict[str, MethodSpec] = {}  # registration order = the paper's order in figures and tables


def register(spec: MethodSpec) -> MethodSpec:
    if spec.name in METHODS:
        raise ValueError(f"method {spec.name!r} is registered twice")
    taken = {m.palette_index: m.name for m in METHODS.values()}
    if spec.palette_index in taken:
        raise ValueError(f"method {spec.name!r}: palette index {spec.palette_index} is {taken[spec.palette_index]}'s")
    METHODS[spec.name] = spec
    return spec


def register_method(name: str, **facts):
    """Class decorator: register the decorated class as method `name` (facts as in MethodSpec)."""
    def decorator(cls: type) -> type:
        register(MethodSpec(name, cls, **facts))
        return cls

    return decorator


def unregister(name: str) -> None:
    """Remove a method (tests that register a toy method clean up with this)."""
    del METHODS[name]


def get_method(name: str) -> MethodSpec:
    try:
        return METHODS[name]
    except KeyError:
        raise VitalStudyError(f"unknown method {name!r}; known: {', '.join(METHODS)}") from None


def method_names() -> list[str]:
    return list(METHODS)


def not_applicable(method: str, model_spec, kind: str) -> str | None:
    """Why `method` cannot visualise a `kind` target of this model, or None (see MethodSpec)."""
    return get_method(method).not_applicable(model_spec, kind)


def reference_methods() -> tuple[str, ...]:
    return tuple(m.name for m in METHODS.values() if m.reads_references)


# The paper's methods, in its order (VITAL first, then the baselines).
register(MethodSpec("vital", "vitalstudy.fv.vital:VitalMethod", display="VITAL", title="VITAL", marker="s",
                    palette_index=0, target_kinds=("class", "neuron", "concept"), reads_references=True))
register(MethodSpec("vital_lrp", "vitalstudy.fv.vital:VitalMethod", display="VITAL (LRP)",
                    title="VITAL (LRP relevance)", marker="D", palette_index=4,
                    target_kinds=("class", "neuron", "concept"), extends="vital", reads_references=True,
                    needs_lrp=True))
register(MethodSpec("maco", "vitalstudy.fv.maco:MacoMethod", display="MACO", title="MACO", marker="^",
                    palette_index=1, target_kinds=("class", "neuron"), asset="maco_spectrum"))
register(MethodSpec("fourier", "vitalstudy.fv.fourier:FourierMethod", display="Fourier", title="Fourier",
                    marker="h", palette_index=2, target_kinds=("class", "neuron")))
# Lucid/Lucent's own Fourier recipe: a named variant, not the paper's Fourier baseline (PAPER_NOTES §2).
register(MethodSpec("fourier_lucid", "vitalstudy.fv.fourier:LucidFourierMethod", display="Fourier (Lucid)",
                    title="Fourier (Lucid recipe)", marker="p", palette_index=8, target_kinds=("class", "neuron"),
                    section="fourier_lucid"))
# DeepInversion inverts classes only; concept directions are VITAL's (App. B.3).
register(MethodSpec("deepinversion", "vitalstudy.fv.deepinversion:DeepInversionMethod", display="DeepInv",
                    title="DeepInversion", marker="*", palette_index=3, target_kinds=("class",),
                    batchnorm_use="matches BatchNorm statistics",
                    kinds_note="optimises class logits; it has no inner-neuron variant"))
# Feature accentuation (Hamblin et al. 2024): image-seeded visualization of a class or inner neuron
# (targets.accentuations, ids accent-<image>-<target>; fv/accentuation.py).
register(MethodSpec("accentuation", "vitalstudy.fv.accentuation:AccentuationMethod", display="Accent.",
                    title="Feature accentuation", marker="P", palette_index=5, target_kinds=("accentuation",),
                    kinds_note="visualises a class or neuron from a seed image (targets.accentuations)"))
register(MethodSpec("vital_accentuation", "vitalstudy.fv.accentuation:VitalAccentuationMethod",
                    display="VITAL accent.", title="VITAL accentuation", marker="X", palette_index=6,
                    target_kinds=("accentuation",), reads_references=True, extends="vital",
                    kinds_note="visualises a class or neuron from a seed image (targets.accentuations)"))
