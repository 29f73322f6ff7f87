/* Not part of any image: `make firmware` compiles it for each board and reads the sizes of these arrays
 * with nm, to print what the core's types cost on that board. */
#include "async.h"

char size_async_task[sizeof(async_task)];
char size_async_loop[sizeof(async_loop)];
char size_async_future[sizeof(async_future)];
char size_async_group[sizeof(async_group)];
char size_async_timeout[sizeof(async_timeout)];
char size_async_interrupt[sizeof(async_interrupt)];
