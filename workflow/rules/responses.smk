# Stage 5: simulated participants (optional), ingestion of the raw exports, free-text scoring.
# Raw responses live under study/<study>/responses/ and are only read; simulated exports are
# results, under results/<run>/05_responses/<study>/simulated/. Reads config keys run,
# models.held_out, study.studies, study.simulate.{participants,seed},
# study.text_encoder.{backend,handle}, study.salt_env (their defaults: the config schema).


rule simulate_responses:
    input:
        manifest=PATHS.study.manifest("{study}"),
        answer_key=PATHS.study.answer_key("{study}"),
    output:
        export=PATHS.responses.simulated("{study}", "google_forms_export.csv"),
        judgements=PATHS.responses.simulated("{study}", "judgements.csv"),
        provenance=PATHS.responses.simulated("{study}", "_provenance/simulate.json"),
    params:
        participants=config["study"]["simulate"]["participants"],
        seed=config["study"]["simulate"]["seed"],
        held_out=PLAN.held_out_options,
        models=PLAN.held_out_models,
    resources:
        **PLAN.cpu_resources,
    log:
        PATHS.log("simulate_responses", "{study}"),
    shell:
        "{VITALSTUDY} responses simulate --manifest {input.manifest:q} --answer-key {input.answer_key:q} "
        "--participants {params.participants} --seed {params.seed} {params.held_out} --models {params.models:q} "
        "--out {output.export:q} --judgements-out {output.judgements:q} --provenance {output.provenance:q} "
        "> {log:q} 2>&1"


rule ingest_responses:
    input:
        manifest=PATHS.study.manifest("{study}"),
        codebook=PATHS.study.codebook("{study}"),
        answer_key=PATHS.study.answer_key("{study}"),
        raw=PLAN.raw_responses,
        simulated=PLAN.simulated_export,
    output:
        responses=PATHS.responses.file("{study}", "responses.csv"),
        quarantine=PATHS.responses.file("{study}", "quarantine.csv"),
        exclusions=PATHS.responses.file("{study}", "exclusions.csv"),
        report=PATHS.responses.file("{study}", "validation_report.json"),
        provenance=PATHS.responses.provenance("{study}", "ingest"),
    params:
        out=str(PATHS.responses.study_dir("{study}")),
        salt_env=config["study"]["salt_env"],
    resources:
        **PLAN.cpu_resources,
    log:
        PATHS.log("ingest_responses", "{study}"),
    shell:
        "{VITALSTUDY} responses ingest --manifest {input.manifest:q} --codebook {input.codebook:q} "
        "--answer-key {input.answer_key:q} --inputs {input.raw:q} --simulated {input.simulated:q} "
        "--out {params.out:q} --salt-env {params.salt_env:q} --provenance {output.provenance:q} > {log:q} 2>&1"


rule score_responses:
    input:
        responses=rules.ingest_responses.output.responses,
        answer_key=PATHS.study.answer_key("{study}"),
    output:
        scores=PATHS.responses.file("{study}", "text_similarity.csv"),
        provenance=PATHS.responses.provenance("{study}", "score"),
    params:
        backend=config["study"]["text_encoder"]["backend"],
        handle=PLAN.encoder_handle_option,
        cache=str(PATHS.responses.embeddings_cache),
    resources:
        **PLAN.cpu_resources,
    log:
        PATHS.log("score_responses", "{study}"),
    shell:
        "{VITALSTUDY} responses score --responses {input.responses:q} --answer-key {input.answer_key:q} "
        "--backend {params.backend} {params.handle} --cache {params.cache:q} --out {output.scores:q} "
        "--provenance {output.provenance:q} > {log:q} 2>&1"
