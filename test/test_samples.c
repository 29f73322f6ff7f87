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

TEST(sample_hello_world) {
    test_run_sample("hello_world", 0, "Hello\nWorld\n", 1000);
}

TEST(sample_create_task) {
    test_run_sample("create_task", 0, "Hello, Alice!\nHello, Bob!\n", 1000);
}

TEST(sample_greet_value) {
    test_run_sample("greet_value", 0, "Hello, Alice!\n", 1000);
}

TEST(sample_countdown) {
    test_run_sample("countdown", 0, "5\n4\n3\n2\n1\nCountdown finished!\n", 5000);
}

TEST(sample_fetch_data) {
    test_run_sample("fetch_data", 0,
                    "Fetching data from example.com\n"
                    "Fetching data from python.org\n"
                    "Processed: Data from example.com\n"
                    "Processed: Data from python.org\n",
                    2000);
}

TEST(sample_return_exceptions) {
    test_run_sample("return_exceptions", 0, "Results: [5.0, ZeroDivisionError('division by zero')]\n", 1000);
}

TEST(sample_risky_task) {
    test_run_sample("risky_task", 0, "Caught an error: An error occurred!\n", 1000);
}

TEST(sample_faulty_coroutine) {
    test_run_sample("faulty_coroutine", 0, "Caught an exception: An error occurred!\n", 1000);
}

TEST(sample_cancel) {
    test_run_sample("cancel", 0, "Task was cancelled\nCaught task cancellation\n", 1000);
}

TEST(sample_gather_first) {
    test_run_sample("gather_first", 0, "Task 2 completed\nTask 1 completed\n", 2000);
}

TEST(sample_send_email) {
    test_run_sample("send_email", 0, "Email Sent!\n", 3000);
}

TEST(sample_gather_list) {
    test_run_sample("gather_list", 0, "['Task 1 complete', 'Task 2 complete']\n", 2000);
}

TEST(sample_tasks_sequential) {
    test_run_sample("tasks_sequential", 0, "Task 1 completed\nTask 2 completed\n", 2000);
}

static const test_case samples_tests[] = {
    TEST_ENTRY(sample_gather)
    TEST_ENTRY(sample_hello_world)
    TEST_ENTRY(sample_create_task)
    TEST_ENTRY(sample_greet_value)
    TEST_ENTRY(sample_countdown)
    TEST_ENTRY(sample_fetch_data)
    TEST_ENTRY(sample_return_exceptions)
    TEST_ENTRY(sample_risky_task)
    TEST_ENTRY(sample_faulty_coroutine)
    TEST_ENTRY(sample_cancel)
    TEST_ENTRY(sample_gather_first)
    TEST_ENTRY(sample_send_email)
    TEST_ENTRY(sample_gather_list)
    TEST_ENTRY(sample_tasks_sequential)
    {NULL, NULL}
};
