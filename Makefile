# nst: neural style transfer on OpenCL.  `make` builds build/nst, the tools,
# and the library static (build/libnst.a) and shared (build/libnst.so);
# `make test` runs every suite; `make install` installs (PREFIX, DESTDIR,
# LIBDIR, MANDIR).
# `make check-asan`, `make check-tsan`, `make check-valgrind`, `make fuzz`: see
# docs/RELIABILITY.md.
PREFIX  ?= /usr/local
LIBDIR  ?= $(PREFIX)/lib
MANDIR  ?= $(PREFIX)/share/man
BUILD   ?= build
DESTDIR ?=
# The shared library: real name libnst.so.VERSION, soname libnst.so.SOVERSION.
# Bump SOVERSION whenever a change breaks programs linked against the last one.
VERSION   := $(shell sed -n 's/.*define NST_VERSION "\(.*\)"/\1/p' include/nst.h)
SOVERSION := 1
SONAME    := libnst.so.$(SOVERSION)
# LAPACKE: the eigen-decompositions of the WCT covariances (src/run/wct.c)
PKGS    := OpenCL clblast libpng libjpeg jansson lapacke
# OpenBLAS runs the matrix products of CPU devices on the host (src/hostblas.c);
# without it (or with HOSTBLAS= on the command line) they all go through CLBlast.
HOSTBLAS ?= $(shell pkg-config --exists openblas && echo openblas)
ifneq ($(HOSTBLAS),)
PKGS    += $(HOSTBLAS)
CPPFLAGS += -DNST_HAVE_OPENBLAS
LDLIBS  += -pthread
endif
CC      ?= cc
CFLAGS  ?= -O2 -g
CFLAGS  += -std=c99 -Wall -Wextra -Wno-unused-parameter $(SAN)
LDFLAGS += $(SAN)
# src/ has one folder per layer, from the bottom up (docs/ARCHITECTURE.md);
# tests/test_layering.sh checks that no file includes a header from above.
LAYERS  := runtime io net objective ref run app
CPPFLAGS += -D_DEFAULT_SOURCE -Iinclude $(LAYERS:%=-Isrc/%) -I$(BUILD)/gen -DCL_TARGET_OPENCL_VERSION=120 \
            -DNST_PREFIX='"$(PREFIX)"' -DNST_SOURCE_DIR='"$(CURDIR)"' \
            $(shell pkg-config --cflags $(PKGS))
LDLIBS  += $(shell pkg-config --libs $(PKGS)) -lm -pthread

# Video (nst video): FFmpeg's libraries and OpenCV's optical flow, in an
# archive of their own (build/libnstvideo.a) so that libnst needs neither.
VIDEO_PKGS := libavformat libavcodec libswscale libavutil
VIDEO_SRC  := src/io/video.c src/io/flow.c
VIDEO_OBJ  := $(VIDEO_SRC:src/%.c=$(BUILD)/obj/%.o) $(BUILD)/obj/io/flow_dis.o
VIDEO_LIBS := $(shell pkg-config --libs $(VIDEO_PKGS)) -lopencv_video -lopencv_imgproc \
              -lopencv_core -lstdc++
