/* The portable core's implementation, in an object of its own so that `make firmware` can tell the
 * bytes it adds to an image. */
#define ASYNC_IMPLEMENTATION
#include "async.h"
