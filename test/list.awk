# Writes the runner's list of tests (C) from the TEST and TEST_TAGGED lines of the test files it reads,
# in the order given: mk/test.mk runs it over test/test_*.c. A name must begin with its file's suite and
# an underscore (test/test_sync.c: sync_*) and must not repeat; otherwise it says where, and fails.
FNR == 1 {
    suite = FILENAME
    sub(/^(.*\/)?test_/, "", suite)
    sub(/\.c$/, "", suite)
}
/^TEST(_TAGGED)?\(/ {
    name = $0
    sub(/^TEST(_TAGGED)?\([ \t]*/, "", name)
    sub(/[^A-Za-z0-9_].*$/, "", name)
    if (index(name, suite "_") != 1) {
        printf "%s:%d: test %s: the name must begin with %s_ (the file's suite)\n", FILENAME, FNR, name, suite > "/dev/stderr"
        bad = 1
    }
    if (name in seen) {
        printf "%s:%d: test %s is defined twice\n", FILENAME, FNR, name > "/dev/stderr"
        bad = 1
    }
    seen[name] = 1
    names[n++] = name
}
END {
    if (bad) exit 1
    print "/* The runner's list of tests, written by mk/test.mk from the TEST lines of test/test_*.c. */"
    print "#include \"test.h\""
    print ""
    for (i = 0; i < n; i++) print "extern const test_case test_case_" names[i] ";"
    print ""
    print "const test_case *const test_list[] = {"
    for (i = 0; i < n; i++) print "    &test_case_" names[i] ","
    print "    NULL"
    print "};"
}