CXX       ?= c++
CXXFLAGS  ?= -O2 -g
SRC   := $(filter-out src/app/% $(VIDEO_SRC),$(wildcard src/*/*.c))
OBJ   := $(SRC:src/%.c=$(BUILD)/obj/%.o)
APPOBJ := $(patsubst src/%.c,$(BUILD)/obj/%.o,$(wildcard src/app/*.c))
CLS   := $(wildcard cl/*.cl)
GEN   := $(patsubst cl/%.cl,$(BUILD)/gen/%.cl.h,$(CLS))
TOOLS := $(patsubst tools/%.c,$(BUILD)/tools/%,$(filter-out tools/embed_cl.c,$(wildcard tools/*.c)))
TESTS := $(patsubst tests/%.c,$(BUILD)/tests/%,$(wildcard tests/test_*.c))
TESTLIB := $(patsubst tests/%.c,$(BUILD)/obj/tests_%.o,$(filter-out tests/test_%,$(wildcard tests/*.c)))

all: $(BUILD)/nst $(TOOLS) $(BUILD)/libnst.so

$(BUILD)/nst: $(APPOBJ) $(BUILD)/libnstvideo.a $(BUILD)/libnst.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(VIDEO_LIBS)

$(BUILD)/libnstvideo.a: $(VIDEO_OBJ)
	@rm -f $@
	$(AR) rcs $@ $^

$(VIDEO_SRC:src/%.c=$(BUILD)/obj/%.o): CPPFLAGS += $(shell pkg-config --cflags $(VIDEO_PKGS))

$(BUILD)/obj/io/flow_dis.o: src/io/flow_dis.cpp src/io/flow.h
	@mkdir -p $(@D)
	$(CXX) $(CXXFLAGS) -std=c++17 -Wall -Wextra $(SAN) -fPIC \
	    $(shell pkg-config --cflags opencv4) -c $< -o $@

# The video tool and suite link the video archive too.
$(BUILD)/tools/nst-warp-error: tools/nst-warp-error.c $(BUILD)/libnstvideo.a $(BUILD)/libnst.a
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) -o $@ $< $(BUILD)/libnstvideo.a $(BUILD)/libnst.a $(LDLIBS) \
	    $(VIDEO_LIBS)

$(BUILD)/tests/test_video: tests/test_video.c $(TESTLIB) $(BUILD)/libnstvideo.a $(BUILD)/libnst.a
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) -Itests $(CFLAGS) $$(pkg-config --cflags cmocka) -o $@ $< $(TESTLIB) \
	    $(BUILD)/libnstvideo.a $(BUILD)/libnst.a $(LDLIBS) $(VIDEO_LIBS) \
	    $$(pkg-config --libs cmocka)

# nst studio (src/app/studio*.c): libmicrohttpd for the command only, and its
# page embedded like the kernels.
STUDIOPKGS := libmicrohttpd
$(APPOBJ): CPPFLAGS += $(shell pkg-config --cflags $(STUDIOPKGS))
$(BUILD)/nst: LDLIBS += $(shell pkg-config --libs $(STUDIOPKGS))
$(BUILD)/obj/app/studio.o: $(BUILD)/gen/studio_html.h
$(BUILD)/gen/studio_html.h: src/app/studio.html $(BUILD)/tools/embed_cl
	@mkdir -p $(@D)
	$(BUILD)/tools/embed_cl $< $@ nst_studio_html

$(BUILD)/libnst.a: $(OBJ)
	@rm -f $@
	$(AR) rcs $@ $^

# The shared library exports exactly the functions include/nst.h declares
# (a version script made from the header); the objects are position
# independent, so one set serves both libraries.
$(BUILD)/gen/libnst.map: include/nst.h
	@mkdir -p $(@D)
	@{ echo 'NST_$(SOVERSION) {'; echo '  global:'; \
	  sed -n 's/^\([a-z][^(]*[ *]\)\{0,1\}\(nst_[a-z0-9_]*\)(.*/    \2;/p' $<; \
	  echo '  local: *;'; echo '};'; } > $@.tmp && mv $@.tmp $@

$(BUILD)/libnst.so.$(VERSION): $(OBJ) $(BUILD)/gen/libnst.map
	$(CC) -shared $(LDFLAGS) -Wl,-soname,$(SONAME) -Wl,--version-script,$(BUILD)/gen/libnst.map \
	    $(if $(SAN),,-Wl,--no-undefined) -o $@ $(OBJ) $(LDLIBS)

$(BUILD)/libnst.so: $(BUILD)/libnst.so.$(VERSION)
	ln -sf libnst.so.$(VERSION) $(BUILD)/$(SONAME)
	ln -sf $(SONAME) $@

$(BUILD)/obj/%.o: src/%.c $(BUILD)/gen/programs.h
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) -fPIC -MMD -MP -c $< -o $@

$(GEN): $(BUILD)/gen/%.cl.h: cl/%.cl $(BUILD)/tools/embed_cl
	@mkdir -p $(@D)
	$(BUILD)/tools/embed_cl $< $@ nst_cl_$*

# The program table: one entry per cl/*.cl except common.cl.
$(BUILD)/gen/programs.h: $(GEN) Makefile
	@mkdir -p $(@D)
	@{ echo '/* generated by the Makefile; do not edit */'; \
	  for f in $(GEN); do echo "#include \"$$(basename $$f)\""; done; \
	  echo 'static const nst_program_src nst_program_common_src = {"common", nst_cl_common, sizeof nst_cl_common - 1};'; \
	  echo 'static const nst_program_src nst_programs[] = {'; \
	  for n in $(filter-out common,$(basename $(notdir $(CLS)))); do \
	    echo "    {\"$$n\", nst_cl_$$n, sizeof nst_cl_$$n - 1},"; done; \
	  echo '};'; \
	  echo 'static const int nst_program_count = (int)(sizeof nst_programs / sizeof nst_programs[0]);'; \
	} > $@.tmp && mv $@.tmp $@

