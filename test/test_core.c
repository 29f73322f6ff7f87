static const test_case core_tests[] = {{NULL, NULL}};
