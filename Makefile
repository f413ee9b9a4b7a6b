# The two commands a newcomer needs: `make demo` and `make test`.
# Each first installs the system packages it needs when they are missing (Debian/Ubuntu).

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT_PACKAGES := cmake pebble redis-server curl openssl systemd nginx slowhttptest testssl.sh python3 iproute2 util-linux chromium

.PHONY: demo test deps check lint

## Install what the build and the tests need (cmake for pingora's zlib-ng; Pebble for ACME tests;
## redis-server for the cluster tests;
## nginx, slowhttptest, testssl.sh, python3 (origin processes), ss, prlimit for the adversarial suite;
## chromium for the status page's browser test).
deps:
	@missing=""; \
	command -v cmake >/dev/null 2>&1 || missing="$$missing cmake"; \
	command -v pebble >/dev/null 2>&1 || missing="$$missing pebble"; \
	command -v redis-server >/dev/null 2>&1 || missing="$$missing redis-server"; \
	command -v curl >/dev/null 2>&1 || missing="$$missing curl"; \
	command -v openssl >/dev/null 2>&1 || missing="$$missing openssl"; \
	command -v systemd-analyze >/dev/null 2>&1 || missing="$$missing systemd"; \
	command -v nginx >/dev/null 2>&1 || missing="$$missing nginx"; \
	command -v slowhttptest >/dev/null 2>&1 || missing="$$missing slowhttptest"; \
	command -v testssl >/dev/null 2>&1 || missing="$$missing testssl.sh"; \
	command -v python3 >/dev/null 2>&1 || missing="$$missing python3"; \
	command -v ss >/dev/null 2>&1 || missing="$$missing iproute2"; \
	command -v prlimit >/dev/null 2>&1 || missing="$$missing util-linux"; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing >/dev/null; \
	fi

## Run vigie on its embedded demo configuration: http://localhost:8080
demo: deps
	cargo run -p vigie -- run --demo

## The whole test suite: unit tests and end-to-end tests over real sockets.
test: deps
	cargo test --workspace

## What CI checks besides the tests.
lint: deps
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -- -D warnings

## `vigie check` on the reference stack configuration.
check: deps
	cargo run -p vigie -- check -c dist/examples/stack.toml
