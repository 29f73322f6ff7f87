#!/usr/bin/env python3
"""The line table: each sample that mirrors a code block of the seed texts, its C lines against the
block's Python lines.

    python3 mk/lines.py [--seeds DIR] [--samples DIR]      (make lines)

C lines: without blank lines, comments and #include lines. Python lines: without blank lines, comment
lines and import lines (`import x`, `from x import y`). A sample counts once, against the first block
listed for it below; a block that a sample also mirrors is shown under the table, outside the figures.
Every ```python block of the seeds must be listed here, mirrored or not (with the reason): the script
fails on a block it does not know, and on a listed line that finds no block or more than one.
"""
import argparse
import os
import re
import statistics
import sys

# sample -> seed block: (sample, seed file number, a line that occurs in that block alone). The first
# row of a sample is the one it is measured against.
MIRRORS = [
    ("hello_world", "000", "async def hello_world():"),
    ("create_task", "000", 'task2 = asyncio.create_task(greet("Bob"))'),
    ("risky_task", "000", 'raise ValueError("An error occurred!")'),
    ("gather_list", "000", 'return "Task 1 complete"'),
    ("greet_value", "001", 'result = await greet("Alice")'),
    ("countdown", "001", "async def countdown(n):"),
    ("fetch_data", "001", "async def process_url(url):"),
    ("gather", "001", 'task("A", 3),'),
    ("return_exceptions", "001", "return_exceptions=True"),
    ("async_with", "001", "class AsyncResource:"),
    ("web_scraping", "001", "async def fetch_url(session, url):"),
    ("async_range", "001", "async def async_range(start, stop):"),
    ("to_thread", "001", "def sync_operation(duration):"),
    ("file_io", "001", "await write_file('test.txt', 'Hello, Async World!')"),
    ("task_queue", "001", "class AsyncTaskQueue:"),
    ("debugging", "001", "async def problematic_coroutine():"),
    ("performance", "001", "async def slow_operation():"),
    ("tasks_sequential", "003", "task_1 = asyncio.create_task(task1())"),
    ("gather_tasks", "003", "await asyncio.gather(task1(), task2())"),
    ("file_write_read", "003", "await write_file('example.txt', 'Hello, asyncio!')"),
    ("fetch_json", "003", "await fetch_data(session, 'https://jsonplaceholder.typicode.com/posts/1')"),
    ("faulty_coroutine", "003", "async def faulty_coroutine():"),
    ("cancel", "003", "async def long_running_task():"),
    ("say_hello", "004", "await asyncio.sleep(2)  # Simulating async task"),
    ("gather_first", "004", "await asyncio.gather(task1(), task2())"),
    ("try_except", "004", 'raise ValueError("Something went wrong!")'),
    # blocks that a sample above mirrors too
    ("hello_world", "003", "# World"),
    ("hello_world", "003", "asyncio.run(say_hello())  # This starts the event loop"),
    ("fetch_json", "000", 'url = "https://api.github.com"'),
]

# Blocks that no sample mirrors: (seed, a line of the block, why).
UNMIRRORED = [
    ("003", "async def my_coroutine():", "syntax only: `async def my_coroutine(): pass` does nothing"),
    ("003", "await some_coroutine()", "syntax only: one await of an undefined coroutine"),
    ("003", "await say_hello()", "a fragment: main() awaiting the say_hello above it, as greet_value and "
                                 "faulty_coroutine await a coroutine"),
]


def python_blocks(path):
    """The ```python blocks of a seed text: (first line number, text dedented)."""
    blocks, cur, start, fence = [], None, 0, None
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            s = line.strip()
            if fence is None:
                if s.startswith("```"):
                    fence = "python" if s[3:].strip() == "python" else "other"
                    cur, start = [], n + 1
            elif s == "```":
                if fence == "python":
                    indent = min((len(l) - len(l.lstrip()) for l in cur if l.strip()), default=0)
                    blocks.append((start, "".join(l[indent:] if l.strip() else "\n" for l in cur)))
                fence = None
            else:
                cur.append(line)
    return blocks


IMPORT = re.compile(r"^(import\s+\w|from\s+[\w.]+\s+import\s)")


def python_lines(text):
    out = []
    for line in text.splitlines():
        s = line.strip()
        if s and not s.startswith("#") and not IMPORT.match(s):
            out.append(line)
    return out


