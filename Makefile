# Convenience wrapper around Meson.  `make test` is what CI runs.
BUILD ?= build
ASAN_BUILD ?= build-asan
VAR ?= var
LISTEN ?= 127.0.0.1:8080

.PHONY: all build asan test unit run bench fuzz clean

all: build

$(BUILD)/build.ninja:
	meson setup $(BUILD)

$(ASAN_BUILD)/build.ninja:
	meson setup $(ASAN_BUILD) -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debug

build: $(BUILD)/build.ninja
	ninja -C $(BUILD)

asan: $(ASAN_BUILD)/build.ninja
	ninja -C $(ASAN_BUILD)

# Whole suite twice: normal build, then under AddressSanitizer+UBSan.
test: build asan
	sh scripts/run-tests.sh $(BUILD) $(ASAN_BUILD)

unit: build
	meson test -C $(BUILD) --suite unit --print-errorlogs

# Start attestd on SQLite under ./var with the example role configs.
run: build
	@mkdir -p $(VAR)/configs $(VAR)/db $(VAR)/ca
	@cp -n examples/configs/*.yaml $(VAR)/configs/ 2>/dev/null || true
	@test -s $(VAR)/admin-token || (umask 077; openssl rand -hex 32 > $(VAR)/admin-token)
	@echo "attestd: break-glass admin token (operator SYSTEM): $$(cat $(VAR)/admin-token)"
	@echo "attestd: try  curl -H \"Authorization: Bearer $$(cat $(VAR)/admin-token)\" http://$(LISTEN)/api/v1/machines"
	@echo "attestd: or   ATTESTATION_API_URL=http://$(LISTEN) ATTESTATION_TOKEN=$$(cat $(VAR)/admin-token) $(BUILD)/attestation machine list"
	ITL_DB_URL=sqlite:///$(CURDIR)/$(VAR)/db/machines.db \
	ITL_CONFIG_CACHE_DIR=$(CURDIR)/$(VAR)/configs \
	ITL_ENROLLMENT_CA_DIR=$(CURDIR)/$(VAR)/ca \
	ITL_SERVICE_URL=$${ITL_SERVICE_URL:-http://$(LISTEN)} \
	ITL_ADMIN_TOKEN=$$(cat $(VAR)/admin-token) \
	$(BUILD)/attestd --listen $(LISTEN)

bench: build
	sh bench/run.sh $(BUILD)

fuzz:
	sh tests/fuzz/run-libfuzzer.sh

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
