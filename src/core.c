/* The portable core's implementation, compiled once into libasync.a. */
#define ASYNC_IMPLEMENTATION
#include "async.h"
