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

/* ---- the toolkit's samples ---- */

TEST(sample_async_with) {
    test_run_sample("async_with", 0, "Acquiring resource\nUsing resource\nReleasing resource\n", 3000);
}

TEST(sample_async_range) {
    test_run_sample("async_range", 0, "Generated: 1\nGenerated: 2\nGenerated: 3\nGenerated: 4\n", 2000);
}

TEST(sample_task_queue) {
    test_run_sample("task_queue", 0,
                    "Processed task: Task 0\nProcessed task: Task 1\nProcessed task: Task 2\n"
                    "Processed task: Task 3\nProcessed task: Task 4\nProcessed task: Task 5\n"
                    "Processed task: Task 6\nProcessed task: Task 7\nProcessed task: Task 8\n"
                    "Processed task: Task 9\n",
                    2817); /* ten durations from the sample's fixed seed, each within 100..500 ms */
}

TEST(sample_debugging) {
    test_run_sample("debugging", 0, "Caught an error: Oops!\nTask failed, but we caught it!\n", 2000);
}

TEST(sample_producer_consumer) {
    test_run_sample("producer_consumer", 0,
                    "Produced 1\nProduced 2\nProduced 3\nConsumed 1\nProduced 4\nConsumed 2\nProduced 5\n"
                    "Consumed 3\nProduced 6\nConsumed 4\nConsumed 5\nConsumed 6\nConsumer done\n",
                    1800); /* the consumer's pace: 6 x 0.3 s */
}

TEST(sample_retry_backoff) {
    test_run_sample("retry_backoff", 0,
                    "Attempt 1 failed: service unavailable; retrying in 0.5 s\n"
                    "Attempt 2 failed: service unavailable; retrying in 1.0 s\n"
                    "Result: OK\n",
                    2100);
}

/* Real time, as the slide measures it: the blocking call is what the sample is about. */
TEST(sample_performance_blocking_call_is_measured_and_named) {
    char *out, *err;
    double fast = -1, slow = -1;
    const char *second;
    ASSERT_EQ(test_capture_sample("performance", 0, &out, &err), 0);
    ASSERT(sscanf(out, "10 fast operations took %lf seconds\n", &fast) == 1);
    second = strchr(out, '\n');
    ASSERT(second && sscanf(second + 1, "1 slow operation took %lf seconds\n", &slow) == 1);
    ASSERT(fast >= 0.10 && fast < 0.15); /* concurrent: one 0.1 s wait, not ten */
    ASSERT(slow >= 1.00 && slow < 1.10);
    if (!strstr(err, "async: debug: slow_operation_run (samples/performance.c) blocked the loop for "))
        test_fail(__FILE__, __LINE__, "debug mode did not name the blocking call; stderr:\n%s", err);
    free(out);
    free(err);
}

TEST(sample_gather_tasks) {
    test_run_sample("gather_tasks", 0, "Task 1 completed\nTask 2 completed\n", 2000);
}

TEST(sample_say_hello) {
    test_run_sample("say_hello", 0, "Hello\nWorld\n", 2000);
}

TEST(sample_try_except) {
    test_run_sample("try_except", 0, "Caught an error: Something went wrong!\n", 1000);
}

/* File calls run on the thread pool, which takes no virtual time. */
TEST(sample_file_write_read) {
    test_run_sample("file_write_read", 0, "Hello, asyncio!\n", 0);
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
    TEST_ENTRY(sample_async_with)
    TEST_ENTRY(sample_async_range)
    TEST_ENTRY(sample_task_queue)
    TEST_ENTRY(sample_debugging)
    TEST_ENTRY(sample_producer_consumer)
    TEST_ENTRY(sample_retry_backoff)
    TEST_ENTRY(sample_performance_blocking_call_is_measured_and_named)
    TEST_ENTRY(sample_gather_tasks)
    TEST_ENTRY(sample_say_hello)
    TEST_ENTRY(sample_try_except)
    TEST_ENTRY(sample_file_write_read)
    {NULL, NULL}
};
