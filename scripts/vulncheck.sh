#!/bin/sh
# Runs govulncheck on the module against the Go vulnerability database,
# offline: govulncheck and the database (the golang.org/x/vulndb module's
# OSV reports, indexed by its own indexdb) both come pinned through the Go
# module proxy and are cached under ${VOICED_CACHE:-$HOME/.cache/voiced}.
# internal/tools/vulnreport then fails the check when the code calls a
# vulnerable function of a required module, and warns about the standard
# library's (fixed by building with a newer Go).
#
# Bump VULNDB_VERSION to a newer pseudo-version of golang.org/x/vulndb for
# newer reports.
set -eu
VULN_VERSION="${VULN_VERSION:-v1.9.0}"
VULNDB_VERSION="${VULNDB_VERSION:-v0.0.0-20261105234957-e22db6528018}"
CACHE_DIR="${VOICED_CACHE:-$HOME/.cache/voiced}"
TOOL_DIR="$CACHE_DIR/tools/govulncheck-$VULN_VERSION"
DB="$CACHE_DIR/vulndb-$VULNDB_VERSION"
GO="${GO:-go}"
ROOT="$(pwd)"
TMP=""
OUT=""
trap 'rm -rf "$TMP" "$OUT"' EXIT

if [ ! -x "$TOOL_DIR/govulncheck" ]; then
	echo "installing govulncheck $VULN_VERSION..." >&2
	mkdir -p "$TOOL_DIR"
	(cd "$TOOL_DIR" && GOFLAGS=-mod=mod GOBIN="$TOOL_DIR" "$GO" install "golang.org/x/vuln/cmd/govulncheck@$VULN_VERSION")
fi
if [ ! -f "$DB/index/db.json" ]; then
	echo "indexing the vulnerability database $VULNDB_VERSION..." >&2
	mkdir -p "$CACHE_DIR"
	TMP="$(mktemp -d "$CACHE_DIR/.vulndb.XXXXXX")"
	# Outside the voiced module, so that its go.mod does not interfere.
	SRC="$(cd "$TMP" && GOFLAGS=-mod=mod "$GO" mod download -json "golang.org/x/vulndb@$VULNDB_VERSION" |
		sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
	[ -d "$SRC/data/osv" ] || { echo "vulncheck: no data/osv in golang.org/x/vulndb@$VULNDB_VERSION" >&2; exit 2; }
	(cd "$TMP" && GOFLAGS=-mod=mod "$GO" run "golang.org/x/vulndb/cmd/indexdb@$VULNDB_VERSION" -vulns "$SRC/data/osv" -out "$TMP/db")
	rm -rf "$DB"
	mv "$TMP/db" "$DB"
fi
OUT="$(mktemp)"
# govulncheck exits 3 when it finds anything; vulnreport judges.
"$TOOL_DIR/govulncheck" -db "file://$DB" -format json ./... >"$OUT" || [ $? -eq 3 ]
cd "$ROOT" && "$GO" run ./internal/tools/vulnreport <"$OUT"
