# Two commands matter: `make demo` (the main job) and `make test` (all tests). Each installs what it needs
# into .venv on first run and reuses it afterwards.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The embedded CPU Triton lives in its own environment (numpy<2; see requirements-triton.txt).
TRITON_VENV := .venv-triton
TRITON_STAMP := $(TRITON_VENV)/.installed

DEMO_DATA := data/demo
DEMO_RUN := runs/demo
DEMO_REPOSITORY := $(DEMO_RUN)/model_repository
DEMO_GRPC_PORT ?= 8001
DEMO_METRICS_PORT ?= 8002

.PHONY: demo test install triton-env monitoring-tools monitor soak bench bench-long clean-demo reference ablations \
	generalization generalization-table

$(STAMP): requirements.txt pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "stanet needs Python 3.11, found " + sys.version.split()[0]'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt
	$(BIN)/pip install --quiet --no-deps -e .
	@touch $(STAMP)

# tritonserver's python-backend stub links against libpython3.11.so: Debian's python3.11 ships it in the
# libpython3.11 package, a Python built with --enable-shared (pyenv, python.org) beside itself.
$(TRITON_STAMP): requirements-triton.txt
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "the embedded Triton needs Python 3.11, found " + sys.version.split()[0]'
	@test -x $(TRITON_VENV)/bin/python || $(PYTHON) -m venv $(TRITON_VENV)
	$(TRITON_VENV)/bin/pip install --quiet --upgrade pip
	$(TRITON_VENV)/bin/pip install --quiet --no-deps -r requirements-triton.txt
	@$(TRITON_VENV)/bin/python -c 'import glob, sys, sysconfig; d = sysconfig.get_config_var("LIBDIR"); sys.exit(not glob.glob(d + "/libpython3.11.so*") and not glob.glob("/usr/lib/*/libpython3.11.so*"))' \
		|| (apt-get update -qq && apt-get install -y -qq libpython3.11)
	@touch $(TRITON_STAMP)

install: $(STAMP)

triton-env: $(TRITON_STAMP)

# A real Prometheus (and promtool) for the monitoring tests and `make monitor`; docker-compose validates the
# compose file offline (no Docker engine is needed or started). Debian packages, installed when missing.
monitoring-tools:
	@command -v prometheus >/dev/null && command -v promtool >/dev/null \
		&& { command -v docker-compose >/dev/null || docker compose version >/dev/null 2>&1; } \
		|| { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus docker-compose; }

test: $(STAMP) $(TRITON_STAMP) monitoring-tools
	$(BIN)/python -m pytest

# The main job, the whole product path: synthetic data -> a short training run -> evaluation -> export for
# the embedded Triton -> `stanet serve` in the background -> `stanet infer` on held-out clips (labels and
# attention overlays) -> the server stopped.
demo: $(STAMP) $(TRITON_STAMP)
	@echo "== 1/5 data: synthetic actions benchmark (easy) in $(DEMO_DATA)"
	@test -f $(DEMO_DATA)/annotations.jsonl || $(BIN)/stanet data synth --out $(DEMO_DATA) --train 480 --val 64 --test 96 --num-frames 24 --difficulty easy
	rm -rf $(DEMO_RUN)
	@echo "== 2/5 train"
	$(BIN)/stanet train --preset demo --data $(DEMO_DATA) --out $(DEMO_RUN)
	@echo "== 3/5 evaluate on the test split"
	$(BIN)/stanet evaluate --checkpoint $(DEMO_RUN)/best.pt --data $(DEMO_DATA) --split test \
		--output $(DEMO_RUN)/metrics.json --figures $(DEMO_RUN)/figures
	@echo "== 4/5 export for the embedded Triton (python backend)"
	$(BIN)/stanet export --checkpoint $(DEMO_RUN)/best.pt --repository $(DEMO_REPOSITORY) --target python \
		--data $(DEMO_DATA)
	@echo "== 5/5 serve and infer on held-out clips"
	@$(BIN)/stanet serve --repository $(DEMO_REPOSITORY) --grpc-port $(DEMO_GRPC_PORT) \
		--metrics-port $(DEMO_METRICS_PORT) & server=$$!; \
	$(BIN)/stanet infer --url 127.0.0.1:$(DEMO_GRPC_PORT) --wait 180 --overlay $(DEMO_RUN)/overlays \
		$(DEMO_DATA)/videos/test/0000[0-9]_*.mp4; status=$$?; \
	kill -TERM $$server; wait $$server; exit $$status

