# streamjoin: `make dev` runs everything embedded, `make test` runs every test.
GO       ?= go
BIN      := bin/streamjoin
PKGS     := ./...

.PHONY: all build image dev test test-short bench chaos fuzz vet fmt postgres chromium clean

all: build

## build: the static binary in bin/streamjoin
build:
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN) ./cmd/streamjoin

## image: the OCI image of bin/streamjoin, built without a Docker daemon, in
## bin/streamjoin-image.tar (`docker load -i` or `crane push` it); the
## Dockerfile builds the same image with Docker
IMAGE_TAG ?= streamjoin:latest
image: build
	$(GO) run ./cmd/streamjoin-image --binary $(BIN) --out bin/streamjoin-image.tar --tag $(IMAGE_TAG)

## postgres: install PostgreSQL's server binaries if they are missing
postgres:
	@scripts/ensure-postgres.sh

## chromium: install Debian's chromium if /usr/bin/chromium is missing (the
## status page's browser test drives it headless)
chromium:
	@scripts/ensure-chromium.sh

## dev: embedded Kafka broker + private PostgreSQL + pipeline + API + sample data
dev: postgres build
	./$(BIN) dev --sample

## test: vet, every test (unit and integration, against kfake and a private
## PostgreSQL), the fuzz corpora, and each benchmark once so they keep working
test: postgres chromium vet
	$(GO) test -race -count=1 -timeout 15m $(PKGS)
	$(GO) test -count=1 -run '^$$' -bench . -benchtime 1x $(PKGS)

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet $(PKGS)

## bench: `streamjoin bench` (1M events, 3 runs, and a 5M-event memory run;
## pass BENCH_FLAGS to change the scale), then the hot-path microbenchmarks.
## Results land in bench-results/.
BENCH_FLAGS ?=
bench: postgres build
	@mkdir -p bench-results
	./$(BIN) bench --out bench-results $(BENCH_FLAGS)
	$(GO) test -count=1 -run '^$$' -bench . -benchmem $(PKGS) | tee bench-results/micro.txt

## chaos: the long failure tests (CHAOS_EVENTS events, CHAOS_KILLS SIGKILLs);
## each test appends its figures to bench-results/chaos.jsonl
CHAOS_EVENTS ?= 1000000
CHAOS_KILLS  ?= 50
chaos: postgres
	@mkdir -p bench-results && rm -f bench-results/chaos.jsonl
	$(GO) test -count=1 -timeout 90m ./internal/chaos -chaos.events $(CHAOS_EVENTS) -chaos.kills $(CHAOS_KILLS) -chaos.report $(CURDIR)/bench-results/chaos.jsonl
	@scripts/chaos-table.py bench-results/chaos.jsonl

## fuzz: run each fuzz target for FUZZTIME (default 30s)
FUZZTIME ?= 30s
fuzz:
	$(GO) test ./internal/event -run '^$$' -fuzz '^FuzzDecodeUser$$' -fuzztime $(FUZZTIME)
	$(GO) test ./internal/event -run '^$$' -fuzz '^FuzzDecodeOrg$$' -fuzztime $(FUZZTIME)
	$(GO) test ./internal/event -run '^$$' -fuzz '^FuzzFastJSONMatchesStd$$' -fuzztime $(FUZZTIME)
	$(GO) test ./internal/event -run '^$$' -fuzz '^FuzzSeedTimeMatchesParse$$' -fuzztime $(FUZZTIME)
	$(GO) test ./internal/api -run '^$$' -fuzz '^FuzzUsersPath$$' -fuzztime $(FUZZTIME)
	$(GO) test ./internal/api -run '^$$' -fuzz '^FuzzAppendProfilesMatchesEncodingJSON$$' -fuzztime $(FUZZTIME)

clean:
	rm -rf bin .streamjoin
