#!/bin/sh
# Runs every go fuzz target in the module for $FUZZTIME each. A failing
# target's output is shown (the input that failed, if the fuzzer kept one,
# is under the package's testdata/fuzz).
set -eu
GO=${GO:-go}
out=$(mktemp)
trap 'rm -f "$out"' EXIT
for pkg in $($GO list ./...); do
	for target in $($GO test -list '^Fuzz' "$pkg" | grep '^Fuzz' || true); do
		echo "fuzz $pkg $target ($FUZZTIME)"
		if ! $GO test -run '^$' -fuzz "^${target}\$" -fuzztime "$FUZZTIME" "$pkg" >"$out" 2>&1; then
			tail -n 40 "$out"
			exit 1
		fi
	done
done