# The reference benchmark of docs/benchmark.md (about 20 minutes on 2 cores).
reference: $(STAMP)
	@test -f data/synthetic/annotations.jsonl || $(BIN)/stanet data synth --out data/synthetic
	$(BIN)/stanet train --preset synthetic --data data/synthetic --out runs/synthetic
	$(BIN)/stanet evaluate --checkpoint runs/synthetic/best.pt --data data/synthetic --split test \
		--output runs/synthetic/metrics.json --figures runs/synthetic/figures

# The metrics flowing without Docker: the demo model on the embedded Triton, a real Prometheus with the
# project's scrape, recording and alert rules (http://127.0.0.1:9090), and `stanet load` driving traffic with
# its client latency histogram, for MONITOR_SECONDS or until Ctrl-C. Needs `make demo` first.
MONITOR_SECONDS ?= 600
MONITOR_DIR := runs/monitor
monitor: $(STAMP) $(TRITON_STAMP) monitoring-tools
	@test -f $(DEMO_REPOSITORY)/stanet/config.pbtxt || { echo "make monitor serves the demo model: run make demo first"; exit 2; }
	@mkdir -p $(MONITOR_DIR)
	@$(BIN)/stanet serve --repository $(DEMO_REPOSITORY) & serve=$$!; \
	prometheus --config.file=deploy/prometheus/prometheus-local.yml --storage.tsdb.path=$(MONITOR_DIR)/prometheus \
		--web.listen-address=127.0.0.1:9090 > $(MONITOR_DIR)/prometheus.log 2>&1 & prom=$$!; \
	trap 'kill -TERM $$serve $$prom 2>/dev/null; wait' EXIT INT TERM; \
	echo "Prometheus on http://127.0.0.1:9090 (log $(MONITOR_DIR)/prometheus.log): try stanet:latency_seconds:p99," \
		"stanet:client_latency_seconds:p99, stanet:queue_compute:ratio, ALERTS"; \
	$(BIN)/stanet load --wait 180 --duration $(MONITOR_SECONDS) $(DEMO_DATA)/videos/test/0000[0-7]_*.mp4

# Not in CI: the embedded Triton under a mixed load for SOAK_MINUTES; fails on an unexpected status code, a lost
# request, a restart or memory growth. Needs `make demo` first (its checkpoint, exported here afresh).
# The full mix by default: the clients reach Triton through the relay of `stanet serve` (serving/relay.py), which
# keeps their cancellations away from the embedded Triton 2.51's crashing gRPC path (upstream
# triton-inference-server/server#7368; `python -m serving.tools.cancel_race`). SOAK_FLAGS=--direct sends them to
# Triton's own port: a crash test, not a soak.
SOAK_MINUTES ?= 10
SOAK_LOADS ?= valid,invalid,deadline,cancel,killed
SOAK_FLAGS ?=
SOAK_DIR := runs/soak
soak: $(STAMP) $(TRITON_STAMP)
	@test -f $(DEMO_RUN)/best.pt || { echo "make soak serves the demo model: run make demo first"; exit 2; }
	rm -rf $(SOAK_DIR) && mkdir -p $(SOAK_DIR)
	$(BIN)/stanet export --checkpoint $(DEMO_RUN)/best.pt --repository $(SOAK_DIR)/model_repository --target python
	$(BIN)/python -m serving.tools.soak --repository $(SOAK_DIR)/model_repository --minutes $(SOAK_MINUTES) \
		--loads $(SOAK_LOADS) --output $(SOAK_DIR)/report.json $(SOAK_FLAGS)

