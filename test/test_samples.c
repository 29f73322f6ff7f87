/* Every sample in samples/ run under the virtual clock: the seed's lines, in the seed's order, in the
 * seed's time. */

TEST(sample_gather) {
    test_run_sample("gather", 0,
                    "Task A started\n"
                    "Task B started\n"
                    "Task C started\n"
                    "Task C completed\n"
                    "Task B completed\n"
                    "Task A completed\n"
                    "['Result of A', 'Result of B', 'Result of C']\n",
                    3000);
}

static const test_case samples_tests[] = {
    TEST_ENTRY(sample_gather)
    {NULL, NULL}
};
