# Sluice: one Makefile for the control plane, the data plane, and their tests.
#
#   make            build build/sluice-cp and build/sluice-dp
#   make deps       install the Debian 12 packages the build and tests need (only missing ones)
#   make test       deps + build + unit tests + integration tests + the ASan/UBSan suite
#   make run        the gateway on an embedded private PostgreSQL (see README)
#   make format     clang-format every C file
#   make fuzz       build the libFuzzer targets into build/fuzz/

BUILD    ?= build
CC       ?= cc
PYTHON   := /usr/bin/python3
LLHTTP   := /usr/share/llhttp
PKGS     := libpq libwebsockets libuv msgpack jansson libpcre2-8 openssl zlib yaml-0.1

DEB_PACKAGES := build-essential pkg-config clang clang-format libclang-rt-14-dev \
	libpq-dev libwebsockets-dev libwebsockets-evlib-uv libuv1-dev libssl-dev libmsgpack-dev \
	node-llhttp libjansson-dev libyaml-dev libpcre2-dev zlib1g-dev libcmocka-dev \
	postgresql postgresql-client python3 python3-pytest python3-requests python3-yaml \
	python3-msgpack python3-websocket python3-pytest-xdist curl openssl wrk nginx-light haproxy util-linux procps

PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lpthread -lm

OPT      ?= -O2
SAN      ?=
WARN     := -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter -Wformat=2 -Wvla
CFLAGS   := -std=c11 -D_GNU_SOURCE -g $(OPT) $(SAN) $(WARN) -I. -I/usr/share/include/llhttp $(PKG_CFLAGS)
LDFLAGS  := $(SAN)

PROTO_SRC := $(shell find proto -name '*.c' 2>/dev/null | sort)
CP_SRC    := $(filter-out control_plane/main.c,$(shell find control_plane -name '*.c' | sort))
DP_SRC    := $(filter-out data_plane/main.c,$(shell find data_plane -name '*.c' | sort))
LLHTTP_SRC := $(LLHTTP)/api.c $(LLHTTP)/http.c $(LLHTTP)/llhttp.c

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))
PROTO_OBJ := $(call obj,$(PROTO_SRC))
CP_OBJ    := $(call obj,$(CP_SRC))
DP_OBJ    := $(call obj,$(DP_SRC))
LLHTTP_OBJ := $(patsubst $(LLHTTP)/%.c,$(BUILD)/obj/llhttp/%.o,$(LLHTTP_SRC))

UNIT_SRC  := $(shell find tests/unit -name 'test_*.c' 2>/dev/null | sort)
UNIT_BIN  := $(patsubst tests/unit/%.c,$(BUILD)/unit/%,$(UNIT_SRC))

# fuzz-libs: the libraries built with the fuzzer's instrumentation
.PHONY: fuzz-libs fuzz-smoke all deps test unit integration asan-test format format-check run clean fuzz bench
.DEFAULT_GOAL := all

all: $(BUILD)/sluice-cp $(BUILD)/sluice-dp

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC    $<"
	@$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

# llhttp is generated C from Debian's node-llhttp; its own warnings are not ours to fix.
$(BUILD)/obj/llhttp/%.o: $(LLHTTP)/%.c
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -g $(OPT) $(SAN) -I/usr/share/include/llhttp -w -c $< -o $@

$(BUILD)/libproto.a: $(PROTO_OBJ)
	@rm -f $@; ar rcs $@ $^
$(BUILD)/libcp.a: $(CP_OBJ)
	@rm -f $@; ar rcs $@ $^
$(BUILD)/libdp.a: $(DP_OBJ)
	@rm -f $@; ar rcs $@ $^
$(BUILD)/libllhttp.a: $(LLHTTP_OBJ)
	@rm -f $@; ar rcs $@ $^

