"""What the Snakemake rules need, computed from the validated config: every job list, input
function, output list and parameter. The rule files only declare rules and call this.

`WorkflowPlan(config)` is built once per workflow (workflow/rules/common.smk) and can be built
in a test from any config without Snakemake. Input functions take Snakemake's `wildcards` (any
object with the wildcard names as attributes). Jobs are declared as records (`ReferenceJob`,
`GenerationJob`, `CircuitJob`) and indexed by the targets or FV files they write, so a later
stage maps a target's references or an FV it reads to the job that writes it by lookup.
Reference selection and generation run batches of targets per job: a paper-scale DAG has
hundreds of jobs where one per target would be thousands (Snakemake plans each job).
"""

from __future__ import annotations

import json
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

from vitalstudy.data.classes import classes_for
from vitalstudy.errors import VitalStudyError
from vitalstudy.fv.registry import get_method
from vitalstudy.fv.settings import job_settings, runs_kind
from vitalstudy.layout import RunLayout, run_root
from vitalstudy.models.registry import get_spec
from vitalstudy.targets import class_targets, concept_targets, neuron_targets, parse_target

METRIC_TABLES = (1, 2, 3, 5)
METRIC_FILES = ("accuracy", "predictions", "clip", "fid", "cosy", "path_similarity", "tsne")
GRID_KINDS = {"classes": "class", "neurons": "neuron"}  # figure_grid's {kind} -> the target kind it shows
FIGURE_CATEGORY = "6. Figures"
# Study figures per section type: one named after each Likert section, one per other type present.
STUDY_FIGURES = {"likert_word": None, "likert_references": None, "free_label": "free_label", "two_afc": "two_afc",
                 "demographics": "demographics"}


class PlanError(VitalStudyError):
    """A config whose plan cannot be built (a later stage reads a file no job writes)."""


@dataclass(frozen=True)
class ReferenceJob:
    """One reference-selection job: (model, batch of targets), and the record it writes."""

    model: str
    batch: str  # 3-digit position among the model's jobs
    targets: tuple[str, ...]
    record: str


@dataclass(frozen=True)
class GenerationJob:
    """One generation job: (model, method, seed, batch of targets), and the record it writes."""

    model: str
    method: str
    seed: int
    batch: str  # 3-digit position among the (model, method, seed) jobs
    targets: tuple[str, ...]
    record: str


@dataclass(frozen=True)
class CircuitJob:
    """The generation job of one circuit's channels (known once the circuit checkpoint ran)."""

    model: str
    method: str
    seed: int
    wnid: str
    record: str


def model_job_gpus(config: dict) -> int:
    """GPUs a job that runs a model declares: from the config (`device`, `cluster.gpus_per_job`),
    never from whether the host that builds the DAG has one (a cluster's login node has none)."""
    return 0 if config["device"] == "cpu" else int(config["cluster"]["gpus_per_job"])


