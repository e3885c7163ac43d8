# Makefile: builds libcanopy, the three daemons and the test tools; runs tests and fuzzers.
# Plain GNU make with pkg-config. `make SANITIZE=1 ...` builds with ASan+UBSan in build-san/.

SANITIZE ?= 0
ifeq ($(SANITIZE),1)
BUILD ?= build-san
SANFLAGS := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
OPT := -O1 -g
else
BUILD ?= build
SANFLAGS :=
OPT := -O2 -g
endif

CC ?= cc
CLANG ?= clang
PYTHON ?= /usr/bin/python3
PKGS := glib-2.0 libwebsockets openssl libcjson expat libargon2 nice libsrtp2
# The edge also records and analyses video (FFmpeg), keeps its index in SQLite and talks
# to analytics workers over nanomsg.
EDGE_PKGS := libavformat libavcodec libavutil libswscale sqlite3 nanomsg
# Central keeps its state in PostgreSQL and delivers webhooks with libcurl (multi interface).
CENTRAL_PKGS := libpq libcurl
TESTCAM_PKGS := gstreamer-rtsp-server-1.0 gstreamer-1.0 gstreamer-video-1.0
COMMIT := $(shell git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)

# Lazily expanded so `make deps`/`make test` can install packages before pkg-config runs.
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) $(EDGE_PKGS) $(CENTRAL_PKGS))
PKG_LIBS = $(shell pkg-config --libs $(PKGS)) -lm -lpthread
EDGE_LIBS = $(shell pkg-config --libs $(EDGE_PKGS))
CENTRAL_LIBS = $(shell pkg-config --libs $(CENTRAL_PKGS))
WARN := -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wvla -Wstrict-prototypes -Wmissing-prototypes
CFLAGS ?=
CFLAGS += -std=c11 -D_GNU_SOURCE $(OPT) $(WARN) $(SANFLAGS) -MMD -MP \
	-DCANOPY_COMMIT='"$(COMMIT)"' -Ishared $(PKG_CFLAGS)
LDFLAGS += $(SANFLAGS)

