# bookrank - build, test, install.
#
#   make            build ./bookrank (installs missing Debian packages first: make deps)
#   make run        serve on the embedded defaults (127.0.0.1:8080, ./bookrank.db)
#   make test       build and run every test; ends with "N passed, N failed"
#   make sanitize   the whole suite under ASan+UBSan (build-asan/)
#   make tsan       the whole suite under ThreadSanitizer (build-tsan/)
#   make bench      benchmarks (see BENCHMARKS.md)
#   make fuzz       libFuzzer targets for a bounded time (FUZZ_SECONDS)
#   make lint       banned C functions (.ci/banned.sh)
#   make format     rewrite every C file with clang-format 14 (.clang-format); format-check lists
#                   the files that are not formatted and fails
#   make install    PREFIX=/usr/local DESTDIR=

VERSION := 0.1.0
PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
BUILD ?= build
CC ?= cc
CFLAGS ?= -O2 -g
WARNINGS := -std=c11 -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
	-Wformat=2 -Wpointer-arith -Wvla -Wcast-qual
# Warnings are errors in CI only: .ci/run passes WERROR=-Werror (sub-makes inherit it).
WERROR ?=
PKGS := libmicrohttpd libcurl libpcre2-8 sqlite3 jansson libcrypto
DEPS_STAMP := $(BUILD)/.deps-ok

PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS = $(shell pkg-config --libs $(PKGS) 2>/dev/null)
DEFINES = -D_GNU_SOURCE -DBOOKRANK_VERSION='"$(VERSION)"'
ALL_CFLAGS = $(WARNINGS) $(WERROR) $(DEFINES) -I. -I$(BUILD) $(PKG_CFLAGS) $(CFLAGS) -pthread \
	-MMD -MP
ALL_LDFLAGS = $(LDFLAGS) -pthread
LIBS = $(PKG_LIBS) -lm

