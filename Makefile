# maintenance-operator: `make help` lists the targets.
SHELL := /bin/bash
CARGO ?= cargo
E2E := e2e/scripts

.PHONY: help
help: ## Show this help
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  %-14s %s\n", $$1, $$2}'

.PHONY: build
build: ## Build the operator and the kubectl plugin (kubectl-maintenance)
	$(CARGO) build --locked -p maintenance-operator -p kubectl-maintenance

.PHONY: run
run: ## Run the operator from the checkout against the current kubeconfig (the CRD installed: make install-crd)
	$(CARGO) run --locked -p maintenance-operator -- run $(RUN_ARGS)

.PHONY: install-crd
install-crd: ## Install the CRD into the cluster of the current kubeconfig (what make run needs)
	kubectl apply --server-side -f crds/maintenanceupgrades.yaml

.PHONY: crds
crds: build ## Regenerate crds/ from the Rust types
	./target/debug/maintenance-operator crd > crds/maintenanceupgrades.yaml

.PHONY: manifests
manifests: cluster-binaries ## Render config/default into dist/install.yaml and the Helm chart's templates
	$(E2E)/render-manifests.sh

.PHONY: manifests-check
manifests-check: cluster-binaries ## Fail when dist/install.yaml or the Helm chart is stale
	$(E2E)/render-manifests.sh --check

.PHONY: unit
unit: ## Unit tests: the pure decision core, windows, detector, CRD freshness, the plugin's plans
	$(CARGO) test --locked -p maintenance-operator -p kubectl-maintenance
	$(CARGO) test --locked -p e2e --lib

.PHONY: fmt
fmt: ## Format the Rust code (110 columns, rustfmt.toml)
	$(CARGO) fmt --all

.PHONY: lint
lint: image-check versions-check ## Formatting and clippy, warnings as errors (what CI runs first)
	$(CARGO) fmt --all --check
	$(CARGO) clippy --locked --all-targets -- -D warnings

.PHONY: image
image: ## The OCI image, built with buildah without a daemon: dist/maintenance-operator-<version>.oci.tar
	image/build.sh

.PHONY: release-test
release-test: cluster-binaries ## make bump, tried in a copy of the tree: every place follows
	release/versions_test.sh

.PHONY: monitoring-test
monitoring-test: cluster-binaries ## The alerts unit-tested with promtool; the chart renders config/monitoring exactly
	config/monitoring/promtool-test.sh

.PHONY: docs
docs: ## Build the book (docs/ into target/book) and check its links and anchors, offline
	docs/build.sh

.PHONY: reference
reference: ## Regenerate docs/src/reference from the code (CRD schema, clap, metrics, Helm values)
	MO_WRITE_REFERENCE=1 $(CARGO) test --locked -q -p maintenance-operator -p kubectl-maintenance reference

.PHONY: supply-chain
supply-chain: ## Licenses, bans, sources and RustSec advisories of every crate, offline (cargo deny, deny.toml)
	release/supply-chain.sh

.PHONY: versions-check
versions-check: ## Every place a release names its version says the operator's (Cargo, chart, image, krew)
	release/versions.sh --check

.PHONY: bump
bump: ## Move every version to VERSION=X.Y.Z (Cargo, chart, image, krew), render, open it in CHANGELOG.md
	release/versions.sh $(VERSION)

.PHONY: image-check
image-check: ## The Dockerfile's runtime stage is image/Containerfile's; every install path names that image
	image/check.sh

.PHONY: cluster-binaries
cluster-binaries: ## Build etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, kwok (cached in ~/.cache)
	$(E2E)/build-binaries.sh

.PHONY: e2e
e2e: build cluster-binaries image ## End-to-end scenarios on a real local control plane (E2E_ARGS filters them)
	$(E2E)/run-e2e.sh $(E2E)/scenarios.sh $(E2E_ARGS)

# What depends on the API server's release: CEL in the CRD and the admission policies, the
# install and its RBAC, each kind's canary (the upstream controllers' own behaviour).
OLDEST_SCENARIOS := s01_ s06_ s10_ s13_ s17_ s19_ s20_ s21_ s22_

.PHONY: e2e-oldest
e2e-oldest: build ## The scenarios that depend on the API server's release, on the oldest Kubernetes supported
	E2E_KUBERNETES=oldest $(E2E)/build-binaries.sh >/dev/null
	E2E_KUBERNETES=oldest $(E2E)/run-e2e.sh $(E2E)/scenarios.sh $(OLDEST_SCENARIOS)

.PHONY: test
test: lint manifests-check supply-chain release-test monitoring-test unit docs e2e e2e-oldest ## Lint, generated files, the book, unit and end-to-end tests (what CI runs)

.PHONY: robustness
robustness: build cluster-binaries ## Upgrades under a seeded fault schedule, checked against the audit log (ROBUSTNESS_ARGS="--seeds 1-10 --faults 20")
	$(E2E)/run-e2e.sh $(CARGO) run --locked -q -p e2e --bin robustness -- $(ROBUSTNESS_ARGS)

.PHONY: demo
demo: build cluster-binaries ## Replay the incident on a local cluster: slow regression, detected, reverted
	$(E2E)/run-e2e.sh $(CARGO) run --locked -q -p e2e --bin demo

