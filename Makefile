# The two set-up commands of the README:
#   make run   install what is missing, fetch and verify the models, build, start faceauthd
#   make test  the same, then every test in the dev and the ASan+UBSan builds
# Other targets: build, asan, models, deps, bench, format, clean.
JOBS ?= $(shell nproc)
SHARED ?= $(abspath ../shared)

.PHONY: all run test build asan deps models bench format clean

all: build

deps:
	@tools/install_deps.sh

models: deps
	@tools/fetch_models.sh models

build: deps
	@cmake --preset dev >/dev/null
	@cmake --build --preset dev -j $(JOBS)

asan: deps
	@cmake --preset asan >/dev/null
	@cmake --build --preset asan -j $(JOBS)

run: models build
	@echo "faceauthd: http://127.0.0.1:8000 (data in ./data, models in ./models); Ctrl-C stops it."
	@echo "Create a client (prints its api_key and secret_key once), in another shell:"
	@echo "  build/faceauth client create --data-dir ./data --name myapp"
	./build/faceauthd --listen 127.0.0.1:8000 --data-dir ./data --models ./models

test: models build asan
	cd build && ctest --output-on-failure -j $(JOBS)
	cd build-asan && FA_TEST_QUICK=1 ctest --output-on-failure -j $(JOBS)

bench: models build
	./build/bench_engine

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build build-asan build-release build-fuzz
