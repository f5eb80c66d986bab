# bookrank - build, test, install.
#
#   make            build ./bookrank (installs missing Debian packages first: make deps)
#   make run        serve on the embedded defaults (127.0.0.1:8080, ./bookrank.db)
#   make test       build and run every test; ends with "N passed, N failed"
#   make sanitize   the whole suite under ASan+UBSan (build-asan/)
#   make tsan       the whole suite under ThreadSanitizer (build-tsan/)
#   make bench      benchmarks (see BENCHMARKS.md)
#   make fuzz       libFuzzer targets for a bounded time (FUZZ_SECONDS)
#   make install    PREFIX=/usr/local DESTDIR=

VERSION := 0.1.0
PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
BUILD ?= build
CC ?= cc
CFLAGS ?= -O2 -g
WARNINGS := -std=c11 -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
	-Wformat=2 -Wpointer-arith -Wvla -Wcast-qual
WERROR ?= -Werror
PKGS := libmicrohttpd libcurl libpcre2-8 sqlite3 jansson libcrypto
DEPS_STAMP := $(BUILD)/.deps-ok

PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS = $(shell pkg-config --libs $(PKGS) 2>/dev/null)
ALL_CFLAGS = $(WARNINGS) $(WERROR) -D_GNU_SOURCE -DBOOKRANK_VERSION='"$(VERSION)"' \
	-I. -I$(BUILD) $(PKG_CFLAGS) $(CFLAGS) -pthread -MMD -MP
ALL_LDFLAGS = $(LDFLAGS) -pthread
LIBS = $(PKG_LIBS) -lm

MODULES := common db scraper jobs alerts notify server render cli web
LIB_SRC := $(foreach m,$(MODULES),$(filter-out web/mkassets.c,$(wildcard $(m)/*.c)))
LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/%.o) $(BUILD)/web/assets.o
WEB_FILES := $(sort $(wildcard web/*.html web/*.css web/*.js web/*.svg web/js/*.js))
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
TEST_TOOLS := $(BUILD)/tests/fixture_store

.PHONY: all deps run test check sanitize tsan bench fuzz install uninstall clean

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
$(BUILD)/mkassets: web/mkassets.c
	@mkdir -p $(dir $@)
	$(CC) -O1 -o $@ $<
$(BUILD)/web/assets.c: $(BUILD)/mkassets $(WEB_FILES)
	@mkdir -p $(dir $@)
	$(BUILD)/mkassets $(WEB_FILES) > $@.tmp && mv $@.tmp $@
$(BUILD)/web/assets.o: $(BUILD)/web/assets.c
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libbookrank.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Wno-format-nonliteral -o $@ $< $(BUILD)/libbookrank.a $(ALL_LDFLAGS) $(LIBS)

$(BUILD)/tests/fixture_store: tests/tools/fixture_store.c $(BUILD)/libbookrank.a
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

bench: bookrank
	sh tests/bench/run.sh

FUZZ_SECONDS ?= 240
fuzz:
	sh tests/fuzz/run.sh $(FUZZ_SECONDS)

install: bookrank
	install -d $(DESTDIR)$(BINDIR)
	install -m 755 bookrank $(DESTDIR)$(BINDIR)/bookrank

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/bookrank

clean:
	rm -rf build build-asan build-tsan build-fuzz bookrank

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
