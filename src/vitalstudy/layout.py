"""The one path layout of a run (docs/contracts.md): `results/<run>/<stage folder>/...`.

Each stage has a small layout rooted at its folder (`RunLayout(run).fv` is `<run>/02_fv`), and
every writer and reader of a stage's files — its command, later stages' commands, the workflow's
rules — builds paths here. Arguments may be Snakemake wildcards (`"{model}"`), so the rules'
output patterns and the concrete paths a job writes are the same expression.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

FV_KINDS = ("png", "alpha", "json")  # the files of one FV: image, transparency, sidecar


def run_root(config: dict) -> Path:
    """`results/<run>`: where a config's run writes (relative to the working directory)."""
    return Path("results") / config["run"]


@dataclass(frozen=True)
class IndexLayout:
    """Stage 0: the run's image index."""

    root: Path

    @property
    def images(self) -> Path:
        return self.root / "images.csv"

    @property
    def skipped(self) -> Path:
        return self.root / "skipped.csv"

    @property
    def provenance(self) -> Path:
        return self.root / "provenance.json"


@dataclass(frozen=True)
class ReferencesLayout:
    """Stage 1: each target's reference images, patch scores of inner-neuron layers, circuits."""

    root: Path

    def model_dir(self, model) -> Path:
        return self.root / str(model)

    def json(self, model, target) -> Path:
        return self.model_dir(model) / f"{target}.json"

    def montage(self, model, target) -> Path:
        return self.model_dir(model) / f"{target}.png"

    def provenance(self, model, target) -> Path:
        return self.model_dir(model) / "_provenance" / f"{target}.json"

    def patch_scores(self, model, layer) -> Path:
        return self.model_dir(model) / "_patch_scores" / f"{layer}.npz"

    def circuit(self, model, wnid) -> Path:
        return self.model_dir(model) / "_circuits" / f"{wnid}.json"

    def job_record(self, model, batch) -> Path:
        """The record of a selection job (`batch`: 3 digits, the job's place among the model's jobs)."""
        return self.model_dir(model) / "_jobs" / f"b{batch}.json"

    def circuit_job_record(self, model, wnid) -> Path:
        """The record of the job selecting the references of a circuit's channels."""
        return self.model_dir(model) / "_jobs" / f"circuit-{wnid}.json"


@dataclass(frozen=True)
class FVLayout:
    """Stage 2: `<model>/<method>/<target>/seed<k>.{png,json}` + `_alpha.png`, and job records."""

    root: Path

    def files(self, model, method, target, seed) -> dict[str, Path]:
        base = self.root / str(model) / str(method) / str(target)
        return {"png": base / f"seed{seed}.png", "alpha": base / f"seed{seed}_alpha.png",
                "json": base / f"seed{seed}.json"}

    def png(self, model, method, target, seed) -> Path:
        return self.files(model, method, target, seed)["png"]

    def sidecar(self, model, method, target, seed) -> Path:
        return self.files(model, method, target, seed)["json"]

    def jobs_dir(self, model, method) -> Path:
        return self.root / str(model) / str(method) / "_jobs"

    def job_record(self, model, method, seed, batch) -> Path:
        """The record of a batch job (`batch`: a 3-digit number, the job's place in its list)."""
        return self.jobs_dir(model, method) / f"seed{seed}-b{batch}.json"

    def circuit_record(self, model, method, seed, wnid) -> Path:
        return self.jobs_dir(model, method) / f"seed{seed}-circuit-{wnid}.json"

    def work(self, model, method) -> Path:
        """Checkpoints of batches in progress."""
        return self.root / str(model) / str(method) / "_work"

    def prototypes(self, model) -> Path:
        """VITAL's cached reference statistics."""
        return self.root / str(model) / "_prototypes"

    @property
    def batch_size_record(self) -> Path:
        """The batch size each (model, method) of the run uses (fv/bench.py)."""
        return self.root / "_batch_size.json"

    def maco_spectrum(self, size) -> Path:
        return self.root / "_assets" / f"maco_spectrum_{size}.npz"

    def maco_spectrum_provenance(self, size) -> Path:
        return self.root / "_assets" / "_provenance" / f"maco_spectrum_{size}.json"


@dataclass(frozen=True)
class MetricsLayout:
    """Stage 3: per-model metric files and the run's tables."""

    root: Path

    def model_dir(self, model) -> Path:
        return self.root / str(model)

    def measure(self, model, name) -> Path:
        return self.model_dir(model) / f"{name}.csv"

    def measure_provenance(self, model) -> Path:
        return self.model_dir(model) / "_provenance" / "measure.json"

    @property
    def long(self) -> Path:
        return self.root / "metrics.csv"

    @property
    def tables_dir(self) -> Path:
        return self.root / "tables"

    def table(self, number, ext="csv") -> Path:
        return self.tables_dir / f"table{number}.{ext}"

    @property
    def tables_provenance(self) -> Path:
        return self.root / "_provenance" / "tables.json"


@dataclass(frozen=True)
class StudyLayout:
    """Stage 4: a study's forms bundle and its private answer key."""

    root: Path

    def study_dir(self, study) -> Path:
        return self.root / str(study)

    def manifest(self, study) -> Path:
        return self.study_dir(study) / "forms" / "manifest.json"

    def codebook(self, study) -> Path:
        return self.study_dir(study) / "forms" / "codebook.csv"

    def apps_script(self, study) -> Path:
        return self.study_dir(study) / "forms" / "google_form.gs"

    def answer_key(self, study) -> Path:
        return self.study_dir(study) / "private" / "answer_key.json"


@dataclass(frozen=True)
class ResponsesLayout:
    """Stage 5: ingested responses, simulated participants' exports, text-similarity scores."""

    root: Path

    def study_dir(self, study) -> Path:
        return self.root / str(study)

    def simulated(self, study, name) -> Path:
        return self.study_dir(study) / "simulated" / name

    def file(self, study, name) -> Path:
        return self.study_dir(study) / name

    def provenance(self, study, name) -> Path:
        return self.study_dir(study) / "_provenance" / f"{name}.json"

    @property
    def embeddings_cache(self) -> Path:
        return self.root / "_cache" / "embeddings.sqlite"


@dataclass(frozen=True)
class FiguresLayout:
    """Stage 6: `<study or model>/<name>.{png,pdf}` + a table, provenance in `_provenance/<name>.json`."""

    root: Path

    def prefix(self, owner, name) -> Path:
        return self.root / str(owner) / str(name)


@dataclass(frozen=True)
class RunLayout:
    """Every stage's layout under one run folder."""

    root: Path

    def __init__(self, root: str | Path):
        object.__setattr__(self, "root", Path(root))

    @property
    def index(self) -> IndexLayout:
        return IndexLayout(self.root / "00_index")

    @property
    def references(self) -> ReferencesLayout:
        return ReferencesLayout(self.root / "01_references")

    @property
    def fv(self) -> FVLayout:
        return FVLayout(self.root / "02_fv")

    @property
    def metrics(self) -> MetricsLayout:
        return MetricsLayout(self.root / "03_metrics")

    @property
    def study(self) -> StudyLayout:
        return StudyLayout(self.root / "04_study")

    @property
    def responses(self) -> ResponsesLayout:
        return ResponsesLayout(self.root / "05_responses")

    @property
    def figures(self) -> FiguresLayout:
        return FiguresLayout(self.root / "06_figures")

    def log(self, *parts) -> Path:
        """`logs/<parts...>.log`."""
        *folders, name = (str(p) for p in parts)
        return self.root.joinpath("logs", *folders, f"{name}.log")
