"""Which part of the `generate` config a generation job reads. Kept free of torch so that the
workflow can import it to give each job exactly its own settings (and re-run only those jobs
whose settings changed)."""

from __future__ import annotations

from vitalstudy.fv.registry import get_method

SHARED_KEYS = ("batch_size", "checkpoint_every", "mixed_precision")  # read by every method's jobs


def _sections(method: str) -> tuple[str, ...]:
    """The method's section, after the section it extends (vital_accentuation: `vital`, then its own)."""
    info = get_method(method)
    return (info.extends, info.section) if info.extends else (info.section,)


def method_kinds(generate_config: dict, method: str) -> tuple[str, ...]:
    """The target kinds `method` runs in this config: `generate.target_kinds.<method>` where the
    config narrows them (checked by vitalstudy.config), else every kind it serves (fv.registry)."""
    chosen = generate_config["target_kinds"].get(method)
    return tuple(chosen) if chosen else get_method(method).target_kinds


def runs_kind(generate_config: dict, method: str, kind: str) -> bool:
    return kind in method_kinds(generate_config, method)


def job_settings(generate_config: dict, method: str) -> dict:
    """The keys of `generate` a job of `method` reads: the shared keys and its method's section(s)."""
    return {k: generate_config[k] for k in (*SHARED_KEYS, *_sections(method)) if k in generate_config}


def method_config(generate_config: dict, method: str) -> dict:
    """A method's settings: its own section (over the one it extends), plus the loop keys shared by
    every method."""
    shared = {k: generate_config[k] for k in ("checkpoint_every",) if k in generate_config}
    merged = {}
    for section in _sections(method):
        merged.update(generate_config.get(section, {}))
    return {**shared, **merged}


def sectioned(method: str, settings: dict) -> dict[str, dict]:
    """A method's `settings` sorted into the `generate` sections that hold them: a key its own
    section declares goes there, any other to the section it extends (vital_lrp's `attribution` is
    generate.vital's). Callers that take one flat dict of a method's settings pass it through this."""
    from vitalstudy.config import schema

    info = get_method(method)
    own = schema()["properties"]["generate"]["properties"].get(info.section, {}).get("properties", {})
    sections: dict[str, dict] = {info.section: {}}
    for key, value in settings.items():
        sections.setdefault(info.section if key in own or not info.extends else info.extends, {})[key] = value
    return sections


def default_method_config(method: str, **settings) -> dict:
    """A method's settings as its jobs get them, `settings` over the schema's defaults (for code that
    runs a method outside a validated run: tests, benchmarks)."""
    from vitalstudy.config import section_defaults

    return method_config(section_defaults("generate", sectioned(method, settings)), method)