def model_job_threads(gpus_per_job: int, cores: int | None, gpus_available: int | None) -> int:
    """A model job on the CPU takes every core; with GPUs the cores are shared by the model jobs
    that run at once (`--resources gpu=N` / gpus_per_job of them)."""
    cores = cores or 1
    if not gpus_per_job or not gpus_available:
        return cores
    return max(1, cores // max(1, gpus_available // gpus_per_job))


def global_resource(workflow, name: str):
    """A global resource as given to Snakemake (--cores, --resources gpu=N), None when not given
    (reading `workflow.cores` instead fails without --cores, e.g. for `snakemake --report`)."""
    value = workflow.global_resources.get(name)
    return getattr(value, "value", value)


def cli_command() -> str:
    """How a rule calls the CLI: through the interpreter that runs Snakemake, so that the
    virtualenv need not be on PATH (also inside a cluster job)."""
    return f"{shlex.quote(sys.executable)} -m vitalstudy"


def _unique(items) -> list:
    return list(dict.fromkeys(items))


def _note(text: str) -> None:
    print(f"note: {text}", file=sys.stderr)


class WorkflowPlan:
    """The plan of one run (see the module docstring).

    `cores`, `gpus`: Snakemake's cores and `gpu` resource (model jobs share the cores among the GPUs);
    `report`: Snakemake's `report` flag (identity outside Snakemake); `circuit_file(model, wnid)`:
    the circuits checkpoint's output once it ran (Snakemake's `checkpoints.circuits.get`).
    """

    def __init__(self, config: dict, cores: int | None = 1, gpus: int | None = None, report=None, circuit_file=None,
                 spec_root: str | Path = "study"):
        self.config = config
        self.run = str(run_root(config))
        self.layout = RunLayout(self.run)
        self.models = list(config["models"]["targets"])
        self.gpu = model_job_gpus(config)
        self.model_threads = model_job_threads(self.gpu, cores, gpus)
        cluster = config["cluster"]
        # Resources of the two kinds of job; slurm_partition is read by the SLURM executor only.
        self.model_resources = {"gpu": self.gpu,
                                "slurm_partition": cluster["gpu_partition" if self.gpu else "cpu_partition"]}
        self.cpu_resources = {"slurm_partition": cluster["cpu_partition"]}
        self.cli = cli_command()
        self.study_ids = list(config["study"]["studies"])
        self.spec_root = Path(spec_root)
        self._report = report or (lambda path, **_: path)
        self._circuit_file = circuit_file
        self.reference_jobs = self._reference_jobs()
        self._reference_batches = {(j.model, j.batch): j for j in self.reference_jobs}
        self._reference_writer = {(j.model, t): j.record for j in self.reference_jobs for t in j.targets}
        self.generation_jobs = self._generation_jobs()
        self._jobs = {(j.model, j.method, str(j.seed), j.batch): j for j in self.generation_jobs}
        self._writer = {(j.model, j.method, j.seed, t): j.record for j in self.generation_jobs for t in j.targets}
        self.circuit_jobs = self._circuit_jobs()
        grid_seed = config["figures"]["grid"]["seed"]
        self.grid_seed = config["generate"]["seeds"][0] if grid_seed is None else grid_seed

    # -- shared --------------------------------------------------------------------------------

    def stage_config(self, *sections, **narrowed) -> str:
        """The config keys a stage reads, as JSON for its command line; as a rule's params they make
        Snakemake re-run exactly the jobs whose settings changed. `narrowed` replaces a section by the
        part of it a job reads."""
        keys = ("seed", "device") + sections
        values = {k: self.config[k] for k in keys if k in self.config} | narrowed
        values["concepts"] = self.config["targets"].get("concepts", [])  # concept ids are defined there
        return json.dumps(values, sort_keys=True)

    def models_of(self, model: str) -> dict:
        """The config's models section narrowed to one model (its declaration, weight file and the
        file's sha256): a job that loads that model alone re-runs when they change, and only then."""
        models = self.config["models"]
        return {key: {model: models[key][model]} if model in models.get(key, {}) else {}
                for key in ("declare", "weights", "assets")}

    def stage_section(self, section: str) -> str:
        """One config section as JSON (a command's option)."""
        return json.dumps(self.config[section], sort_keys=True)

    def index_images(self) -> str:
        """The `images` section for the index, plus `labels_files` ({file: sha256}) when a model's
        outputs are not ImageNet-1k's: their ids name image classes too, and a changed file re-indexes."""
        images = dict(self.config["images"])
        labels = {get_spec(m).classes: self.config["models"]["assets"].get(m, {}).get(get_spec(m).classes)
                  for m in self.models if get_spec(m).classes}
        if labels:
            images["labels_files"] = labels
        return json.dumps(images, sort_keys=True)

    def targets_by_kind(self, model: str) -> dict[str, list[str]]:
        return {"class": class_targets(self.config, model), "neuron": neuron_targets(self.config, model),
                "concept": concept_targets(self.config, model)}

    def targets_of(self, model: str) -> list[str]:
        return [t for targets in self.targets_by_kind(model).values() for t in targets]

    def report(self, path, **labels):
        return self._report(str(path), **labels)

    def path(self, path) -> str:
        return str(path)

    # -- stage 1: references -------------------------------------------------------------------

    def _reference_jobs(self) -> list[ReferenceJob]:
        """Each model's targets (and the classes and neurons its accentuations read), in jobs of
        references.targets_per_job: one process reads the index once for all of them."""
        from vitalstudy.fv.accentuation_plan import reference_targets

        size = self.config["references"]["targets_per_job"]
        jobs = []
        for model in self.models:
            targets = _unique(self.targets_of(model) + reference_targets(self.config, model))
            for b, start in enumerate(range(0, len(targets), size)):
                batch = f"{b:03d}"
                jobs.append(ReferenceJob(model, batch, tuple(targets[start:start + size]),
                                         str(self.layout.references.job_record(model, batch))))
        return jobs

    def _reference_settings(self) -> dict:
        """The references section less how targets are grouped into jobs: a new grouping re-runs the
        selection jobs it changes, never patch scoring, the circuits or the metrics."""
        return {k: v for k, v in self.config["references"].items() if k != "targets_per_job"}

    def references_config(self, wildcards) -> str:
        """A stage-1 job's settings: the reference settings and its own model's entries."""
        return self.stage_config(references=self._reference_settings(), models=self.models_of(wildcards.model))

    def reference_records(self, model: str, targets, consumer: str) -> list[str]:
        """The selection job records that write the references of `targets` of `model`; a target no
        job selects stops the workflow with a line saying what to configure."""
        records = set()
        for target in targets:
            record = self._reference_writer.get((model, target))
            if record is None:
                raise PlanError(f"{consumer} needs the references of {model}/{target}, which no reference-selection "
                                f"job selects: add the target to targets")
            records.add(record)
        return sorted(records)

    def references_outputs(self) -> list[str]:
        return [j.record for j in self.reference_jobs]

    def selection_targets(self, wildcards) -> list[str]:
        """The targets of a selection job: a batch's, or a circuit's channels (`wnid` wildcard)."""
        if hasattr(wildcards, "wnid"):
            return self.circuit_targets(wildcards.model, wildcards.wnid)
        return list(self._reference_batches[(wildcards.model, wildcards.batch)].targets)

    def selection_targets_arg(self, wildcards) -> str:
        return " ".join(self.selection_targets(wildcards))

    def _layer_patch_scores(self, wildcards) -> dict[str, str]:
        """Inner-neuron targets (`<layer>_c<channel>`) need their layer's patch scores."""
        concepts, classes = self.config["targets"]["concepts"], classes_for(wildcards.model)
        parsed = (parse_target(t, concepts, classes=classes) for t in self.selection_targets(wildcards))
        layers = _unique(t.layer for t in parsed if t.kind == "neuron")
        return {layer: str(self.layout.references.patch_scores(wildcards.model, layer)) for layer in layers}

    def patch_scores(self, wildcards) -> list[str]:
        return list(self._layer_patch_scores(wildcards).values())

    def patch_scores_option(self, wildcards) -> str:
        files = self._layer_patch_scores(wildcards)
        return "--patch-scores " + " ".join(shlex.quote(f"{k}={v}") for k, v in files.items()) if files else ""

    def _reference_inputs(self, paths, consumer: str) -> list[str]:
        """Files a later stage reads, each target's references JSON or montage replaced by the
        record of the job that selects it (other files unchanged)."""
        root, found = self.layout.references.root, []
        for path in paths:
            file = Path(path)
            if file.parent.parent == root and file.suffix in (".json", ".png"):
                found += self.reference_records(file.parent.name, [file.stem], consumer)
            else:
                found.append(path)
        return _unique(found)

    def circuit_references(self, wildcards) -> list[str]:
        """The circuits checkpoint reads its class's references."""
        return self.reference_records(wildcards.model, [wildcards.wnid], f"circuit {wildcards.wnid}")

    def circuit_references_file(self, wildcards) -> str:
        return str(self.layout.references.json(wildcards.model, wildcards.wnid))

    def circuit_targets(self, model: str, wnid: str) -> list[str]:
        """The circuit's channel targets, known once its checkpoint has run."""
        with open(self._circuit_file(model, wnid)) as handle:
            return [channel["target"] for channel in json.load(handle)["channels"]]

    # -- stage 2: generation -------------------------------------------------------------------

    def _generation_jobs(self) -> list[GenerationJob]:
        """Jobs for the configured methods, skipping the (model, method) pairs the method cannot
        serve (with a note); a method's targets are the kinds it runs (fv.settings.method_kinds)."""
        gen = self.config["generate"]
        jobs = []
        for model in self.models:
            for method in gen["methods"]:
                info = get_method(method)
                reason = info.unavailable_on(get_spec(model))
                if reason:
                    _note(f"{method} skipped for {model}: {reason}")
                    continue
                targets = [t for kind, of_kind in self.targets_by_kind(model).items() if runs_kind(gen, method, kind)
                           for t in of_kind]
                size = gen["targets_per_job"]
                for seed in gen["seeds"]:
                    for b, start in enumerate(range(0, len(targets), size)):
                        batch = f"{b:03d}"
                        jobs.append(GenerationJob(model, method, seed, batch, tuple(targets[start:start + size]),
                                                  str(self.layout.fv.job_record(model, method, seed, batch))))
        return jobs

    def _circuit_jobs(self) -> list[CircuitJob]:
        """One job per (model, method running inner neurons, seed, circuit), on models with faithful LRP."""
        circuits, gen = self.config["targets"]["circuits"], self.config["generate"]
        jobs = []
        for model in self.models:
            relevance = get_spec(model).relevance
            if relevance.composite is None:
                if circuits:
                    _note(f"circuits skipped for {model}: {relevance.reason}")
                continue
            jobs += [CircuitJob(model, m, s, w, str(self.layout.fv.circuit_record(model, m, s, w)))
                     for m in gen["methods"] if runs_kind(gen, m, "neuron") for s in gen["seeds"] for w in circuits]
        return jobs

    def job_targets(self, wildcards) -> list[str]:
        return list(self._jobs[(wildcards.model, wildcards.method, wildcards.seed, wildcards.batch)].targets)

    def job_targets_arg(self, wildcards) -> str:
        return " ".join(self.job_targets(wildcards))

    def circuit_job_targets(self, wildcards) -> list[str]:
        return self.circuit_targets(wildcards.model, wildcards.wnid)

    def circuit_job_targets_arg(self, wildcards) -> str:
        return " ".join(self.circuit_job_targets(wildcards))

    def generation_config(self, wildcards) -> str:
        """A generation job's settings: only what its method reads, so that changing one method's
        settings re-runs that method's jobs alone."""
        return self.stage_config(generate=job_settings(self.config["generate"], wildcards.method),
                                 models=self.models_of(wildcards.model))

    def maco_size(self, model: str) -> int:
        return self.config["generate"]["maco"]["resolution"] or get_spec(model).input_size

    def _method_inputs(self, model: str, method: str, targets: list[str]) -> list[str]:
        """What a generation job reads: the targets' references (VITAL) or its method's asset."""
        info = get_method(method)
        if info.reads_references:
            return self.reference_records(model, targets, f"{method} generation")
        if info.asset == "maco_spectrum":
            return [str(self.layout.fv.maco_spectrum(self.maco_size(model)))]
        return []

    def generation_inputs(self, wildcards) -> list[str]:
        return self._method_inputs(wildcards.model, wildcards.method, self.job_targets(wildcards))

    def circuit_generation_inputs(self, wildcards) -> list[str]:
        """As a generation job's, but a circuit's channel references come from the circuit's own
        selection job (its targets are known only once the circuit checkpoint ran)."""
        if get_method(wildcards.method).reads_references:
            return [str(self.layout.references.circuit_job_record(wildcards.model, wildcards.wnid))]
        return self._method_inputs(wildcards.model, wildcards.method, self.circuit_job_targets(wildcards))

    def generation_outputs(self) -> list[str]:
        return [j.record for j in self.generation_jobs] + [j.record for j in self.circuit_jobs]

    def fv_records(self, fvs, consumer: str) -> list[str]:
        """The generation job records that write the FVs `(model, method, target, seed)` a later stage
        reads; an FV no configured job writes stops the workflow with a line saying what to configure."""
        records = set()
        for model, method, target, seed in fvs:
            record = self._writer.get((model, method, int(seed), target))
            if record is None:
                raise PlanError(f"{consumer} needs {model}/{method}/{target} seed {seed}, which no generation job "
                                f"produces: add the method to generate.methods, the seed to generate.seeds or the "
                                f"target to targets")
            records.add(record)
        return sorted(records)

    # -- stage 3: metrics ----------------------------------------------------------------------

    def metrics_config(self) -> str:
        return self.stage_config("run", "models", "targets", "generate", "metrics", references=self._reference_settings())

    def metrics_fv_records(self, wildcards) -> list[str]:
        """The job records that write every FV (PNG + sidecar) the metrics of {model} read."""
        from vitalstudy.metrics.images import planned_images

        model = wildcards.model
        keys = planned_images(self.config["generate"], get_spec(model), class_targets(self.config, model),
                              neuron_targets(self.config, model))
        return self.fv_records([(model, k.method, k.target, k.seed) for k in keys], "metrics")

    def neuron_references(self, wildcards) -> list[str]:
        """Control images of the AUC/MAD metric: the stage-1 references of each inner neuron."""
        return self.reference_records(wildcards.model, neuron_targets(self.config, wildcards.model), "metrics")

    def metrics_measure_outputs(self) -> dict:
        metrics = self.layout.metrics
        files = {name: str(metrics.measure("{model}", name)) for name in METRIC_FILES if name != "tsne"}
        files["tsne"] = self.report(metrics.measure("{model}", "tsne"), caption="../report/metrics_tsne.rst",
                                    category="3. Metrics", labels={"model": "{model}", "table": "t-SNE"})
        files["provenance"] = str(metrics.measure_provenance("{model}"))
        return files

    def metrics_tables_inputs(self) -> list[str]:
        return [str(self.layout.metrics.measure(m, name)) for name in ("accuracy", "clip", "fid", "cosy",
                                                                        "path_similarity") for m in self.models]

    def metrics_tables_outputs(self) -> dict:
        metrics = self.layout.metrics
        return {
            "long": str(metrics.long),
            "tables": [self.report(metrics.table(k), caption="../report/metrics_tables.rst", category="3. Metrics",
                                   labels={"model": "all", "table": f"Table {k}"}) for k in METRIC_TABLES],
            "renderings": [str(metrics.table(k, ext)) for k in METRIC_TABLES for ext in ("md", "tex")],
            "provenance": str(metrics.tables_provenance),
        }

    def metrics_outputs(self) -> list[str]:
        """The stage's final files, for `rule all`: the tables (which need every metric) and the t-SNE coordinates."""
        tables = self.metrics_tables_outputs()
        return [tables["long"], *tables["tables"], *tables["renderings"],
                *(str(self.layout.metrics.measure(m, "tsne")) for m in self.models)]

    # -- stage 4: study forms ------------------------------------------------------------------

    def spec_path(self, study) -> str:
        return str(self.spec_root / str(study) / "study.yaml")

    def study_spec(self, wildcards) -> str:
        return self.spec_path(wildcards.study)

    def study_files(self, wildcards) -> list[str]:
        """The run files a study's forms read: the job records of its FVs, then its other files."""
        from vitalstudy.study.forms import study_fvs, study_inputs

        spec = self.spec_path(wildcards.study)
        fvs = study_fvs(spec)
        images = {str(self.layout.fv.png(*fv)) for fv in fvs}
        files = self._reference_inputs([p for p in study_inputs(spec, self.run) if p not in images],
                                       f"study {wildcards.study}")
        return self.fv_records(fvs, f"study {wildcards.study}") + files

    def study_models(self, wildcards) -> str:
        """The models section a study's scorer (2AFC) reads: its declaration, weight file and sha256."""
        from vitalstudy.study.spec import load_spec

        return json.dumps(self.models_of(load_spec(self.spec_path(wildcards.study)).model), sort_keys=True)

    def study_forms_outputs(self) -> list[str]:
        return [str(self.layout.study.manifest(s)) for s in self.study_ids]

    # -- stage 5: responses --------------------------------------------------------------------

    def held_out_options(self, wildcards) -> str:
        """models.held_out and its weight file from models.weights, as options (none when held_out is null:
        the command then says that simulated participants need one)."""
        name = self.config["models"].get("held_out")
        if not name:
            return ""
        option = f"--held-out-model {shlex.quote(name)}"
        path = self.config["models"].get("weights", {}).get(name)
        return f"{option} --held-out-weights {shlex.quote(path)}" if path else option

    def held_out_models(self, wildcards) -> str:
        """The models section the held-out judge reads (its declaration, weight file, sha256)."""
        name = self.config["models"].get("held_out")
        return json.dumps(self.models_of(name) if name else {}, sort_keys=True)

    def raw_responses(self, wildcards) -> list[str]:
        """Every raw export of the study (none yet is fine: a demo runs on simulated participants only)."""
        return self._raw_responses(wildcards.study)

    def _raw_responses(self, study: str) -> list[str]:
        from vitalstudy.study.exports import discover

        folder = self.spec_root / study / "responses"
        return [str(f.path) for f in discover([folder], simulated=False)] if folder.is_dir() else []

    def studies_with_answers(self) -> list[str]:
        """The studies whose figures can be drawn: those with raw exports or simulated participants.
        A study still collecting gets its forms and an (empty) validation report, no figures yet."""
        if self.config["study"]["simulate"]["participants"]:
            return list(self.study_ids)
        return [s for s in self.study_ids if self._raw_responses(s)]

    def print_notices(self) -> None:
        for notice in self.notices():
            _note(notice)

    def notices(self) -> list[str]:
        """What the plan leaves out and why, for the person starting the workflow."""
        answered = self.studies_with_answers()  # one look at each study's responses folder
        waiting = [s for s in self.study_ids if s not in answered]
        return [f"study {s}: no responses yet under {self.spec_root / s / 'responses'} and study.simulate."
                f"participants is 0: its forms and validation report are built, its figures once answers "
                f"arrive" for s in waiting]

    def simulated_export(self, wildcards) -> list[str]:
        if not self.config["study"]["simulate"]["participants"]:
            return []
        return [str(self.layout.responses.simulated(wildcards.study, "google_forms_export.csv"))]

    def encoder_handle_option(self, wildcards) -> str:
        handle = self.config["study"]["text_encoder"]["handle"]
        return f"--handle {shlex.quote(handle)}" if handle else ""

    def responses_outputs(self) -> list[str]:
        """Stage 5's targets for `rule all`: each study's scores and validation report."""
        responses = self.layout.responses
        return [str(responses.file(s, name)) for s in self.study_ids
                for name in ("text_similarity.csv", "validation_report.json")]

    # -- stage 6: figures ----------------------------------------------------------------------

    def figure_outputs(self, owner, name, caption, questions=False, table="stats", table_caption=None) -> dict:
        """Output files of one `vitalstudy figures` call: figure(s) and table in the report."""
        prefix = str(self.layout.figures.prefix(owner, name))
        files = {
            "png": self.report(f"{prefix}.png", caption=f"../report/figure_{caption}.rst", category=FIGURE_CATEGORY,
                               subcategory=owner, labels={"figure": name, "view": "summary"}),
            "pdf": f"{prefix}.pdf",
            "table": self.report(f"{prefix}_{table}.csv", caption=f"../report/{table_caption or 'table_' + table}.rst",
                                 category=FIGURE_CATEGORY, subcategory=owner,
                                 labels={"figure": name, "view": f"{table} table"}),
            "provenance": str(self.layout.figures.prefix(owner, "_provenance") / f"{name}.json"),
        }
        if questions:
            files["questions_png"] = self.report(f"{prefix}_questions.png",
                                                 caption=f"../report/figure_{caption}_questions.rst",
                                                 category=FIGURE_CATEGORY, subcategory=owner,
                                                 labels={"figure": name, "view": "per question"})
            files["questions_pdf"] = f"{prefix}_questions.pdf"
        return files

    def figure_prefix(self, owner, name) -> str:
        return str(self.layout.figures.prefix(owner, name))

    def study_figure_inputs(self) -> dict:
        return {"manifest": str(self.layout.study.manifest("{study}")),
                "answer_key": str(self.layout.study.answer_key("{study}")),
                "responses": str(self.layout.responses.file("{study}", "responses.csv"))}

    def grid_methods(self, kind: str) -> list[str]:
        """The grid's rows: the configured methods that run its kind of target ("classes", "neurons")."""
        gen = self.config["generate"]
        return [m for m in gen["methods"] if runs_kind(gen, m, GRID_KINDS[kind])]

    def grid_methods_arg(self, wildcards) -> str:
        return " ".join(self.grid_methods(wildcards.kind))

    def grid_targets(self, model: str, kind: str) -> list[str]:
        return class_targets(self.config, model) if kind == "classes" else neuron_targets(self.config, model)

    def grid_targets_arg(self, wildcards) -> str:
        return " ".join(self.grid_targets(wildcards.model, wildcards.kind))

    def grid_images(self, wildcards) -> list[str]:
        """Generation job records of every image the grid shows (so the grid waits for them). A
        (method, target) no job plans (DeepInversion on a ViT) is an empty cell."""
        model = wildcards.model
        fvs = [(model, m, t, self.grid_seed) for m in self.grid_methods(wildcards.kind)
               for t in self.grid_targets(model, wildcards.kind) if (model, m, self.grid_seed, t) in self._writer]
        return self.fv_records(fvs, f"figure grid_{wildcards.kind}")

    def _grid_circuits(self, model: str) -> list[CircuitJob]:
        return [j for j in self.circuit_jobs if j.model == model and j.seed == self.grid_seed]

    def circuit_files(self, wildcards) -> list[str]:
        """The circuits of `model` that the circuit figure shows (as the generation rules plan them)."""
        jobs = self._grid_circuits(wildcards.model)
        return [str(self.layout.references.circuit(wildcards.model, w)) for w in _unique(j.wnid for j in jobs)]

    def circuit_records(self, wildcards) -> list[str]:
        return [j.record for j in self._grid_circuits(wildcards.model)]

    def circuit_methods_arg(self, wildcards) -> str:
        return " ".join(_unique(j.method for j in self._grid_circuits(wildcards.model)))

    def study_figure_prefixes(self, study: str) -> list[str]:
        """One figure per Likert section (named by its section id), one per other section type present."""
        from vitalstudy.study.spec import load_spec

        names = _unique(STUDY_FIGURES[s.type] or s.section_id for s in load_spec(self.spec_path(study)).sections)
        return [self.figure_prefix(study, name) for name in names]

    def figures_outputs(self) -> list[str]:
        """Stage 6's final files for `rule all`: every figure PNG and its table."""
        tables = {p: "stats" for s in self.studies_with_answers() for p in self.study_figure_prefixes(s)}
        for model in self.models:
            if "metrics" in self.config:
                tables[self.figure_prefix(model, "tsne")] = "stats"
            for kind in ("classes", "neurons"):
                if self.grid_targets(model, kind):
                    tables[self.figure_prefix(model, f"grid_{kind}")] = "data"
            if self._grid_circuits(model):
                tables[self.figure_prefix(model, "circuits")] = "data"
        return [f for prefix, table in tables.items() for f in (f"{prefix}.png", f"{prefix}_{table}.csv")]

    # -- feature accentuations and the fooling test (planned by fv.accentuation_plan) ---------

    def _accentuation_jobs(self) -> dict:
        from vitalstudy.fv import accentuation_plan

        return {(m, meth, str(s)): t for m, meth, s, t in accentuation_plan.accentuation_jobs(self.config, self.models)}

    def accentuation_references(self, wildcards) -> list[str]:
        from vitalstudy.fv import accentuation_plan

        return self._reference_inputs(
            accentuation_plan.reference_inputs(self.run, self.config, wildcards.model, wildcards.method),
            "accentuation")

    def accentuation_config(self, wildcards) -> str:
        from vitalstudy.fv import accentuation_plan

        return accentuation_plan.generation_stage_config(self.config, wildcards.method)

    def accentuation_targets_arg(self, wildcards) -> str:
        return " ".join(self._accentuation_jobs()[(wildcards.model, wildcards.method, wildcards.seed)])

    def accentuation_records(self, wildcards) -> list[str]:
        from vitalstudy.fv import accentuation_plan

        return [accentuation_plan.job_record(self.run, m, meth, s) for (m, meth, s) in self._accentuation_jobs()
                if m == wildcards.model]

    def accentuation_metrics_references(self, wildcards) -> list[str]:
        from vitalstudy.fv import accentuation_plan

        return self.reference_records(wildcards.model, accentuation_plan.reference_targets(self.config, wildcards.model),
                                      "accentuation metrics")

    def accentuation_metrics_config(self) -> str:
        from vitalstudy.fv import accentuation_plan

        return accentuation_plan.metrics_stage_config(self.config)

    def accentuation_methods_arg(self) -> str:
        from vitalstudy.fv import accentuation_plan

        return " ".join(accentuation_plan.accentuation_methods(self.config))

    def seeds_arg(self) -> str:
        return " ".join(str(s) for s in self.config["generate"]["seeds"])

    def fooling_config(self) -> str:
        return json.dumps(self.config, sort_keys=True, default=str)

    def accentuation_outputs(self) -> list[str]:
        models = _unique(m for m, _, _ in self._accentuation_jobs())
        outputs = [str(self.layout.figures.prefix(m, "accentuations.png")) for m in models]
        if self.config.get("fooling", {}).get("enabled"):
            outputs.append(str(self.layout.root / "fooling" / self.config["fooling"]["model"] / "fooling.png"))
        return outputs

    # -- the whole run -------------------------------------------------------------------------

    def all_outputs(self) -> list[str]:
        return (self.references_outputs() + self.generation_outputs() + self.metrics_outputs()
                + self.study_forms_outputs() + self.responses_outputs() + self.figures_outputs()
                + self.accentuation_outputs())


__all__ = ["CircuitJob", "GenerationJob", "PlanError", "ReferenceJob", "WorkflowPlan", "global_resource", "model_job_gpus"]
