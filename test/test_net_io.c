/* Waiting for a descriptor (AWAIT_READABLE, AWAIT_WRITABLE) on 127.0.0.1 and socket pairs: readiness,
 * deadlines, cancellation (the watcher stops), bad arguments, closed descriptors, two waits on one
 * async_io, loops that poll no descriptor, and the network layer's mapping of errno to the library's
 * codes. Real time, but every wait has a deadline in ms, so a broken test fails fast. */
#include "test.h"
#include "util.h"

#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

/* The errno mapping of the network layer (src/net_io.c), tested directly. */
int async__errno_code(int err);

/* ---- fd readiness ---- */

ASYNC_DEF(net_wait, int fd; int write; int32_t ms; async_io io; unsigned events;) {
    if (f->write)
        AWAIT_WRITABLE(t, &f->io, f->fd, f->ms);
    else
        AWAIT_READABLE(t, &f->io, f->fd, f->ms);
    f->events = async_io_events(&f->io);
} ASYNC_END_DEF

TEST(net_io_readable_when_data_arrives_writable_at_once) {
    static net_wait_frame r, w;
    int sv[2];
    ASSERT(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    ASSERT_EQ(run_real(ASYNC_CALL(net_wait, &w, sv[0], 1, 1000)), 0);
    ASSERT_EQ(w.events, ASYNC_IO_WRITE);
    ASSERT_EQ(write(sv[1], "x", 1), 1);
    ASSERT_EQ(run_real(ASYNC_CALL(net_wait, &r, sv[0], 0, 1000)), 0);
    ASSERT_EQ(r.events, ASYNC_IO_READ);
    close(sv[0]);
    close(sv[1]);
}

TEST(net_io_readable_deadline_raises_timedout) {
    static net_wait_frame r;
    int sv[2];
    double t0 = now_s();
    ASSERT(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    ASSERT_EQ(run_real(ASYNC_CALL(net_wait, &r, sv[0], 0, 30)), ASYNC_ETIMEDOUT);
    ASSERT(now_s() - t0 >= 0.025);
    ASSERT(now_s() - t0 < 10.0); /* the deadline, not something else: a generous bound for a busy machine */
    close(sv[0]);
    close(sv[1]);
}

TEST(net_io_readable_bad_arguments) {
    static net_wait_frame r;
    async_loop *virt = async_loop_new(ASYNC_LOOP_VIRTUAL_CLOCK);
    int sv[2];
    ASSERT_EQ(run_real(ASYNC_CALL(net_wait, &r, -1, 0, 10)), ASYNC_EBADF);
    ASSERT(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    /* the virtual clock polls no fd */
    ASSERT_EQ(async_run(virt, ASYNC_CALL(net_wait, &r, sv[0], 0, 10)), ASYNC_ENOTSUP);
    async_loop_free(virt);
    close(sv[0]);
    close(sv[1]);
}

ASYNC_DEF(net_cancel, int fd; net_wait_frame waiter; async_group g;) {
    ASYNC_SPAWN(t, &f->g, ASYNC_CALL(net_wait, &f->waiter, f->fd, 0, -1));
    AWAIT_SLEEP(t, 10);
    async_cancel(&f->waiter.task);
    AWAIT_GROUP(t, &f->g);
} ASYNC_END_DEF

TEST(net_io_cancel_stops_the_watcher) {
    static net_cancel_frame m;
    int sv[2];
    ASSERT(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    ASSERT_EQ(run_real(ASYNC_CALL(net_cancel, &m, sv[0])), 0);
    ASSERT(async_task_cancelled(&m.waiter.task));
    ASSERT(m.waiter.io.loop == NULL); /* watchers stopped */
    close(sv[0]);
    close(sv[1]);
}

/* ---- errors and misuse ---- */

static async_ms net_frozen_clock(async_loop *loop) {
    (void)loop;
    return 1000;
}

TEST(net_io_fd_waits_reject_bad_arguments) {
    static net_op_frame f;
    static async_io io;
    static async_loop loop; /* static: a loop set up by hand is never freed */
    int sv[2];
    ASSERT(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    ASSERT_EQ(net_do(net_wait_op(&f, NET_READABLE, NULL, sv[0], 10)), ASYNC_EINVAL);
    ASSERT_EQ(net_do(net_wait_op(&f, NET_IO_RAW, &io, sv[0], 10)), ASYNC_EINVAL); /* no events */
    net_wait_op(&f, NET_IO_RAW, &io, sv[0], 10)->events = 4;
    ASSERT_EQ(net_do(&f), ASYNC_EINVAL);
    net_wait_op(&f, NET_IO_RAW, &io, sv[0], 10)->events = ASYNC_IO_READ | 8;
    ASSERT_EQ(net_do(&f), ASYNC_EINVAL);
    ASSERT_EQ(net_do(net_wait_op(&f, NET_WRITABLE, &io, -1, 10)), ASYNC_EBADF);
    ASSERT(io.loop == NULL);
    /* a loop set up by hand, with a real clock but no libev under it: no fd waits there */
    ASSERT_EQ(async_loop_init(&loop), 0);
    async_loop_set_clock(&loop, net_frozen_clock);
    ASSERT_EQ(async_run(&loop, &net_wait_op(&f, NET_READABLE, &io, sv[0], 10)->task), 0);
    ASSERT_EQ(f.code, ASYNC_ENOTSUP);
    ASSERT(async_remote_new(&loop) == NULL);
    /* the same async_io waits again, for another event and on another fd */
    ASSERT_EQ(net_do(net_wait_op(&f, NET_WRITABLE, &io, sv[0], 1000)), 0);
    ASSERT_EQ(async_io_events(&io), ASYNC_IO_WRITE);
    ASSERT_EQ(write(sv[0], "x", 1), 1);
    ASSERT_EQ(net_do(net_wait_op(&f, NET_READABLE, &io, sv[1], 1000)), 0);
    ASSERT_EQ(async_io_events(&io), ASYNC_IO_READ);
    ASSERT_EQ(net_do(net_wait_op(&f, NET_IO_RAW, &io, sv[1], 1000)), ASYNC_EINVAL); /* events 0 again */
    net_wait_op(&f, NET_IO_RAW, &io, sv[1], 1000)->events = ASYNC_IO_READ | ASYNC_IO_WRITE;
    ASSERT_EQ(net_do(&f), 0);
    ASSERT_EQ(async_io_events(&io), ASYNC_IO_READ | ASYNC_IO_WRITE);
    close(sv[0]);
    close(sv[1]);
}

TEST(net_io_fd_wait_on_a_closed_descriptor_is_ebadf) {
    static net_op_frame f;
    async_loop *loop = async_loop_new(0); /* its own descriptors first: the closed number stays free */
    int sv[2];
    ASSERT(loop != NULL);
    ASSERT(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    close(sv[0]);
    net_wait_op(&f, NET_READABLE, &f.own_io, sv[0], 1000);
    ASSERT_EQ(async_run(loop, &f.task), 0);
    ASSERT_EQ(f.code, ASYNC_EBADF); /* libev could not watch it (EV_ERROR) */
    ASSERT(f.own_io.loop == NULL);
    async_loop_free(loop);
    close(sv[1]);
}

TEST(net_io_two_waits_on_one_async_io_second_is_ebusy) {
    static net_duo d;
    static async_io io;
    int sv[2];
    ASSERT(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    net_duo_init(&d, net_between_write_fd, 0)->fd = sv[1];
    d.with_b = true;
    net_wait_op(&d.a, NET_READABLE, &io, sv[0], 1000);
    net_wait_op(&d.b, NET_READABLE, &io, sv[0], 1000);
    ASSERT_EQ(run_real(&d.task), 0);
    ASSERT_EQ(d.b.code, ASYNC_EBUSY);
    ASSERT_EQ(d.a.code, 0); /* the first wait was left alone and saw the data */
    ASSERT_EQ(async_io_events(&io), ASYNC_IO_READ);
    close(sv[0]);
    close(sv[1]);
}

TEST(net_io_errno_codes_map_to_library_codes) {
    ASSERT_EQ(async__errno_code(EAGAIN), ASYNC_EAGAIN);
    ASSERT_EQ(async__errno_code(EWOULDBLOCK), ASYNC_EAGAIN);
    ASSERT_EQ(async__errno_code(ENFILE), ASYNC_EMFILE); /* the system's table full: as the process's */
    ASSERT_EQ(async__errno_code(EMFILE), ASYNC_EMFILE);
    ASSERT_EQ(async__errno_code(ENOBUFS), ASYNC_ENOMEM);
    ASSERT_EQ(async__errno_code(ETIMEDOUT), ASYNC_ETIMEDOUT);
    ASSERT_EQ(async__errno_code(ECONNREFUSED), ASYNC_ECONNREFUSED);
    ASSERT_EQ(async__errno_code(EHOSTUNREACH), ASYNC_EHOSTUNREACH);
    ASSERT_EQ(async__errno_code(ENOTSOCK), ASYNC_EIO); /* no code of ours: a generic I/O error */
    ASSERT_EQ(async__errno_code(EDOM), ASYNC_EIO);
}
