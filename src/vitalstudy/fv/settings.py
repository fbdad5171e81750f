"""Which part of the `generate` config a generation job reads. Kept free of torch so that the
workflow can import it to give each job exactly its own settings (and re-run only those jobs
whose settings changed)."""

from __future__ import annotations

REFERENCE_METHODS = ("vital", "vital_lrp", "vital_accentuation")  # methods that read stage-1 references
SHARED_KEYS = ("batch_size", "checkpoint_every", "mixed_precision")  # read by every method's jobs


BASE_SECTIONS = {"vital_accentuation": "vital"}  # a method whose section only overrides another's


def method_section(method: str) -> str:
    """`generate.vital` serves vital and vital_lrp; every other method has a section of its name."""
    return "vital" if method in ("vital", "vital_lrp") else method


def _sections(method: str) -> tuple[str, ...]:
    own = method_section(method)
    return (BASE_SECTIONS[own], own) if own in BASE_SECTIONS else (own,)


def job_settings(generate_config: dict, method: str) -> dict:
    """The keys of `generate` a job of `method` reads: the shared keys and its method's section(s)."""
    return {k: generate_config[k] for k in (*SHARED_KEYS, *_sections(method)) if k in generate_config}


def method_config(generate_config: dict, method: str) -> dict:
    """A method's settings: its own section (over the section it extends), plus the loop keys
    shared by every method."""
    shared = {k: generate_config[k] for k in ("checkpoint_every",) if k in generate_config}
    merged = {}
    for section in _sections(method):
        merged.update(generate_config.get(section, {}))
    return {**shared, **merged}