# Migrations are compiled into sluice-cp, so the binary alone can bootstrap a database.
$(BUILD)/gen/migrations.c: $(sort $(wildcard migrations/*.sql)) scripts/embed_migrations.sh
	@mkdir -p $(dir $@)
	./scripts/embed_migrations.sh $(sort $(wildcard migrations/*.sql)) > $@
$(BUILD)/obj/gen/migrations.o: $(BUILD)/gen/migrations.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

CP_LIBS := $(BUILD)/libcp.a $(BUILD)/obj/gen/migrations.o $(BUILD)/libllhttp.a $(BUILD)/libproto.a
DP_LIBS := $(BUILD)/libdp.a $(BUILD)/libllhttp.a $(BUILD)/libproto.a

$(BUILD)/sluice-cp: $(call obj,control_plane/main.c) $(CP_LIBS)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)

$(BUILD)/sluice-dp: $(call obj,data_plane/main.c) $(DP_LIBS)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)

# Unit tests mirror source paths and link only the part they test.
$(BUILD)/unit/proto/%: tests/unit/proto/%.c $(BUILD)/libproto.a
	@mkdir -p $(dir $@)
	@echo "  LD    $@"
	@$(CC) $(CFLAGS) -o $@ $^ $(PKG_LIBS) -lcmocka
$(BUILD)/unit/control_plane/%: tests/unit/control_plane/%.c $(CP_LIBS)
	@mkdir -p $(dir $@)
	@echo "  LD    $@"
	@$(CC) $(CFLAGS) -o $@ $^ $(PKG_LIBS) -lcmocka
$(BUILD)/unit/data_plane/%: tests/unit/data_plane/%.c $(DP_LIBS)
	@mkdir -p $(dir $@)
	@echo "  LD    $@"
	@$(CC) $(CFLAGS) -o $@ $^ $(PKG_LIBS) -lcmocka

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)

deps:
	@missing=""; for p in $(DEB_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	  for s in nginx haproxy postgresql; do $$SUDO service $$s stop >/dev/null 2>&1 || true; done; \
	fi
	@# kubectl renders the Kubernetes base in the deploy tests; any kubectl will do.
	@command -v kubectl >/dev/null || { SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  { $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq \
	    --no-install-recommends kubernetes-client >/dev/null; } || \
	  echo "kubectl unavailable: the Kubernetes render tests will be skipped"; }

unit: $(UNIT_BIN)
	@for t in $(UNIT_BIN); do \
	  out=$$($$t 2>&1); rc=$$?; \
	  if [ $$rc = 0 ]; then echo "$$out" | grep -E '^\[  PASSED' | sed "s|^|$$t: |"; \
	  else echo "$$out"; echo "FAILED: $$t"; exit 1; fi; \
	done

# Three pytest workers: most tests wait on sockets and processes, so on two cores they overlap
# well; each worker starts its own PostgreSQL.
PYTEST_WORKERS ?= 3
integration: all
	SLUICE_BIN_DIR=$(abspath $(BUILD)) $(PYTHON) -m pytest -q -p no:cacheprovider \
	  -n $(PYTEST_WORKERS) tests/integration

# The whole suite again under AddressSanitizer and UndefinedBehaviorSanitizer, in its own build folder.
asan-test:
	$(MAKE) BUILD=build/asan OPT=-O1 SAN="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" unit integration

test: deps
	$(MAKE) all
	$(MAKE) unit
	$(MAKE) integration
	$(MAKE) asan-test
	$(MAKE) fuzz-smoke

run: deps all
	SLUICE_RUN_BIN=$(abspath $(BUILD)) ./scripts/run.sh

format:
	clang-format -i $$(find proto control_plane data_plane tests -name '*.[ch]')

format-check:
	clang-format --dry-run --Werror $$(find proto control_plane data_plane tests -name '*.[ch]')

FUZZ_SRC := $(shell find tests/fuzz -name 'fuzz_*.c' 2>/dev/null | sort)
fuzz:
	$(MAKE) BUILD=build/fuzzobj CC=clang OPT=-O1 SAN="-fsanitize=fuzzer-no-link,address,undefined" fuzz-libs
	@mkdir -p build/fuzz
	@for f in $(FUZZ_SRC); do n=$$(basename $$f .c); \
	  clang -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined -I. -I/usr/share/include/llhttp $(PKG_CFLAGS) -o build/fuzz/$$n $$f \
	    build/fuzzobj/libcp.a build/fuzzobj/obj/gen/migrations.o build/fuzzobj/libdp.a build/fuzzobj/libllhttp.a \
	    build/fuzzobj/libproto.a $(PKG_LIBS) || exit 1; done

fuzz-libs: $(CP_LIBS) $(DP_LIBS)

# Every fuzz target, briefly, from its seed corpus (tests/fuzz/corpus/<name without fuzz_>).
FUZZ_SECONDS ?= 15
fuzz-smoke: fuzz
	@for f in $(FUZZ_SRC); do n=$$(basename $$f .c); c=tests/fuzz/corpus/$${n#fuzz_}; \
	  echo "== $$n ($(FUZZ_SECONDS) s)"; \
	  rm -rf build/fuzz/new-$$n; mkdir -p build/fuzz/new-$$n; \
	  build/fuzz/$$n -max_total_time=$(FUZZ_SECONDS) -print_final_stats=0 build/fuzz/new-$$n $$( [ -d $$c ] && echo $$c ) \
	    >build/fuzz/$$n.log 2>&1 || { tail -50 build/fuzz/$$n.log; exit 1; }; \
	  grep -E '^#[0-9]+.*(DONE|pulse)' build/fuzz/$$n.log | tail -1; done

clean:
	rm -rf $(BUILD)