# OpenCL's error names, from the "Error Codes" block of the CL/cl.h the
# compiler finds (runtime/status.c); empty if that block is not found.
$(BUILD)/gen/cl_errors.h: Makefile
	@mkdir -p $(@D)
	@h=$$(echo '#include <CL/cl.h>' | $(CC) $(CPPFLAGS) -M -x c - 2>/dev/null | tr ' \\' '\n\n' | \
	    grep '/CL/cl\.h$$' | head -n 1); \
	{ echo '/* generated by the Makefile from CL/cl.h; do not edit */'; \
	  [ -n "$$h" ] && awk '/Error Codes/ { on = 1; next } on && /^\/\*/ { exit } \
	      on && $$1 == "#define" && $$3 ~ /^-?[0-9]+$$/ { printf "E(%s, \"%s\")\n", $$3, $$2 }' "$$h"; \
	  true; } > $@.tmp && mv $@.tmp $@
$(BUILD)/obj/runtime/status.o: $(BUILD)/gen/cl_errors.h

$(BUILD)/tools/embed_cl: tools/embed_cl.c
	@mkdir -p $(@D)
	$(CC) -O1 -Wall -o $@ $<

# Tools that link the library (weight generation and conversion, test images).
$(BUILD)/tools/%: tools/%.c $(BUILD)/libnst.a
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) -o $@ $< $(BUILD)/libnst.a $(LDLIBS)

# The local benchmark rows (BENCHMARKS.md): nst, then the PyTorch peer
# (tools/torch_gatys.py) on the same CPU with BENCH_THREADS threads, run by
# $(PYTHON) when it can import torch.
BENCH_SIZES   ?= 256,512
BENCH_EVALS   ?= 3
BENCH_THREADS ?= $(shell nproc 2>/dev/null || echo 1)
PYTHON        ?= python3
bench: all
	$(BUILD)/nst bench --size $(BENCH_SIZES) --evals $(BENCH_EVALS)
	@if "$(PYTHON)" -c 'import torch' 2>/dev/null; then \
	  for s in $$(echo $(BENCH_SIZES) | tr , ' '); do \
	    "$(PYTHON)" tools/torch_gatys.py --device cpu --threads $(BENCH_THREADS) \
	        --size $$s --evals $(BENCH_EVALS) || exit 1; done; \
	else echo "($(PYTHON) cannot import torch: no PyTorch row; set PYTHON=/path/to/python)"; fi

# The real VGG-19 weights (needs the internet): weights/vgg19-conv.safetensors;
# NST_NETWORK=vgg16 for VGG-16's (tools/fetch-weights.sh --list);
# NST_NETWORK=wct for the models of --method wct, into weights/wct/.
weights: $(BUILD)/tools/nst-genweights
	NST_GENWEIGHTS=$(BUILD)/tools/nst-genweights tools/fetch-weights.sh $(NST_NETWORK)

$(BUILD)/obj/tests_%.o: tests/%.c $(BUILD)/gen/programs.h
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) -Itests $(CFLAGS) $$(pkg-config --cflags cmocka) -MMD -MP -c $< -o $@

$(BUILD)/tests/%: tests/%.c $(TESTLIB) $(BUILD)/libnst.a
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) -Itests $(CFLAGS) $$(pkg-config --cflags cmocka) -o $@ $< $(TESTLIB) \
	    $(BUILD)/libnst.a $(LDLIBS) $$(pkg-config --libs cmocka)

# Tests run from the repository root (they read tests/data and write build/tmp).
# TEST_RUN prefixes each suite binary (check-valgrind); TEST_SCRIPTS are the
# shell suites (tests/test_*.sh). A suite that runs past SUITE_TIMEOUT seconds
# is stopped and counted failed, so a hang is reported by name instead of
# holding the whole run.
TEST_RUN      ?=
TEST_SCRIPTS  ?= $(wildcard tests/test_*.sh)
SUITE_TIMEOUT ?= 1500
SUITE_LIMIT    = timeout -k 20 $(SUITE_TIMEOUT)
SUITE_VERDICT  = { s=$$?; [ $$s -eq 124 ] && echo "TIMED OUT after $(SUITE_TIMEOUT) s: $$t"; rc=1; }
test: all $(TESTS)
	@rc=0; for t in $(TESTS); do echo "== $$t"; \
	    NST_CACHE=0 $(SUITE_LIMIT) $(TEST_RUN) $$t || $(SUITE_VERDICT); done; \
	  for t in $(TEST_SCRIPTS); do echo "== $$t"; \
	    NST_CACHE=0 NST_GENWEIGHTS=$(BUILD)/tools/nst-genweights $(SUITE_LIMIT) $$t \
	      || $(SUITE_VERDICT); done; \
	  if [ $$rc -eq 0 ]; then echo "all test suites passed"; else echo "SOME TEST SUITES FAILED"; fi; \
	  exit $$rc

