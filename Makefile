# tfc: the two commands a new user needs are `make demo` and `make test`.
SWIFT ?= swift
BUILD_FLAGS ?= -c release
TFC = .build/release/tfc
DEMO_DIR = .build/demo

.PHONY: setup build demo test experiment clean

# Installs the system packages tfc needs (Debian): LLVM 14's C API and OpenBLAS.
setup:
	@./scripts/setup.sh

build: setup
	$(SWIFT) build $(BUILD_FLAGS) --product tfc

# Checks, initialises and runs the bundled tiny model: the fused backend, the naive oracle, generation;
# then text in, text out with the GPT-NeoX tokenizer (specs/tiny-neox.tfs, untrained: random words).
demo: build
	@mkdir -p $(DEMO_DIR)
	$(TFC) check specs/tiny.tfs
	$(TFC) init specs/tiny.tfs -o $(DEMO_DIR)/tiny.safetensors --seed 1
	$(TFC) run specs/tiny.tfs --weights $(DEMO_DIR)/tiny.safetensors --tokens 1,2,3,4,5,6,7,8
	$(TFC) run specs/tiny.tfs --weights $(DEMO_DIR)/tiny.safetensors --tokens 1,2,3,4,5,6,7,8 --backend naive
	$(TFC) generate specs/tiny.tfs --weights $(DEMO_DIR)/tiny.safetensors --tokens 1,2,3 -n 16 --temperature 0.8 --top-k 40 --seed 1
	$(TFC) init specs/tiny-neox.tfs -o $(DEMO_DIR)/tiny-neox.safetensors --seed 1
	$(TFC) generate specs/tiny-neox.tfs --weights $(DEMO_DIR)/tiny-neox.safetensors --prompt "Once upon a time" -n 32 --temperature 0.8 --top-k 40 --seed 1

# Builds and runs every test: the Swift suites (which drive the NumPy reference) and the
# reference's own tests.
test: setup
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build
	python3 -m pytest -q Tests/reference

# The growth experiment (docs/experiments.md; ~15-30 min on 2 cores, not part of `make test`):
# A trained, grown x4 three ways and trained on, versus B from scratch, on the fortunes corpus.
# Resumable: rerunning skips finished runs. Writes docs/experiments/growth.{json,svg} and growth-table.md.
EXPERIMENT_DIR = .build/experiment
experiment: build
	./scripts/experiment-corpus.sh $(EXPERIMENT_DIR)/corpus
	$(TFC) experiment growth specs/experiments/growth.json --data $(EXPERIMENT_DIR)/corpus/train.txt \
		--eval-data $(EXPERIMENT_DIR)/corpus/valid.txt --out $(EXPERIMENT_DIR)/growth --results docs/experiments

clean:
	rm -rf .build