SHARED_SRC := $(wildcard shared/*.c)
SHARED_OBJ := $(SHARED_SRC:%.c=$(BUILD)/obj/%.o)
LIB := $(BUILD)/lib/libcanopy.a
BINS := $(BUILD)/bin/canopy-edge $(BUILD)/bin/canopy-relay $(BUILD)/bin/canopy-central
# The test camera is never sanitized (GStreamer is not ours to leak-check): always build/bin.
TESTCAM := build/bin/canopy-testcam
UNIT_SRC := $(wildcard tests/unit/*.c)
UNIT_OBJ := $(UNIT_SRC:%.c=$(BUILD)/obj/%.o)
UNIT_BIN := $(BUILD)/tests/unit-tests

FUZZ_BUILD := build/fuzz
FUZZ_NAMES := $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BINS := $(FUZZ_NAMES:%=$(FUZZ_BUILD)/fuzz_%)
FUZZ_FLAGS := -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer -g -O1
FUZZ_SHARED_OBJ := $(SHARED_SRC:%.c=$(FUZZ_BUILD)/obj/%.o)
FUZZ_SECONDS ?= 60

.PHONY: all deps test test-all test-unit test-integration checksrc fuzz fuzz-replay \
	fuzz-smoke bench bench-central bench-whep bench-alarms demo clean

CODEC := $(BUILD)/bin/canopy-codec
UPLINK_LOAD := $(BUILD)/bin/canopy-uplink-load

all: $(LIB) $(BINS) $(TESTCAM) $(CODEC) $(UPLINK_LOAD)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(LIB): $(SHARED_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@
	ar rcs $@ $^

EDGE_SRC := $(wildcard edge-agent/*.c)
EDGE_OBJ := $(EDGE_SRC:%.c=$(BUILD)/obj/%.o)
# Edge objects other than main, linked into the unit tests too (pure parts like motion).
EDGE_LIB_OBJ := $(filter-out $(BUILD)/obj/edge-agent/edge_main.o,$(EDGE_OBJ))
$(BUILD)/bin/canopy-edge: $(EDGE_OBJ) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) $(EDGE_LIBS)

CENTRAL_SRC := $(wildcard central/*.c)
# The SQL migrations are compiled in, so a central binary always carries its own schema.
CENTRAL_GEN := $(BUILD)/gen/central_migrations.c
# Central checks camera configuration with the edge's own parser (a pure codec).
CENTRAL_OBJ := $(CENTRAL_SRC:%.c=$(BUILD)/obj/%.o) $(BUILD)/obj/gen/central_migrations.o \
	$(BUILD)/obj/edge-agent/edge_camcfg.o
CENTRAL_LIB_OBJ := $(filter-out $(BUILD)/obj/central/central_main.o \
	$(BUILD)/obj/edge-agent/edge_camcfg.o,$(CENTRAL_OBJ))
$(CENTRAL_SRC:%.c=$(BUILD)/obj/%.o): CFLAGS += -Iedge-agent
$(CENTRAL_GEN): $(sort $(wildcard schemas/central/*.sql)) deploy/embed-sql.sh
	@mkdir -p $(dir $@)
	deploy/embed-sql.sh $(sort $(wildcard schemas/central/*.sql)) > $@.tmp && mv $@.tmp $@
$(BUILD)/obj/gen/central_migrations.o: $(CENTRAL_GEN)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Icentral -c $< -o $@
$(BUILD)/bin/canopy-central: $(CENTRAL_OBJ) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) $(CENTRAL_LIBS)

$(BUILD)/bin/canopy-relay: $(BUILD)/obj/relay/relay_main.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)

# The test camera is a test tool, not part of the product; built the same strict way.
$(TESTCAM): tests/tools/testcam.c
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -D_GNU_SOURCE -O2 -g $(WARN) -o $@ $< \
		$(shell pkg-config --cflags --libs $(TESTCAM_PKGS))

# Command-line door to the codecs, for cross-checks with independent implementations.
$(CODEC): $(BUILD)/obj/tests/tools/codec.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)

# Simulated node fleet for the central benchmark (the real uplink client, N times).
$(UPLINK_LOAD): $(BUILD)/obj/tests/tools/uplink_load.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)

$(UNIT_BIN): $(UNIT_OBJ) $(EDGE_LIB_OBJ) $(CENTRAL_LIB_OBJ) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) $(EDGE_LIBS) $(CENTRAL_LIBS)

deps:
	deploy/install-deps.sh

# Installs what is missing, then builds and runs every part; ends with "N passed, N failed".
test:
	@deploy/install-deps.sh --if-missing
	@$(MAKE) --no-print-directory all $(UNIT_BIN) fuzz
	@tests/run-all.sh $(BUILD)

test-unit: $(UNIT_BIN)
	$(UNIT_BIN)

test-integration: all
	cd tests/integration && CANOPY_BIN_DIR=$(CURDIR)/$(BUILD)/bin $(PYTHON) -m pytest -q $(PYTEST_ARGS)

checksrc:
	@tests/checksrc.sh

fuzz: $(FUZZ_BINS)

$(FUZZ_BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CLANG) -std=c11 -D_GNU_SOURCE $(WARN) $(FUZZ_FLAGS) -Ishared -Iedge-agent $(PKG_CFLAGS) \
		-DCANOPY_COMMIT='"fuzz"' -c $< -o $@

$(FUZZ_BUILD)/fuzz_%: $(FUZZ_BUILD)/obj/tests/fuzz/fuzz_%.o $(FUZZ_SHARED_OBJ)
	$(CLANG) -fsanitize=fuzzer,address,undefined -o $@ $^ $(PKG_LIBS)

# The edge's cameras document parser (pushed by central) lives with the edge.
$(FUZZ_BUILD)/fuzz_camcfg: $(FUZZ_BUILD)/obj/tests/fuzz/fuzz_camcfg.o \
		$(FUZZ_BUILD)/obj/edge-agent/edge_camcfg.o $(FUZZ_SHARED_OBJ)
	$(CLANG) -fsanitize=fuzzer,address,undefined -o $@ $^ $(PKG_LIBS)

# Replays each seed corpus once (regression check, seconds).
fuzz-replay: fuzz
	@for n in $(FUZZ_NAMES); do \
		$(FUZZ_BUILD)/fuzz_$$n -runs=0 -artifact_prefix=$(FUZZ_BUILD)/ tests/fuzz/corpus/$$n >/dev/null 2>$(FUZZ_BUILD)/$$n.replay.log \
			&& echo "ok fuzz replay $$n" || { echo "FAIL fuzz replay $$n"; tail -20 $(FUZZ_BUILD)/$$n.replay.log; exit 1; }; \
	done

# Runs each harness for FUZZ_SECONDS on a scratch copy of its corpus; findings are kept
# in build/fuzz/findings-NAME for turning into regression seeds.
fuzz-smoke: fuzz
	@for n in $(FUZZ_NAMES); do \
		rm -rf $(FUZZ_BUILD)/work-$$n; mkdir -p $(FUZZ_BUILD)/work-$$n $(FUZZ_BUILD)/findings-$$n; \
		echo "fuzzing $$n for $(FUZZ_SECONDS) s"; \
		$(FUZZ_BUILD)/fuzz_$$n -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
			-artifact_prefix=$(FUZZ_BUILD)/findings-$$n/ $(FUZZ_BUILD)/work-$$n tests/fuzz/corpus/$$n \
			2>$(FUZZ_BUILD)/$$n.smoke.log || { tail -40 $(FUZZ_BUILD)/$$n.smoke.log; exit 1; }; \
		grep -E 'stat::number_of_executed_units|Done' $(FUZZ_BUILD)/$$n.smoke.log | tail -2; \
	done

# Keep fuzz objects between runs (they are otherwise intermediate files make deletes).
.SECONDARY:

# Benchmarks: ours beside a peer measured in the same run (docs/benchmarks.md).
bench: all
	$(PYTHON) tests/bench/bench_recording.py $(BENCH_ARGS)
	$(PYTHON) tests/bench/bench_central.py $(BENCH_CENTRAL_ARGS)
	$(PYTHON) tests/bench/bench_whep.py $(BENCH_WHEP_ARGS)
	$(PYTHON) tests/bench/bench_alarms.py $(BENCH_ALARMS_ARGS)

bench-whep: all
	$(PYTHON) tests/bench/bench_whep.py $(BENCH_WHEP_ARGS)

bench-central: all
	$(PYTHON) tests/bench/bench_central.py $(BENCH_CENTRAL_ARGS)

bench-alarms: all
	$(PYTHON) tests/bench/bench_alarms.py $(BENCH_ALARMS_ARGS)

demo:
	@echo "make demo: not yet available (the one-command local system lands with the demo issue)"
	@exit 1

clean:
	rm -rf build build-san

-include $(SHARED_OBJ:.o=.d) $(UNIT_OBJ:.o=.d) $(BUILD)/obj/tests/tools/codec.d \
	$(BUILD)/obj/tests/tools/uplink_load.d $(EDGE_OBJ:.o=.d) \
	$(BUILD)/obj/relay/relay_main.d $(CENTRAL_OBJ:.o=.d)
