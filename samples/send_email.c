/* Seed 004, exercise "Task 1": "Create an async function send_email() that takes 3 seconds to execute
 * and prints "Email Sent!"." The seed gives no code; the Python answer is:
 *
 *   async def send_email():
 *       await asyncio.sleep(3)
 *       print("Email Sent!")
 *
 *   asyncio.run(send_email())
 */
#include <stdio.h>

#include "async.h"

typedef struct {
    async_task task;
} send_email_frame;

static async_status send_email_run(async_task *t) {
    ASYNC_BEGIN(t);
    AWAIT_SLEEP(t, 3000);
    printf("Email Sent!\n");
    ASYNC_END(t);
}

/* send_email() */
static async_task *send_email(send_email_frame *f) {
    ASYNC_FRAME_INIT(f, send_email_run);
    return &f->task;
}

int main(void) {
    static send_email_frame m;
    return async_main(send_email(&m)) ? 1 : 0;
}
