#!/usr/bin/env bash
# fetch-models.sh installs the files the in-process Silero VAD needs into the
# voiced cache directory (${VOICED_CACHE:-$HOME/.cache/voiced}):
#
#   silero_vad_v5.onnx  Silero VAD v5, taken from the npm package
#                       @ricky0123/vad-web (package/dist/silero_vad_v5.onnx)
#   libonnxruntime.so   ONNX Runtime 1.17.1 for linux/amd64, taken from the Go
#                       module github.com/k2-fsa/sherpa-onnx-go-linux
#
# Every file is pinned by sha256. The script is idempotent: a file that is
# already present with the right checksum is left alone. Files are written to
# a temporary name and renamed into place, so a failed run never leaves a
# partial file behind. It prints one line per file and exits non-zero on any
# checksum mismatch.
#
# Needs: npm, go, tar, sha256sum. Network: the npm registry and the Go module
# proxy (only when a file is missing or wrong).
set -euo pipefail

CACHE_DIR="${VOICED_CACHE:-$HOME/.cache/voiced}"

VAD_NPM_PACKAGE="@ricky0123/vad-web@0.0.31"
VAD_TARBALL_SHA256="d1a211cf1a2ed26297da52cc08de79e75d79838a274bfc6de546feb1f828c940"
VAD_MODEL_MEMBER="package/dist/silero_vad_v5.onnx"
VAD_MODEL_FILE="silero_vad_v5.onnx"
VAD_MODEL_SHA256="2623a2953f6ff3d2c1e61740c6cdb7168133479b267dfef114a4a3cc5bdd788f"

ORT_GO_MODULE="github.com/k2-fsa/sherpa-onnx-go-linux@v1.12.0"
ORT_MODULE_MEMBER="lib/x86_64-unknown-linux-gnu/libonnxruntime.so"
ORT_LIB_FILE="libonnxruntime.so"
ORT_LIB_SHA256="cb3d244eb794c698cdd5bd1ebac41c57e9b4353b998aeb287b7f53e1799acf77"

die() {
	echo "fetch-models: $*" >&2
	exit 1
}

need() {
	command -v "$1" >/dev/null 2>&1 || die "required command '$1' not found in PATH"
}

sha256_of() {
	sha256sum "$1" | cut -d' ' -f1
}

# check FILE WANT LABEL: exits with a clear message if FILE's sha256 is not WANT.
check() {
	local got
	got="$(sha256_of "$1")"
	if [[ "$got" != "$2" ]]; then
		die "sha256 mismatch for $3: got $got, want $2"
	fi
}

# up_to_date FILE WANT: true if FILE exists and has sha256 WANT.
up_to_date() {
	[[ -f "$1" ]] && [[ "$(sha256_of "$1")" == "$2" ]]
}

# install_atomic SRC DEST MODE: copies SRC next to DEST and renames it into place.
install_atomic() {
	local tmp
	tmp="$(mktemp "$2.tmp.XXXXXX")"
	cp "$1" "$tmp"
	chmod "$3" "$tmp"
	mv -f "$tmp" "$2"
}

WORK=""
cleanup() {
	if [[ -n "$WORK" ]]; then
		rm -rf "$WORK"
	fi
}
trap cleanup EXIT

mkdir -p "$CACHE_DIR"

fetch_vad_model() {
	local dest="$CACHE_DIR/$VAD_MODEL_FILE"
	if up_to_date "$dest" "$VAD_MODEL_SHA256"; then
		echo "ok        $dest"
		return
	fi
	need npm
	need tar
	WORK="$(mktemp -d)"
	local tarball
	if ! tarball="$(cd "$WORK" && npm pack --silent "$VAD_NPM_PACKAGE" 2>"$WORK/npm.log")"; then
		cat "$WORK/npm.log" >&2
		die "npm pack $VAD_NPM_PACKAGE failed"
	fi
	tarball="$(printf '%s\n' "$tarball" | tail -n 1)"
	[[ -n "$tarball" && -f "$WORK/$tarball" ]] || die "npm pack $VAD_NPM_PACKAGE produced no tarball"
	check "$WORK/$tarball" "$VAD_TARBALL_SHA256" "npm tarball $VAD_NPM_PACKAGE"
	tar -xzf "$WORK/$tarball" -C "$WORK" "$VAD_MODEL_MEMBER" ||
		die "$VAD_MODEL_MEMBER not found in $VAD_NPM_PACKAGE"
	check "$WORK/$VAD_MODEL_MEMBER" "$VAD_MODEL_SHA256" "$VAD_MODEL_FILE"
	install_atomic "$WORK/$VAD_MODEL_MEMBER" "$dest" 0644
	rm -rf "$WORK"
	WORK=""
	echo "installed $dest"
}

fetch_onnxruntime() {
	local dest="$CACHE_DIR/$ORT_LIB_FILE"
	if up_to_date "$dest" "$ORT_LIB_SHA256"; then
		echo "ok        $dest"
		return
	fi
	need go
	# Run outside any module so that go.mod and go.sum are never touched.
	WORK="$(mktemp -d)"
	local dir
	local info
	if ! info="$(cd "$WORK" && GOFLAGS= go mod download -json "$ORT_GO_MODULE")"; then
		printf '%s\n' "$info" >&2
		die "go mod download $ORT_GO_MODULE failed"
	fi
	dir="$(printf '%s\n' "$info" | sed -n 's/^[[:space:]]*"Dir":[[:space:]]*"\(.*\)",\{0,1\}$/\1/p')"
	[[ -n "$dir" && -d "$dir" ]] || die "go mod download $ORT_GO_MODULE did not give a module directory"
	local src="$dir/$ORT_MODULE_MEMBER"
	[[ -f "$src" ]] || die "$ORT_MODULE_MEMBER not found in $ORT_GO_MODULE ($dir)"
	check "$src" "$ORT_LIB_SHA256" "$ORT_LIB_FILE from $ORT_GO_MODULE"
	install_atomic "$src" "$dest" 0755
	rm -rf "$WORK"
	WORK=""
	echo "installed $dest"
}

fetch_vad_model
fetch_onnxruntime