.PHONY: bench-detect
bench-detect: ## Benchmark the detector against Argo/Flagger/Kayenta-style rules (writes bench/)
	$(CARGO) run --locked --release -p maintenance-operator --example bench_detect -- --out bench

.PHONY: bench-detect-floors
bench-detect-floors: ## Measure, on seeds 1-16 (never the report seeds), the minimum effect each history length supports
	$(CARGO) run --locked --release -p maintenance-operator --example bench_detect -- --calibrate-floors

.PHONY: bench-detect-grid
bench-detect-grid: ## Try other thresholds and caps, each at its own measured 7-day floor (writes bench/grid.md)
	$(CARGO) run --locked --release -p maintenance-operator --example bench_detect -- --out bench --grid

.PHONY: bench-detect-incident
bench-detect-incident: ## The incident's shape replayed with 200 other noise seeds, none tuned on (writes bench/incident-seeds.md)
	$(CARGO) run --locked --release -p maintenance-operator --example bench_detect -- --out bench --incident-seeds 1-200

.PHONY: bench-detect-control
bench-detect-control: ## Try a concurrent control (canary vs the other nodes) on canary soaks (writes bench/control.md)
	$(CARGO) run --locked --release -p maintenance-operator --example bench_detect -- --out bench --control-experiment

.PHONY: bench-detect-canary
bench-detect-canary: ## The same on a canary of 2 of 20 nodes (10 % of the attempts; writes bench/control-share-10.md)
	$(CARGO) run --locked --release -p maintenance-operator --example bench_detect -- --out bench --control-experiment --canary-share 0.1

.PHONY: bench-detect-canary-sizes
bench-detect-canary-sizes: ## The same on canaries of 4, 5 and 6 of 20 nodes (writes bench/control-share-{20,25,30}.md)
	for share in 0.2 0.25 0.3; do \
	  $(CARGO) run --locked --release -q -p maintenance-operator --example bench_detect -- --out bench --control-experiment --canary-share $$share || exit 1; \
	done

.PHONY: bench-detect-canary-floors
bench-detect-canary-floors: ## Measure, on seeds 1-16, the floors of a canary's signal at its control's level and how busy a canary must be not to be warned of (reach::BUSY_ENOUGH; writes bench/canary-floors.md)
	$(CARGO) run --locked --release -p maintenance-operator --example bench_detect -- --out bench --calibrate-canary-floors

.PHONY: bench-detect-check
bench-detect-check: ## The benchmark again on seeds 17-24 and 25-32, never tuned on either (writes bench/seeds-*/)
	$(CARGO) run --locked --release -p maintenance-operator --example bench_detect -- --seeds 17-24 --out bench/seeds-17-24
	$(CARGO) run --locked --release -p maintenance-operator --example bench_detect -- --seeds 25-32 --out bench/seeds-25-32

.PHONY: bench-detect-canary-check
bench-detect-canary-check: ## The 2-of-20-node canary benchmark again on seeds 17-24 and 25-32, never tuned on (writes bench/seeds-*/control-share-10.md)
	for seeds in 17-24 25-32; do \
	  $(CARGO) run --locked --release -q -p maintenance-operator --example bench_detect -- --control-experiment --canary-share 0.1 --seeds $$seeds --out bench/seeds-$$seeds || exit 1; \
	done

.PHONY: bench-detect-ramp
bench-detect-ramp: ## Try a drift-aware test (a GLR over ramps) beside the CUSUM (writes bench/ramp.md)
	$(CARGO) run --locked --release -p maintenance-operator --example bench_detect -- --out bench --ramp-experiment

.PHONY: bench-detect-ladder
bench-detect-ladder: ## Where a ramp's delay goes, from the clairvoyant bound to the CUSUM (writes bench/ladder.md)
	$(CARGO) run --locked --release -p maintenance-operator --example bench_detect -- --out bench --bound-ladder

.PHONY: bench-scale
bench-scale: cluster-binaries ## Fleet scale on a local cluster: reconcile time, RSS, CPU, API load (a benchmark)
	$(CARGO) build --locked --release -p maintenance-operator
	$(E2E)/run-e2e.sh $(CARGO) run --locked -q -p e2e --bin bench_scale

.PHONY: bench-memory
bench-memory: cluster-binaries ## The operator's memory when a tenant fills her namespace with the largest objects it watches (a benchmark)
	$(CARGO) build --locked --release -p maintenance-operator
	$(E2E)/run-e2e.sh $(CARGO) run --locked -q -p e2e --bin bench_memory

.PHONY: krew
krew: ## The kubectl plugin's archive for linux/amd64 and its krew manifest (dist/)
	$(E2E)/krew.sh

.PHONY: replay-incident
replay-incident: build ## Replay the incident trace: when would the operator have rolled back?
	./target/debug/maintenance-operator replay --trace bench/incident-2022-10-18.csv \
	  --change-at 2022-10-19T02:56:00Z --plot bench/incident.svg

.PHONY: cluster-up
cluster-up: cluster-binaries ## Start a local cluster by hand (prints the env to export)
	$(E2E)/cluster-up.sh

.PHONY: cluster-down
cluster-down: ## Stop the local cluster started by cluster-up
	$(E2E)/cluster-down.sh
