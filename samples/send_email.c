/* Seed 004, exercise "Task 1": an async function send_email() that takes 3 seconds and prints "Email
 * Sent!". The seed gives no code: the Python answer is `await asyncio.sleep(3); print("Email Sent!")`. */
#include <stdio.h>

#include "async.h"

ASYNC_DEF(send_email) {
    AWAIT_SLEEP(t, 3000);
    printf("Email Sent!\n");
} ASYNC_END_DEF

ASYNC_MAIN(send_email)
