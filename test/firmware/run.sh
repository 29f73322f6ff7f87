#!/bin/sh
# Runs one firmware image in QEMU under a time limit and checks what it printed on its UART.
#
#   run.sh -h HOSTED_SAMPLE NAME -- QEMU COMMAND...   expect what the hosted sample does under the virtual
#                                                     clock: its stdout then its stderr, its exit status,
#                                                     and as many board ms as it took virtual ms
#   run.sh -e EXPECTED_FILE NAME -- QEMU COMMAND...   expect the file's text and exit status 0
#
# Lines the board prints that start with "board: " are its own report (elapsed ms, stack high-water
# mark, status) and are not part of the comparison. Exit status: 0 passed, 1 the output, status or time
# differ, 2 the image did not finish within FW_TIMEOUT seconds (default 20), 3 it could not be run.
hosted= expected=
case $1 in
-h) hosted=$2 ;;
-e) expected=$2 ;;
*) echo "usage: $0 -h HOSTED_SAMPLE | -e EXPECTED_FILE NAME -- COMMAND..." >&2; exit 3 ;;
esac
name=$3
shift 3
[ "$1" = "--" ] && shift
[ $# -gt 0 ] || { echo "run.sh: no command" >&2; exit 3; }
command -v "$1" > /dev/null || { echo "  FAIL    $name: $1 not found (Debian: qemu-system-arm, qemu-system-misc)" >&2; exit 3; }

dir=$(mktemp -d) || exit 3
trap 'rm -rf "$dir"' EXIT

want_status=0 want_ms=
if [ -n "$hosted" ]; then
    ASYNC_CLOCK=virtual "$hosted" > "$dir/want" 2> "$dir/hosted.err" < /dev/null
    want_status=$?
    want_ms=$(sed -n 's/^async: virtual time \([0-9]*\) ms$/\1/p' "$dir/hosted.err")
    grep -v '^async: virtual time ' "$dir/hosted.err" >> "$dir/want"
    [ -n "$want_ms" ] || { echo "  FAIL    $name: $hosted printed no virtual time" >&2; exit 3; }
else
    cp "$expected" "$dir/want" || exit 3
fi

timeout "${FW_TIMEOUT:-20}" "$@" > "$dir/out" 2> "$dir/err" < /dev/null
status=$?
if [ $status -eq 124 ]; then
    echo "  FAIL    $name: no exit within ${FW_TIMEOUT:-20} s; its output so far:" >&2
    sed 's/^/            /' "$dir/out" >&2
    exit 2
fi
grep -v '^board: ' "$dir/out" > "$dir/got"
report=$(sed -n 's/^board: //p' "$dir/out" | awk 'NR > 1 { printf "; " } { printf "%s", $0 }')
fail=0
if ! cmp -s "$dir/want" "$dir/got"; then
    echo "  FAIL    $name: output differs (- expected, + board):" >&2
    diff -u "$dir/want" "$dir/got" | tail -n +3 | sed 's/^/            /' >&2
    fail=1
fi
if [ $status -ne "$want_status" ]; then
    echo "  FAIL    $name: exit status $status, expected $want_status" >&2
    sed 's/^/            /' "$dir/err" >&2
    fail=1
fi
if [ -n "$want_ms" ]; then
    got_ms=$(sed -n 's/^board: elapsed \([0-9]*\) ms$/\1/p' "$dir/out")
    if [ "$got_ms" != "$want_ms" ]; then
        echo "  FAIL    $name: took ${got_ms:-?} board ms, the hosted sample $want_ms virtual ms" >&2
        fail=1
    fi
fi
[ $fail -eq 0 ] || exit 1
echo "  PASS    $name ($report)"