# Serving performance (docs/benchmark.md): the demo model four ways side by side in one run (two Triton
# instances with one onnxruntime thread each, pinned to a core each: the layout bench.tune measured fastest for
# this small model; served up to 16 requests in flight, where two instances reach batches of about 5 against the
# in-process batch 8); writes runs/bench/<model>/report.json and latency_vs_throughput.png. Needs `make demo` first.
BENCH_SECONDS ?= 8
bench: $(STAMP) $(TRITON_STAMP)
	@test -f $(DEMO_RUN)/best.pt || { echo "make bench measures the demo model: run make demo first"; exit 2; }
	rm -rf runs/bench/demo
	$(BIN)/stanet bench --checkpoint $(DEMO_RUN)/best.pt --data $(DEMO_DATA) --output runs/bench/demo \
		--label "demo model (compact trunk, T=16, 32x32)" --seconds $(BENCH_SECONDS) --intra-op-threads 1 \
		--concurrency 1,2,4,8,16

# What a long video costs the client (docs/timeline.md, "Long videos"): writes a 1- and a 10-minute
# 1920x1080 30 fps file under runs/bench/long_video/videos (kept), serves the demo model and runs
# `stanet infer` and `stanet infer --timeline` on each, with their peak memory and time. Needs `make demo` first.
bench-long: $(STAMP) $(TRITON_STAMP)
	@test -f $(DEMO_RUN)/best.pt || { echo "make bench-long serves the demo model: run make demo first"; exit 2; }
	$(BIN)/python -m bench.long_video --checkpoint $(DEMO_RUN)/best.pt --output runs/bench/long_video

clean-demo:
	rm -rf $(DEMO_DATA) $(DEMO_RUN)

# The ablation table of docs/benchmark.md: each variant trained with the synthetic preset (at most
# ABLATION_MINUTES) on the reference data. `full` is the preset itself: the plain objective first, then the
# mask-area and total-variation regularizers from epoch 11.
ABLATION_MINUTES ?= 19
ABLATIONS := full no_regularizers no_spatial no_temporal convlstm_first
ablation_full :=
ablation_no_regularizers := --set train.loss.total_variation=0 --set train.loss.mask_area=0
ablation_no_spatial := --set model.spatial_attention=false
ablation_no_temporal := --set model.temporal_attention=none
ablation_convlstm_first := --set model.temporal_attention=convlstm_first

ablations: $(STAMP)
	@test -f data/synthetic/annotations.jsonl || $(BIN)/stanet data synth --out data/synthetic
	$(foreach name,$(ABLATIONS),rm -rf runs/ablations/$(name) && \
		$(BIN)/stanet train --preset synthetic --data data/synthetic --out runs/ablations/$(name) --quiet \
			--set train.max_minutes=$(ABLATION_MINUTES) $(ablation_$(name)) && \
		$(BIN)/stanet evaluate --checkpoint runs/ablations/$(name)/best.pt --data data/synthetic --quiet \
			--output runs/ablations/$(name)/metrics.json > /dev/null && ) true
	$(BIN)/python -m training.report $(addprefix runs/ablations/,$(ABLATIONS))

# The generalization suite of docs/benchmark.md (not in `make test`): each member's data generated once into
# data/generalization/NAME, then one recipe trained (at most 19 minutes each on 2 cores) and evaluated on each
# member's test split into runs/generalization/RECIPE_NAME/NAME, one member at a time; members already done are
# skipped (delete a member's folder to run it again), an interrupted one resumes. Prints one table with pass/fail.
#   make generalization RECIPE_NAME=synthetic RECIPE="--preset synthetic" [MEMBERS=flat_32,puppets_pan_80]
# With no RECIPE it is plain `stanet train`. `make generalization-table RECIPES="synthetic other"` prints
# several recipes' tables side by side.
RECIPE_NAME ?= default
RECIPE ?=
MEMBERS ?=
RECIPES ?= $(RECIPE_NAME)
generalization: $(STAMP)
	$(BIN)/python -m training.generalization run --recipe-name $(RECIPE_NAME) --recipe="$(RECIPE)" \
		$(if $(MEMBERS),--members $(MEMBERS))

generalization-table: $(STAMP)
	$(BIN)/python -m training.generalization table $(addprefix runs/generalization/,$(RECIPES)) \
		$(if $(MEMBERS),--members $(MEMBERS))
