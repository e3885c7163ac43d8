#!/usr/bin/env bash
# checksrc.sh: fails when our C sources use a banned call (unbounded or unchecked string handling).
# Usage: tests/checksrc.sh [DIR...]   (default: every directory holding Canopy C code)
set -u
cd "$(dirname "$0")/.." || exit 2
dirs=("$@")
[ ${#dirs[@]} -gt 0 ] || dirs=(shared edge-agent relay central tests/unit tests/fuzz tests/tools)
banned='strcpy|strcat|sprintf|vsprintf|strtok|sscanf|atoi|gets'
# A call is the word followed by '('; snprintf, strtok_r and fgets are different words.
# Lines inside comments that mention a name without calling it are not matched.
hits=$(grep -rnE --include='*.c' --include='*.h' "(^|[^A-Za-z0-9_])($banned)[[:space:]]*\(" \
	"${dirs[@]}" 2>/dev/null | grep -vE '^[^:]+:[0-9]+:[[:space:]]*(/?\*|//)')
if [ -n "$hits" ]; then
	echo "checksrc: banned calls (use snprintf, cn_strlcpy, cn_buf_*, strtol/cn_str_to_i64):"
	echo "$hits"
	echo "checksrc: FAIL"
	exit 1
fi
echo "checksrc: ok (${dirs[*]})"
