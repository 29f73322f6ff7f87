#!/bin/sh
# Prints the sizes of a board's images: sizes.sh BOARD SIZE NM SIZES_OBJ CORE_OBJ IMAGE.elf...
# (or, with sizes.sh --core IMAGE.map, only the core's bytes in that image: the figure make test-firmware
# holds the minimal builds to)
#   text/data/bss  the image's sections (text includes constants; stack is the reserved stack, not in bss)
#   core           flash bytes of the core (async.h's implementation) that the linker kept in the image
#   loop, frames   RAM of the async_loop and of the sample's static frames (the objects named loop and m)
# and, when both are among the images, how much more flash (text and data) gather takes than baseline
# (the same output from three hand-rolled switch/case tasks): what async.h and its port cost over
# doing it by hand.

# hex to decimal in any awk (mawk has no strtonum)
HEX='function hex(s,  i, n) { sub(/^0x/, "", s); n = 0; for (i = 1; i <= length(s); i++) n = n * 16 + index("0123456789abcdef", tolower(substr(s, i, 1))) - 1; return n }'

# The flash bytes of core.o's input sections in an image's map file: in its memory map part, a short
# section name and its address, size and file on one line, or a long name alone on the line before them.
core_bytes() {
    awk "$HEX"'
        /^Linker script and memory map/ { m = 1; next }
        !m { next }
        NF == 1 { sec = $1; next }
        $NF ~ /\/core\.o$/ && $(NF - 1) ~ /^0x/ {
            s = (NF == 4) ? $1 : sec
            if (s ~ /^\.(text|rodata|srodata|data|sdata)/) total += hex($(NF - 1))
        }
        { sec = "" }
        END { printf "%d", total }' "$1"
}
if [ "$1" = --core ]; then
    core_bytes "$2"
    exit
fi

board=$1 size=$2 nm=$3 probe=$4 core=$5
shift 5
sym() { "$nm" -S "$probe" | awk -v n="$1" "$HEX"' $4 == n { printf "%d", hex($2) }'; }
echo "$board: async_task $(sym size_async_task) B, async_loop $(sym size_async_loop) B," \
     "async_future $(sym size_async_future) B, async_group $(sym size_async_group) B," \
     "async_interrupt $(sym size_async_interrupt) B"
"$size" "$core" | awk 'NR == 2 { printf "  the core alone (%s, every function): text %d, data %d, bss %d\n", "core.o", $1, $2, $3 }'
printf '  %-12s %7s %6s %6s %6s %11s %6s %7s\n' image text data bss stack core-flash loop frames
for elf in "$@"; do
    name=$(basename "$elf" .elf)
    corebytes=$(core_bytes "${elf%.elf}.map")
    flash=$("$size" -A "$elf" | awk '$1 ~ /^\.(text|rodata|ARM\.exidx|data)$/ { t += $2 } END { print t }')
    case $name in gather) gather=$flash ;; baseline) baseline=$flash ;; esac
    "$size" -A "$elf" | awk -v name="$name" -v core="$corebytes" '
        $1 == ".text" || $1 == ".rodata" || $1 == ".ARM.exidx" { text += $2 }
        $1 == ".data" { data += $2 }
        $1 == ".bss" { bss += $2 }
        $1 == ".stack" { stack += $2 }
        END { printf "  %-12s %7d %6d %6d %6d %11d", name, text, data, bss, stack, core }'
    "$nm" -S "$elf" | awk "$HEX"'
        $4 ~ /^loop(\.[0-9]+)?$/ { loop += hex($2) }
        $4 ~ /^m(\.[0-9]+)?$/ { frames += hex($2) }
        END { printf " %6d %7d\n", loop, frames }'
done
if [ -n "$gather" ] && [ -n "$baseline" ]; then
    echo "  gather - baseline: $((gather - baseline)) bytes of flash for the core, the port and async.h's gather"
fi
