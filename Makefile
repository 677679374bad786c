# gitgate: make example runs the main job on the bundled example; make test runs every test.
GO      ?= go
BIN     := bin/gitgate
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)

.PHONY: all build release example test lint unit bundle fuzz integration deploy-check bench bench-webhook clean

all: build

build:
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/gitgate

# The release binary: paths trimmed (a separate build cache from the test builds).
release:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/gitgate

# The main job on the bundled example: check testdata/gitops, a seed-shaped repository
# (ApplicationSet, kustomize overlays, a Helm chart, Tekton tasks), rendered and gated with
# the built-in policies. Exit 1 (enforced violations: planted on purpose) is the expected
# result; only exit 2 (could not check) fails the target.
example: build
	@echo '$$ gitgate check testdata/gitops'
	@./$(BIN) check testdata/gitops; rc=$$?; \
	  echo "exit code $$rc (0 clean, 1 enforced violations, 2 could not check)"; test $$rc -le 1

# Every test: formatting, vet, unit and end-to-end tests (the fuzz targets' seed corpora
# and testdata/fuzz inputs run there as ordinary tests), the bundle's kyverno tests through
# the CLI, the tests against a real API server, and our own install manifests through our
# own policies. Real fuzzing is `make fuzz`: it rebuilds every dependency with coverage
# instrumentation (~35 minutes cold on 2 cores), so it is not part of `make test`.
test: lint unit bundle integration deploy-check

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

# Test binaries are linked without DWARF (-w): a quarter less link time on each of the
# big test binaries, and stack traces need none.
TESTFLAGS ?= -count=1 -ldflags=-w

unit:
	$(GO) test $(TESTFLAGS) ./...

bundle: build
	./$(BIN) test policies

# Bounded fuzzing (FUZZTIME each, default 15s) of the manifest decoder and the webhook handler.
FUZZTIME ?= 15s
fuzz:
	$(GO) test ./policy -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZTIME)
	$(GO) test ./admission -run '^$$' -fuzz '^FuzzHandler$$' -fuzztime $(FUZZTIME)

# Tests against a real kube-apiserver + etcd (envtest), built from the Go module proxy and
# cached by hack/envtest.sh (about 6 minutes the first time after the unit tests, whose
# compiled packages it shares; seconds after). Packages with
# //go:build integration tests go in INTEGRATION_PKGS.
INTEGRATION_PKGS ?= ./admission/... ./reconcile/...
# cmd/gitgate's own envtest tests, by name: its unit tests already ran in `unit`.
CMD_INTEGRATION ?= ^TestReportCacheEnvtest$$
integration:
	@assets=$$(hack/envtest.sh) && \
	  echo "KUBEBUILDER_ASSETS=$$assets $(GO) test $(TESTFLAGS) -tags integration $(INTEGRATION_PKGS)" && \
	  $(GO) vet -tags integration $(INTEGRATION_PKGS) && \
	  KUBEBUILDER_ASSETS=$$assets $(GO) test $(TESTFLAGS) -tags integration $(INTEGRATION_PKGS) && \
	  $(GO) vet -tags integration ./cmd/gitgate/ && \
	  KUBEBUILDER_ASSETS=$$assets $(GO) test $(TESTFLAGS) -tags integration -run '$(CMD_INTEGRATION)' ./cmd/gitgate/

# deploy/ must pass our own built-in policies (deploy/.gitgate.yaml names its registry).
deploy-check: build
	./$(BIN) check deploy/

# The performance comparison with Kyverno's CLI (see hack/bench/README.md).
bench:
	hack/bench/check.sh

# The webhook under load on 127.0.0.1 (see hack/bench/webhook.sh).
bench-webhook:
	hack/bench/webhook.sh

clean:
	rm -rf bin
