# Vigil — the two commands a new user needs are `make up` and `make test`.
GO      ?= go
BIN     := bin/vigil
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X github.com/vigil-cwpp/vigil/internal/version.Version=$(VERSION)
# Fuzz time per target for `make fuzz`.
FUZZTIME ?= 30s

.PHONY: build up test check unit bench fuzz clean

build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/vigil

# up builds vigil and runs its main job on this machine.
up: build
	bash scripts/up-prereqs.sh
	./$(BIN) up

# test installs what the tests need (Docker, debootstrap, fixtures) when it
# is missing, then checks formatting, vets and runs every test.
test:
	bash scripts/test-prereqs.sh
	$(MAKE) check
	$(GO) test -count=1 -timeout 30m ./...

check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

bench: build
	bash scripts/bench-sbom.sh
	bash scripts/bench-vuln.sh
	bash scripts/bench-agent.sh
	bash scripts/bench-rules.sh
	bash scripts/bench-server.sh
	bash scripts/bench-fim.sh
	bash scripts/bench-fim-realtime.sh
	$(GO) test -run '^$$' -bench . -benchmem ./internal/inventory ./internal/scan ./internal/vulnmatch ./internal/sensor \
		./internal/event ./internal/rules ./internal/profile ./internal/response ./internal/alert ./internal/agent \
		./internal/fim ./internal/drift ./internal/compliance/... ./internal/frameworks ./internal/console

fuzz:
	bash scripts/fuzz.sh $(FUZZTIME)

clean:
	rm -rf bin
