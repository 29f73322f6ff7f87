#!/usr/bin/env python3
"""Draws a trace of async.h (async_loop_trace_start, ASYNC_TRACE=path: Chrome trace-event JSON) as an SVG
timeline: a row per task with its steps (dark), its waits (light, labelled with what they waited for),
arrows from the task that woke another to that task's next step, and marks for errors (red) and
cancellations (orange). The standard library only.

    python3 tools/trace_svg.py trace.json out.svg [--title TEXT]
"""
import json
import sys
from html import escape

ROW, TOP, LEFT, WIDTH, RIGHT = 34, 58, 190, 900, 30
STEP_MIN = 3.0  # px: a step of a few ns is still seen


def load(path):
    with open(path, encoding="utf-8") as f:
        events = json.load(f)["traceEvents"]
    names, order = {}, {}
    steps, waits, instants, flows_s, flows_f = [], [], [], {}, {}
    open_waits = {}
    for e in events:
        ph, tid, ts = e["ph"], e["tid"], float(e["ts"])
        if ph == "M":
            if e["name"] == "thread_name":
                names[tid] = e["args"]["name"]
            elif e["name"] == "thread_sort_index":
                order[tid] = e["args"]["sort_index"]
        elif ph == "X":
            steps.append((tid, ts, float(e["dur"]), e["name"]))
        elif ph == "B":
            open_waits[tid] = (ts, e["name"], e.get("args", {}))
        elif ph == "E" and tid in open_waits:
            start, name, args = open_waits.pop(tid)
            waits.append((tid, start, ts, name, args, e.get("args", {})))
        elif ph == "i":
            instants.append((tid, ts, e["name"], e.get("args", {})))
        elif ph == "s":
            flows_s[e["id"]] = (tid, ts)
        elif ph == "f":
            flows_f[e["id"]] = (tid, ts)
    flows = [(flows_s[i], flows_f[i]) for i in flows_s if i in flows_f]
    tids = sorted(names, key=lambda t: (order.get(t, t), t))
    return tids, names, steps, waits, instants, flows


def nice_step(span):
    """A tick interval giving 4..10 ticks over span µs, and its unit."""
    for step in (1, 2, 5, 10, 20, 50, 100, 200, 500, 1e3, 2e3, 5e3, 1e4, 2e4, 5e4, 1e5, 2e5, 5e5, 1e6, 2e6, 5e6,
                 1e7, 6e7):
        if span / step <= 10:
            return step
    return span / 5


def label_time(us):
    """us as s, ms or µs, to 3 significant decimals (a virtual second minus its few ns is 1 s)."""
    if us >= 999500 or us == 0:
        return "%g s" % round(us / 1e6, 3)
    if us >= 999.5:
        return "%g ms" % round(us / 1e3, 3)
    return "%g µs" % round(us, 3)