MODULES := common db scraper jobs alerts notify server render cli web
LIB_SRC := $(foreach m,$(MODULES),$(filter-out web/mkassets.c,$(wildcard $(m)/*.c)))
LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/%.o) $(BUILD)/web/assets.o
WEB_FILES := $(sort $(wildcard web/*.html web/*.css web/*.js web/*.svg web/js/*.js))
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
TEST_TOOLS := $(BUILD)/tests/fixture_store
BENCH_TOOLS := $(BUILD)/bench/extract_bench $(BUILD)/bench/store_bench $(BUILD)/bench/bare_mhd

# Every C file of the project, for `make format`, `make format-check` and `make lint`. The .def
# files are X-macro tables (one entry a line, aligned by hand): linted, never formatted.
LIB_HDR := $(foreach m,$(MODULES),$(wildcard $(m)/*.h))
DEF_FILES := $(foreach m,$(MODULES),$(wildcard $(m)/*.def))
TEST_C := $(UNIT_SRC) $(wildcard tests/unit/*.h tests/lib/*.h tests/tools/*.c \
	tests/fuzz/*.c tests/fuzz/*.h tests/bench/*.c tests/bench/*.h)
C_SRC := main.c web/mkassets.c $(LIB_SRC) $(LIB_HDR) $(TEST_C)
CLANG_FORMAT ?= clang-format

.PHONY: all deps run test check sanitize tsan bench bench-build fuzz fuzz-build lint format \
	format-check install uninstall clean

all: bookrank

deps: $(DEPS_STAMP)
$(DEPS_STAMP):
	@sh .ci/deps build
	@mkdir -p $(BUILD) && touch $@

bookrank: $(DEPS_STAMP) $(BUILD)/bookrank
	cp $(BUILD)/bookrank $@

$(BUILD)/bookrank: $(BUILD)/main.o $(BUILD)/libbookrank.a
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(ALL_LDFLAGS) $(LIBS)

$(BUILD)/libbookrank.a: $(LIB_OBJ)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/%.o: %.c | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

# Dashboard files are embedded into the binary: web/mkassets turns them into a C table.
$(BUILD)/mkassets: web/mkassets.c | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) -O1 -o $@ $<
$(BUILD)/web/assets.c: $(BUILD)/mkassets $(WEB_FILES)
	@mkdir -p $(dir $@)
	$(BUILD)/mkassets $(WEB_FILES) > $@.tmp && mv $@.tmp $@
$(BUILD)/web/assets.o: $(BUILD)/web/assets.c | $(DEPS_STAMP)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libbookrank.a | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Wno-format-nonliteral -o $@ $< $(BUILD)/libbookrank.a $(ALL_LDFLAGS) $(LIBS)

$(BUILD)/tests/fixture_store: tests/tools/fixture_store.c $(BUILD)/libbookrank.a | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(BUILD)/libbookrank.a $(ALL_LDFLAGS) $(LIBS) -lz

# What the tests need beyond the build: python3, chromium, node with playwright-core.
TEST_DEPS_STAMP := $(BUILD)/.test-deps-ok
$(TEST_DEPS_STAMP): tests/browser/package.json
	@sh .ci/deps test
	@if [ -f tests/browser/package-lock.json ] && [ ! -d tests/browser/node_modules ]; then \
		npm ci --prefix tests/browser --no-audit --no-fund --loglevel=error; fi
	@mkdir -p $(BUILD) && touch $@

test check: $(DEPS_STAMP) $(BUILD)/bookrank $(TEST_DEPS_STAMP) $(UNIT_BIN) $(TEST_TOOLS)
	@BUILD=$(BUILD) sh tests/run.sh $(TESTS)

run: bookrank
	./bookrank serve

SAN_FLAGS := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all
sanitize:
	$(MAKE) BUILD=build-asan CFLAGS="$(SAN_FLAGS)" LDFLAGS="-fsanitize=address,undefined" test

tsan:
	$(MAKE) BUILD=build-tsan CFLAGS="-O1 -g -fsanitize=thread" LDFLAGS="-fsanitize=thread" \
		TESTS="$(TSAN_TESTS)" test
TSAN_TESTS ?=

# tests/bench/run.sh installs what the benchmarks use, then builds bench-build.
bench: bookrank
	sh tests/bench/run.sh
bench-build: $(BUILD)/bookrank $(TEST_TOOLS) $(BENCH_TOOLS)
$(BUILD)/bench/%: tests/bench/%.c $(BUILD)/libbookrank.a | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(BUILD)/libbookrank.a $(ALL_LDFLAGS) $(LIBS)
# The baseline server: libmicrohttpd alone, none of ours.
$(BUILD)/bench/bare_mhd: tests/bench/bare_mhd.c | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(ALL_LDFLAGS) $(shell pkg-config --libs libmicrohttpd)

# libFuzzer targets (tests/fuzz/fuzz_NAME.c, see tests/fuzz/run.sh): clang, the project's
# warnings and defines, ASan+UBSan, into FUZZ_BUILD. Not WERROR: clang warns about other things
# than the gcc builds that CI holds to -Werror.
FUZZ_SECONDS ?= 240
FUZZ_BUILD ?= build-fuzz
FUZZ_CC ?= clang
FUZZ_TARGETS ?= $(sort $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c)))
# All of common/ (small, no outside libraries), what the targets call in scraper/ and server/,
# and the alert rules that server/body.c parses.
FUZZ_SRC := $(wildcard common/*.c) scraper/source.c scraper/extract.c scraper/text.c \
	scraper/fetch.c server/body.c server/router.c alerts/alerts.c
FUZZ_OBJ := $(FUZZ_SRC:%.c=$(FUZZ_BUILD)/obj/%.o)
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
FUZZ_CFLAGS = $(WARNINGS) $(DEFINES) -I. $(PKG_CFLAGS) -g -O1 -pthread $(FUZZ_SAN) -MMD -MP
FUZZ_TOOLS_STAMP := $(FUZZ_BUILD)/.clang-ok

fuzz: fuzz-build
	FUZZ_BUILT=1 FUZZ_BUILD='$(FUZZ_BUILD)' FUZZ_TARGETS='$(FUZZ_TARGETS)' \
		sh tests/fuzz/run.sh $(FUZZ_SECONDS)
fuzz-build: $(FUZZ_TARGETS:%=$(FUZZ_BUILD)/bin/fuzz_%)
.SECONDARY: $(FUZZ_OBJ)
$(FUZZ_TOOLS_STAMP):
	@FUZZ_CC='$(FUZZ_CC)' FUZZ_BUILD='$(FUZZ_BUILD)' sh tests/fuzz/run.sh --tools
	@mkdir -p $(dir $@) && touch $@
$(FUZZ_BUILD)/obj/%.o: %.c | $(DEPS_STAMP) $(FUZZ_TOOLS_STAMP)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<
$(FUZZ_BUILD)/bin/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_OBJ) | $(DEPS_STAMP) $(FUZZ_TOOLS_STAMP)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_OBJ) $(ALL_LDFLAGS) $(LIBS)

lint:
	@sh .ci/banned.sh $(C_SRC) $(DEF_FILES)

format:
	$(CLANG_FORMAT) -i $(C_SRC)

# format-check: clang-format --dry-run warns "FILE:LINE:COL: warning: code should be
# clang-formatted" (exit 0) for each unformatted file, and exits non-zero when it fails itself.
FORMAT_WARNING := s/^\([^:]*\):[0-9]*:[0-9]*: warning: code should be clang-formatted.*/\1/p
format-check:
	@command -v $(CLANG_FORMAT) >/dev/null 2>&1 || \
		{ echo "format-check: no $(CLANG_FORMAT) (Debian: apt-get install clang-format)" >&2; exit 2; }
	@out=$$($(CLANG_FORMAT) --dry-run $(C_SRC) 2>&1) || { printf '%s\n' "$$out" >&2; exit 2; }; \
	bad=$$(printf '%s\n' "$$out" | sed -n '$(FORMAT_WARNING)' | sort -u); \
	[ -z "$$bad" ] || { echo "format-check: not formatted (make format fixes them):"; \
		printf '  %s\n' $$bad; echo "($$($(CLANG_FORMAT) --version))"; exit 1; }

# `make print-VAR` prints a variable as the Makefile sees it (e.g. print-LIB_SRC, print-ALL_CFLAGS).
print-%:
	@: $(info $($*))

install: bookrank
	install -d $(DESTDIR)$(BINDIR)
	install -m 755 bookrank $(DESTDIR)$(BINDIR)/bookrank

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/bookrank

clean:
	rm -rf build build-asan build-tsan build-fuzz bookrank

-include $(shell find $(BUILD) $(FUZZ_BUILD) -name '*.d' 2>/dev/null)
