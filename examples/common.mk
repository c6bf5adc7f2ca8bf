# What every example's Makefile shares: the compile and link flags come
# from pkg-config alone. `--libs` gives the shared library; `--static
# --libs` puts libvfiokit.a first inside --whole-archive, so the drivers'
# registration objects (static objects nothing references) stay in.
PKGCONF ?= pkg-config
O ?= build
SRCS ?= main.cpp
CXXFLAGS ?= -O2 -g

ifeq ($(filter clean,$(MAKECMDGOALS)),)
ifneq ($(shell $(PKGCONF) --exists vfiokit && echo yes),yes)
$(error $(PKGCONF) finds no vfiokit.pc: install vfiokit (meson install) or set PKG_CONFIG_PATH)
endif
endif

# A new install (a newer vfiokit.pc) rebuilds the programs.
PC_FILE := $(shell $(PKGCONF) --path vfiokit)
PC_CFLAGS = $(shell $(PKGCONF) --cflags vfiokit)
LIBS_SHARED = $(shell $(PKGCONF) --libs vfiokit)
LIBS_STATIC = $(shell $(PKGCONF) --static --libs vfiokit)

.PHONY: all shared static clean
all: shared
shared: $(O)/$(APP)-shared
	ln -sf $(APP)-shared $(O)/$(APP)
static: $(O)/$(APP)-static

$(O)/$(APP)-shared: $(SRCS) Makefile ../common.mk $(PC_FILE) | $(O)
	$(CXX) $(PC_CFLAGS) $(CXXFLAGS) $(SRCS) -o $@ $(LDFLAGS) $(LIBS_SHARED)

$(O)/$(APP)-static: $(SRCS) Makefile ../common.mk $(PC_FILE) | $(O)
	$(CXX) $(PC_CFLAGS) $(CXXFLAGS) $(SRCS) -o $@ $(LDFLAGS) $(LIBS_STATIC)

$(O):
	mkdir -p $@

clean:
	rm -f $(O)/$(APP) $(O)/$(APP)-shared $(O)/$(APP)-static