def c_lines(text):
    """The lines of C text that hold code: comments removed (strings and characters respected), then
    blank lines and #include lines left out."""
    code, i, n, state = [], 0, len(text), None
    while i < n:
        ch, nxt = text[i], text[i + 1] if i + 1 < n else ""
        if state is None:
            if ch == "/" and nxt == "*":
                state, i = "block", i + 2
                continue
            if ch == "/" and nxt == "/":
                state, i = "line", i + 2
                continue
            if ch in "\"'":
                state = ch
            code.append(ch)
        elif state == "block":
            if ch == "*" and nxt == "/":
                state, i = None, i + 2
                continue
            if ch == "\n":
                code.append(ch)
        elif state == "line":
            if ch == "\n":
                state = None
                code.append(ch)
        else:  # inside a string or character constant
            code.append(ch)
            if ch == "\\":
                code.append(nxt)
                i += 2
                continue
            if ch == state:
                state = None
        i += 1
    return [l for l in "".join(code).splitlines() if l.strip() and not re.match(r"\s*#\s*include\b", l)]


def find_block(blocks, seed, needle):
    hits = [b for b in blocks[seed] if needle in b[1]]
    if len(hits) != 1:
        sys.exit("lines.py: %r finds %d blocks in seed %s, not 1" % (needle, len(hits), seed))
    return hits[0]


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", default=os.path.join(here, "..", "..", "shared", "seeds"),
                    help="the folder of the seed texts (default: ../shared/seeds beside the checkout)")
    ap.add_argument("--samples", default=os.path.join(here, "..", "samples"))
    ap.add_argument("--show", metavar="SAMPLE", help="print the lines counted for SAMPLE and its block")
    args = ap.parse_args()

    blocks = {}
    for name in sorted(os.listdir(args.seeds)):
        m = re.match(r"(\d{3})_.*\.txt$", name)
        if m:
            blocks[m.group(1)] = python_blocks(os.path.join(args.seeds, name))
    if not blocks:
        sys.exit("lines.py: no seed texts (NNN_*.txt) in %s: give --seeds DIR (make lines SEEDS=DIR)" % args.seeds)

    seen, rows, also, missing = set(), [], [], []
    for sample, seed, needle in MIRRORS:
        start, text = find_block(blocks, seed, needle)
        key = (seed, start)
        if key in seen:
            sys.exit("lines.py: seed %s line %d is listed twice" % key)
        seen.add(key)
        py = len(python_lines(text))
        first = python_lines(text)[0].strip()
        path = os.path.join(args.samples, sample + ".c")
        if not os.path.exists(path):
            missing.append((sample, seed, start, py))
            continue
        with open(path, encoding="utf-8") as fh:
            counted = c_lines(fh.read())
        c = len(counted)
        if args.show == sample and not any(r[0] == sample for r in rows):
            print("".join("    %s\n" % l for l in python_lines(text)) + "".join("  | %s\n" % l for l in counted))
        row = (sample, "%s:%d" % (seed, start), first, c, py, c / py)
        (also if any(r[0] == sample for r in rows) else rows).append(row)
    for seed, needle, why in UNMIRRORED:
        seen.add((seed, find_block(blocks, seed, needle)[0]))
    unknown = [(s, b[0], python_lines(b[1])[0].strip()) for s in sorted(blocks) for b in blocks[s]
               if (s, b[0]) not in seen]
    if unknown:
        for s, line, first in unknown:
            print("lines.py: seed %s line %d is listed nowhere: %s" % (s, line, first), file=sys.stderr)
        sys.exit(1)

    fmt = "%-22s %-8s %-44s %4s %4s %6s"
    print(fmt % ("sample", "seed", "block", "C", "Py", "ratio"))
    for r in rows:
        print(fmt % (r[0] + ".c", r[1], r[2][:44], r[3], r[4], "%.2fx" % r[5]))
    ratios = [r[5] for r in rows]
    if ratios:
        worst = max(rows, key=lambda r: r[5])
        print("%d samples: median %.2fx, maximum %.2fx (%s.c)" % (len(ratios), statistics.median(ratios),
                                                                worst[5], worst[0]))
    if also:
        print("\nalso mirrored (not in the figures):")
        for r in also:
            print(fmt % (r[0] + ".c", r[1], r[2][:44], r[3], r[4], "%.2fx" % r[5]))
    if missing:
        print("\nno sample yet:")
        for sample, seed, start, py in missing:
            print("  %s.c for seed %s:%d (%d Python lines)" % (sample, seed, start, py))
    print("\nmirrored by no sample:")
    for seed, needle, why in UNMIRRORED:
        print("  seed %s:%d %s" % (seed, find_block(blocks, seed, needle)[0], why))


if __name__ == "__main__":
    main()
