# Two commands matter: `make demo` (the main job) and `make test` (all tests). Each installs what it needs
# into .venv on first run and reuses it afterwards.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

DEMO_DATA := data/demo
DEMO_RUN := runs/demo

.PHONY: demo test install clean-demo reference ablations

$(STAMP): requirements.txt pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "stanet needs Python 3.11, found " + sys.version.split()[0]'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt
	$(BIN)/pip install --quiet --no-deps -e .
	@touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest

# The main job: synthetic data -> a short training run -> evaluation with figures.
demo: $(STAMP)
	@test -f $(DEMO_DATA)/annotations.jsonl || $(BIN)/stanet data synth --out $(DEMO_DATA) --train 480 --val 64 --test 96 --num-frames 24 --difficulty easy
	rm -rf $(DEMO_RUN)
	$(BIN)/stanet train --preset demo --data $(DEMO_DATA) --out $(DEMO_RUN)
	$(BIN)/stanet evaluate --checkpoint $(DEMO_RUN)/best.pt --data $(DEMO_DATA) --split test \
		--output $(DEMO_RUN)/metrics.json --figures $(DEMO_RUN)/figures

# The reference benchmark of docs/benchmark.md (about 20 minutes on 2 cores).
reference: $(STAMP)
	@test -f data/synthetic/annotations.jsonl || $(BIN)/stanet data synth --out data/synthetic
	$(BIN)/stanet train --preset synthetic --data data/synthetic --out runs/synthetic
	$(BIN)/stanet evaluate --checkpoint runs/synthetic/best.pt --data data/synthetic --split test \
		--output runs/synthetic/metrics.json --figures runs/synthetic/figures

clean-demo:
	rm -rf $(DEMO_DATA) $(DEMO_RUN)

# The ablation table of docs/benchmark.md: each variant trained for ABLATION_MINUTES on the reference data.
ABLATION_MINUTES ?= 10
# The synthetic preset trains without regularizers (docs/benchmark.md); `full` adds the paper's regularizers
# (plus the mask-area and temporal-entropy priors) at the weights measured there.
ABLATIONS := full no_regularizers no_spatial no_temporal convlstm_first
ablation_full := --set train.loss.total_variation=0.05 --set train.loss.contrast=0.1 --set train.loss.unimodality=0.1 --set train.loss.mask_area=0.1 --set train.loss.temporal_entropy=0.3
ablation_no_regularizers :=
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