# The numeric suites again on Mesa's rusticl (llvmpipe), whose kernels run
# 256 bits wide on any x86 and round differently from PoCL's: a result that
# holds for one vector width or rounding only fails here (CI runs it). Each
# entry is SUITE or SUITE:PATTERN (the tests it runs, NST_TEST_FILTER); the
# end-to-end transfers, minutes on llvmpipe, stay on the default device.
RUSTICL_TESTS ?= layers winograd loss vgg ema guided optim tiled temporal style_losses wct \
                 transfer:test_one_white_mask_is_unmasked
test-rusticl: all $(TESTS)
	@set -f; rc=0; for s in $(RUSTICL_TESTS); do t=$${s%%:*}; f=$${s#$$t}; f=$${f#:}; \
	  echo "== test_$$t on rusticl (llvmpipe)$${f:+: $$f}"; \
	  RUSTICL_ENABLE=llvmpipe NST_DEVICE=llvmpipe NST_CACHE=0 NST_TEST_FILTER="$$f" \
	    $(SUITE_LIMIT) $(BUILD)/tests/test_$$t || $(SUITE_VERDICT); done; \
	  if [ $$rc -eq 0 ]; then echo "all rusticl suites passed"; \
	  else echo "SOME RUSTICL SUITES FAILED"; fi; exit $$rc

# ---- reliability: sanitizers, valgrind, fuzzing (docs/RELIABILITY.md) ----
SANITIZE := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
SAN_ENV  := ASAN_OPTIONS=detect_leaks=1:strict_string_checks=1:check_initialization_order=1 \
            LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp:print_suppressions=0 \
            UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
# Everything (library, tools, every suite) with ASan+UBSan in build-asan/.
# The ICD loader sees every driver but Mesa's Clover (mesa.icd): Clover has no
# devices, leaks in its initialisation and is then unloaded, which leaves a
# frame LSan cannot name and so cannot suppress (docs/RELIABILITY.md).
# The shell suites drive build/nst, the normal build, so only those that
# run a program of $(BUILD) run again here.
ASAN_SCRIPTS ?= tests/test_fetch.sh tests/test_layering.sh
check-asan:
	@rm -rf build-asan/icd; mkdir -p build-asan/icd
	@for f in /etc/OpenCL/vendors/*.icd; do \
	  [ "$$(basename $$f)" = mesa.icd ] || cp $$f build-asan/icd/; done
	OCL_ICD_VENDORS=$(CURDIR)/build-asan/icd $(SAN_ENV) $(MAKE) BUILD=build-asan SAN="$(SANITIZE)" \
	    TEST_SCRIPTS="$(ASAN_SCRIPTS)" test

# ThreadSanitizer: the library and tests/test_threads.c (two transfers on two
# threads) built with -fsanitize=thread in build-tsan/. Reports from inside
# the OpenCL driver and CLBlast, which are not instrumented, are suppressed
# by tests/tsan.supp; nothing of nst's own is.
TSAN_ENV := TSAN_OPTIONS="suppressions=$(CURDIR)/tests/tsan.supp halt_on_error=1 \
            second_deadlock_stack=1 history_size=4"
check-tsan:
	$(MAKE) BUILD=build-tsan SAN="-fsanitize=thread -fno-omit-frame-pointer" \
	    build-tsan/tests/test_threads
	$(TSAN_ENV) NST_CACHE=0 $(SUITE_LIMIT) build-tsan/tests/test_threads

VALGRIND ?= valgrind -q --error-exitcode=1 --leak-check=full --show-leak-kinds=definite,possible \
            --errors-for-leak-kinds=definite,possible --num-callers=30 \
            --suppressions=$(CURDIR)/tests/valgrind.supp
# The suite binaries of the normal build under memcheck (not the shell
# suites): all of them unless VALGRIND_SUITES names some.
VALGRIND_SUITES ?= $(TESTS)
check-valgrind: all $(TESTS)
	$(MAKE) TEST_RUN="$(VALGRIND)" TEST_SCRIPTS= TESTS="$(VALGRIND_SUITES)" test

# libFuzzer: every tests/fuzz/fuzz_NAME.c becomes build-fuzz/fuzz_NAME (clang,
# the library built with the same sanitizers), run on the seeds in
# tests/fuzz/corpus_NAME/ (with tests/fuzz/fuzz_NAME.dict when present).
# New inputs go to build-fuzz/corpus/fuzz_NAME, crashes to build-fuzz/crash/.
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 300
FUZZ_SMOKE_SECONDS ?= 20
FUZZ_NAMES   := $(patsubst tests/fuzz/%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
$(BUILD)/fuzz_%: tests/fuzz/fuzz_%.c $(BUILD)/libnst.a
	$(CC) $(CPPFLAGS) $(CFLAGS) -fsanitize=fuzzer -o $@ $< $(BUILD)/libnst.a $(LDLIBS)
fuzz-build:
	$(MAKE) BUILD=build-fuzz CC=$(FUZZ_CC) \
	    SAN="$(SANITIZE) -fsanitize=fuzzer-no-link -DFUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION" \
	    $(FUZZ_NAMES:%=build-fuzz/%)
fuzz: fuzz-build
	@rc=0; for t in $(FUZZ_NAMES); do \
	  seeds=tests/fuzz/corpus_$${t#fuzz_}; [ -d $$seeds ] || seeds=; \
	  dict=tests/fuzz/$$t.dict; [ -f $$dict ] && dict=-dict=$$dict || dict=; \
	  rm -f build-fuzz/crash/$$t-*; mkdir -p build-fuzz/corpus/$$t build-fuzz/crash; \
	  echo "== $$t ($(FUZZ_SECONDS) s)"; \
	  if $(SAN_ENV) build-fuzz/$$t -max_total_time=$(FUZZ_SECONDS) -timeout=10 \
	      -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix=build-fuzz/crash/$$t- \
	      $$dict build-fuzz/corpus/$$t $$seeds > build-fuzz/$$t.log 2>&1; then \
	    grep -E '^(Done|stat::number_of_executed_units|stat::peak_rss)' build-fuzz/$$t.log; \
	  else rc=1; tail -n 50 build-fuzz/$$t.log; \
	    echo "FUZZ FAILURE in $$t: input in build-fuzz/crash/, log build-fuzz/$$t.log"; fi; \
	done; exit $$rc
# A short run of every target (CI).
fuzz-smoke:
	$(MAKE) FUZZ_SECONDS=$(FUZZ_SMOKE_SECONDS) fuzz

# ldconfig refreshes the loader's cache after a real (not staged) install.
install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(LIBDIR) $(DESTDIR)$(PREFIX)/include \
	    $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(PREFIX)/share/nst $(DESTDIR)$(MANDIR)/man1
	install -m 755 $(BUILD)/nst $(DESTDIR)$(PREFIX)/bin/nst
	install -m 755 $(BUILD)/tools/nst-genweights $(DESTDIR)$(PREFIX)/bin/nst-genweights
	install -m 644 $(BUILD)/libnst.a $(DESTDIR)$(LIBDIR)/libnst.a
	install -m 644 $(BUILD)/libnst.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libnst.so.$(VERSION)
	ln -sf libnst.so.$(VERSION) $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(LIBDIR)/libnst.so
	install -m 644 include/nst.h $(DESTDIR)$(PREFIX)/include/nst.h
	install -m 644 docs/nst.1 $(DESTDIR)$(MANDIR)/man1/nst.1
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@LIBDIR@|$(LIBDIR)|g' -e 's|@VERSION@|$(VERSION)|g' \
	    -e 's|@REQUIRES@|$(PKGS)|g' nst.pc.in > $(DESTDIR)$(LIBDIR)/pkgconfig/nst.pc
	@[ -n "$(DESTDIR)" ] || ldconfig 2>/dev/null || true

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/nst $(DESTDIR)$(PREFIX)/bin/nst-genweights \
	    $(DESTDIR)$(LIBDIR)/libnst.a $(DESTDIR)$(LIBDIR)/libnst.so.$(VERSION) \
	    $(DESTDIR)$(LIBDIR)/$(SONAME) $(DESTDIR)$(LIBDIR)/libnst.so \
	    $(DESTDIR)$(PREFIX)/include/nst.h $(DESTDIR)$(LIBDIR)/pkgconfig/nst.pc \
	    $(DESTDIR)$(MANDIR)/man1/nst.1
	@rmdir $(DESTDIR)$(PREFIX)/share/nst 2>/dev/null || true
	@[ -n "$(DESTDIR)" ] || ldconfig 2>/dev/null || true

clean:
	rm -rf build build-asan build-tsan build-fuzz

-include $(wildcard $(BUILD)/obj/*.d $(BUILD)/obj/*/*.d)
.PHONY: all test test-rusticl install uninstall clean weights bench check-asan check-tsan check-valgrind fuzz fuzz-build fuzz-smoke
.SECONDARY: $(GEN) $(TESTLIB)
