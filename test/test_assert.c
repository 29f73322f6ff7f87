/* ASYNC_ASSERT sees every misuse of the core's API with what went wrong, besides the code the caller gets.
 * This file compiles the core itself, with its own ASYNC_ASSERT and every function static (so that it
 * does not clash with libasync.a's), and without the hosted runtime's declarations. */
#pragma GCC diagnostic ignored "-Wunused-function" /* the core's functions this file does not call */
#define ASYNC_FREESTANDING
#define ASYNC_IMPLEMENTATION
#define ASYNC_API static
#define ASYNC_ASSERT(cond, msg) ((cond) ? (void)0 : assert_saw(msg))
static void assert_saw(const char *msg);
#include "test.h"

static char seen[1024];
static int nseen;

static void assert_saw(const char *msg) {
    nseen++;
    snprintf(seen + strlen(seen), sizeof seen - strlen(seen), "[%s]", msg);
}

static void clear(void) {
    seen[0] = '\0';
    nseen = 0;
}

static async_status noop_run(async_task *t) {
    ASYNC_BEGIN(t);
    ASYNC_END(t);
}

TEST(assert_sees_each_misuse_with_what_went_wrong) {
    static async_loop loop;
    static async_task task;
    static async_lock lock;
    static async_future fut;
    static async_queue q;
    static async_semaphore sem;
    intptr_t item;
    async_loop_init(&loop);
    clear();
    ASSERT_EQ(async_spawn(NULL, &task), ASYNC_EINVAL);
    ASSERT(strstr(seen, "async_spawn:") != NULL);
    clear();
    ASSERT_EQ(async_lock_release(&lock), ASYNC_EPERM);
    ASSERT_STR_EQ(seen, "[async_lock_release: !l->holder]");
    clear();
    ASSERT_EQ(async_future_set_value(&fut, 1), 0);
    ASSERT_EQ(nseen, 0); /* a correct call asserts nothing */
    ASSERT_EQ(async_future_set_value(&fut, 2), ASYNC_EBUSY);
    ASSERT_EQ(nseen, 1);
    clear();
    ASSERT_EQ(async_queue_get_nowait(NULL, &item), ASYNC_EINVAL);
    ASSERT_EQ(async_queue_task_done(&q), ASYNC_ERANGE);
    ASSERT_EQ(async_semaphore_init(&sem, -1, false), ASYNC_EINVAL);
    ASSERT_EQ(nseen, 3);
    clear();
    ASSERT_EQ(async_queue_get_nowait(&q, &item), ASYNC_EAGAIN); /* empty: would block, no misuse */
    ASSERT_EQ(async_semaphore_init(&sem, 1, true), 0);
    ASSERT_EQ(async_semaphore_try_acquire(&sem), 0);
    ASSERT_EQ(async_semaphore_try_acquire(&sem), ASYNC_EAGAIN); /* would block: no misuse */
    ASSERT_EQ(async_semaphore_release(&sem), 0);
    ASSERT_EQ(async_semaphore_release(&sem), ASYNC_ERANGE); /* BoundedSemaphore's ValueError */
    ASSERT_EQ(nseen, 1);
    clear();
    async_task_init(&task, noop_run);
    ASSERT_EQ(async_spawn(&loop, &task), 0);
    ASSERT_EQ(async_spawn(&loop, &task), ASYNC_EBUSY); /* already running */
    ASSERT(strstr(seen, "already running") != NULL);
    ASSERT_EQ(async_run(&loop, NULL), ASYNC_EINVAL);
    ASSERT_EQ(nseen, 2);
}