def draw(path_in, path_out, title):
    tids, names, steps, waits, instants, flows = load(path_in)
    times = [s[1] + s[2] for s in steps] + [w[2] for w in waits] + [s[1] for s in steps]
    t0, t1 = 0.0, max(times) if times else 1.0
    span = max(t1 - t0, 1.0)
    x = lambda ts: LEFT + (ts - t0) / span * (WIDTH - LEFT - RIGHT)
    row = {tid: i for i, tid in enumerate(tids)}
    y = lambda tid: TOP + row[tid] * ROW
    height = TOP + len(tids) * ROW + 56
    out = []
    add = out.append
    add('<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" '
        'font-family="DejaVu Sans, Helvetica, Arial, sans-serif" font-size="12">' % (WIDTH, height, WIDTH, height))
    add('<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
        'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#6a3d9a"/></marker></defs>')
    add('<rect width="100%" height="100%" fill="#ffffff"/>')
    add('<text x="%d" y="24" font-size="15" font-weight="bold">%s</text>' % (12, escape(title)))
    # axis
    step = nice_step(span)
    axis_y = TOP + len(tids) * ROW + 6
    add('<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#555"/>' % (x(t0), axis_y, x(t1), axis_y))
    tick = 0.0
    while tick <= t1 + step / 1000:
        add('<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#ddd"/>' % (x(tick), TOP - 8, x(tick), axis_y))
        add('<text x="%.1f" y="%d" text-anchor="middle" fill="#333">%s</text>' % (x(tick), axis_y + 16,
                                                                                  label_time(tick)))
        tick += step
    # rows
    for tid in tids:
        add('<text x="%d" y="%d" text-anchor="end" dominant-baseline="middle">%s</text>'
            % (LEFT - 12, y(tid) + 10, escape(names[tid])))
        add('<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#eee"/>' % (LEFT, y(tid) + 10, WIDTH - RIGHT,
                                                                        y(tid) + 10))
    for tid, start, end, name, bargs, eargs in waits:
        if tid not in row:
            continue
        w = max(x(end) - x(start), 1.0)
        add('<rect x="%.1f" y="%d" width="%.1f" height="20" rx="3" fill="#a6cee3" stroke="#1f78b4" '
            'stroke-width="0.5"><title>%s: %s, woken by %s</title></rect>'
            % (x(start), y(tid), w, escape(name), label_time(end - start), escape(eargs.get("woken_by", "?"))))
        if w > 60:
            add('<text x="%.1f" y="%d" text-anchor="middle" dominant-baseline="middle" fill="#08306b">%s %s</text>'
                % (x(start) + w / 2, y(tid) + 10, escape(name), label_time(end - start)))
    for tid, ts, dur, name in steps:
        if tid not in row:
            continue
        add('<rect x="%.1f" y="%d" width="%.1f" height="20" fill="#1b7837"><title>step of %s</title></rect>'
            % (x(ts) - STEP_MIN / 2, y(tid), max(x(ts + dur) - x(ts), STEP_MIN), escape(name)))
    for (ftid, fts), (ttid, tts) in flows:
        if ftid not in row or ttid not in row:
            continue
        x1, y1, x2, y2 = x(fts), y(ftid) + 10, x(tts), y(ttid) + 10
        mid = max(x1, x2) + 18
        add('<path d="M%.1f,%.1f C%.1f,%.1f %.1f,%.1f %.1f,%.1f" fill="none" stroke="#6a3d9a" '
            'stroke-width="1.2" marker-end="url(#arrow)"/>' % (x1, y1, mid, y1, mid, y2, x2 + 2, y2))
    for tid, ts, name, args in instants:
        if tid not in row:
            continue
        colour = "#e31a1c" if name == "error" else "#ff7f00"
        add('<path d="M%.1f,%d l5,-7 l5,7 l-5,7 z" transform="translate(-5,0)" fill="%s"><title>%s %s: %s'
            '</title></path>' % (x(ts), y(tid) + 10, colour, escape(name), args.get("code", ""),
                                 escape(args.get("message", ""))))
    # legend
    ly = height - 18
    add('<rect x="%d" y="%d" width="14" height="10" fill="#1b7837"/><text x="%d" y="%d">step</text>'
        % (LEFT, ly - 9, LEFT + 18, ly))
    add('<rect x="%d" y="%d" width="14" height="10" fill="#a6cee3" stroke="#1f78b4" stroke-width="0.5"/>'
        '<text x="%d" y="%d">wait (what for, how long)</text>' % (LEFT + 70, ly - 9, LEFT + 88, ly))
    add('<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#6a3d9a" marker-end="url(#arrow)"/>'
        '<text x="%d" y="%d">woke</text>' % (LEFT + 270, ly - 4, LEFT + 295, ly - 4, LEFT + 302, ly))
    add('<path d="M%d,%d l5,-7 l5,7 l-5,7 z" fill="#e31a1c"/><text x="%d" y="%d">error</text>'
        % (LEFT + 360, ly - 4, LEFT + 376, ly))
    add('<path d="M%d,%d l5,-7 l5,7 l-5,7 z" fill="#ff7f00"/><text x="%d" y="%d">cancel</text>'
        % (LEFT + 430, ly - 4, LEFT + 446, ly))
    add('</svg>')
    with open(path_out, "w", encoding="utf-8") as f:
        f.write("\n".join(out) + "\n")


def main(argv):
    if len(argv) < 3:
        sys.stderr.write(__doc__)
        return 2
    title = "async.h trace"
    if "--title" in argv:
        title = argv[argv.index("--title") + 1]
    draw(argv[1], argv[2], title)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
