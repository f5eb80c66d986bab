/*
 * bare_mhd.c - the ceiling of bookrank's HTTP stack: a libmicrohttpd daemon in the same threading
 * mode as server/http.c (internal poll() loop with ITC, a thread pool of one thread per core, the
 * same connection limits) that answers every request with the same bytes from memory.
 *
 *   bare_mhd FILE [--threads N]
 *
 * Listens on 127.0.0.1 on an ephemeral port, prints "PORT <n>", and serves until stdin reaches
 * EOF or SIGINT/SIGTERM. The response carries the headers bookrank adds to every answer
 * (Content-Type, X-Content-Type-Options, Cache-Control), so the bytes on the wire match.
 */
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <microhttpd.h>

static struct MHD_Response *shared_response;

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **req_cls)
{
    (void)cls;
    (void)url;
    (void)method;
    (void)version;
    (void)upload_data;
    /* Answer on the second call, as bookrank does: a response queued on the first call (before
     * MHD knows the request has no body) makes MHD close the connection after it. */
    static int marker;
    if (!*req_cls) {
        *req_cls = &marker;
        return MHD_YES;
    }
    if (*upload_data_size) {
        *upload_data_size = 0;
        return MHD_YES;
    }
    return MHD_queue_response(conn, MHD_HTTP_OK, shared_response);
}

static char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 1 << 16, n = 0;
    char *data = malloc(cap);
    while (data) {
        size_t got = fread(data + n, 1, cap - n, f);
        n += got;
        if (got == 0)
            break;
        if (n == cap) {
            char *p = realloc(data, cap * 2);
            if (!p) {
                free(data);
                data = NULL;
                break;
            }
            data = p;
            cap *= 2;
        }
    }
    fclose(f);
    *len = n;
    return data;
}

int main(int argc, char **argv)
{
    const char *file = NULL;
    int threads = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
            threads = (int)strtol(argv[++i], NULL, 10);
        else
            file = argv[i];
    }
    if (!file) {
        fprintf(stderr, "usage: bare_mhd FILE [--threads N]\n");
        return 2;
    }
    if (threads <= 0) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        threads = cores > 0 ? (int)cores : 2;
    }
    size_t len;
    char *body = read_all(file, &len);
    if (!body) {
        perror(file);
        return 1;
    }
    shared_response = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_PERSISTENT);
    if (!shared_response)
        return 1;
    MHD_add_response_header(shared_response, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    MHD_add_response_header(shared_response, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(shared_response, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");

    /* Blocked before the daemon's threads start, so they inherit the mask and the main loop
     * below is the one that sees the signal. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);

    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    struct MHD_Daemon *d = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_USE_ITC, 0, NULL, NULL, on_request,
        NULL, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr, MHD_OPTION_THREAD_POOL_SIZE,
        (unsigned)threads, MHD_OPTION_CONNECTION_LIMIT, (unsigned)1024,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)256, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)30, MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)64 * 1024, MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "cannot start the daemon\n");
        return 1;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    printf("PORT %u\n", info ? (unsigned)info->port : 0u);
    fflush(stdout);

    /* Run until stdin closes (the driver is done or died) or SIGINT/SIGTERM arrives. */
    for (;;) {
        struct timespec zero = {0, 0};
        if (sigtimedwait(&set, NULL, &zero) > 0)
            break;
        struct pollfd pfd = {.fd = 0, .events = POLLIN};
        char c;
        if (poll(&pfd, 1, 200) > 0 && read(0, &c, 1) <= 0)
            break;
    }
    MHD_stop_daemon(d);
    MHD_destroy_response(shared_response);
    free(body);
    return 0;
}
