/* C libzmq reference for bench_pipeline: PUSH -> PULL over TCP loopback in one
 * process (a sender thread, the receiver on the main thread), two-frame messages
 * [3-byte topic, body] as distlog sends them. Each side has a context of its own,
 * so each has its own I/O thread, as two processes would: sharing one context
 * puts both sides' framing (and encryption) on one I/O thread.
 *
 *   zmq_push_pull null|curve MESSAGES BODY_BYTES
 *
 * Prints "c_per_s <messages per second>", timed from the first send to the last
 * message received. Build: cc -O2 zmq_push_pull.c -o zmq_push_pull -lzmq -lpthread
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

struct sender {
    char endpoint[64];
    int curve;
    char server_public[41], client_public[41], client_secret[41];
    long messages;
    size_t body;
};

static int check(int rc, const char *what) {
    if (rc != 0) {
        fprintf(stderr, "zmq_push_pull: %s: %s\n", what, zmq_strerror(zmq_errno()));
        exit(1);
    }
    return rc;
}

static void *send_all(void *arg) {
    struct sender *s = arg;
    void *ctx = zmq_ctx_new();
    void *push = zmq_socket(ctx, ZMQ_PUSH);
    int hwm = 100000;
    check(zmq_setsockopt(push, ZMQ_SNDHWM, &hwm, sizeof hwm), "ZMQ_SNDHWM");
    if (s->curve) {
        check(zmq_setsockopt(push, ZMQ_CURVE_SERVERKEY, s->server_public, 40), "ZMQ_CURVE_SERVERKEY");
        check(zmq_setsockopt(push, ZMQ_CURVE_PUBLICKEY, s->client_public, 40), "ZMQ_CURVE_PUBLICKEY");
        check(zmq_setsockopt(push, ZMQ_CURVE_SECRETKEY, s->client_secret, 40), "ZMQ_CURVE_SECRETKEY");
    }
    check(zmq_connect(push, s->endpoint), "zmq_connect");
    char *body = malloc(s->body);
    memset(body, 'x', s->body);
    for (long i = 0; i < s->messages; i++) {
        if (zmq_send(push, "PLJ", 3, ZMQ_SNDMORE) < 0 || zmq_send(push, body, s->body, 0) < 0) {
            fprintf(stderr, "zmq_push_pull: send: %s\n", zmq_strerror(zmq_errno()));
            exit(1);
        }
    }
    free(body);
    int linger = -1;
    zmq_setsockopt(push, ZMQ_LINGER, &linger, sizeof linger);
    zmq_close(push);
    zmq_ctx_term(ctx);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 4 || (strcmp(argv[1], "null") && strcmp(argv[1], "curve"))) {
        fprintf(stderr, "usage: zmq_push_pull null|curve MESSAGES BODY_BYTES\n");
        return 2;
    }
    struct sender s = {0};
    s.curve = strcmp(argv[1], "curve") == 0;
    s.messages = atol(argv[2]);
    s.body = (size_t)atol(argv[3]);
    if (s.messages <= 0) {
        fprintf(stderr, "zmq_push_pull: MESSAGES must be a positive number, got %s\n", argv[2]);
        return 2;
    }
    void *ctx = zmq_ctx_new();
    void *pull = zmq_socket(ctx, ZMQ_PULL);
    int hwm = 100000;
    check(zmq_setsockopt(pull, ZMQ_RCVHWM, &hwm, sizeof hwm), "ZMQ_RCVHWM");
    char server_secret[41];
    if (s.curve) {
        if (!zmq_has("curve")) {
            fprintf(stderr, "zmq_push_pull: this libzmq has no CURVE\n");
            return 3;
        }
        check(zmq_curve_keypair(s.server_public, server_secret), "zmq_curve_keypair");
        check(zmq_curve_keypair(s.client_public, s.client_secret), "zmq_curve_keypair");
        int server = 1;
        check(zmq_setsockopt(pull, ZMQ_CURVE_SERVER, &server, sizeof server), "ZMQ_CURVE_SERVER");
        check(zmq_setsockopt(pull, ZMQ_CURVE_SECRETKEY, server_secret, 40), "ZMQ_CURVE_SECRETKEY");
    }
    check(zmq_bind(pull, "tcp://127.0.0.1:*"), "zmq_bind");
    size_t len = sizeof s.endpoint;
    check(zmq_getsockopt(pull, ZMQ_LAST_ENDPOINT, s.endpoint, &len), "ZMQ_LAST_ENDPOINT");

    char *buf = malloc(s.body + 16);
    double start = now();
    pthread_t t;
    if (pthread_create(&t, NULL, send_all, &s) != 0) {
        fprintf(stderr, "zmq_push_pull: pthread_create failed\n");
        return 1;
    }
    long bytes = 0;
    for (long i = 0; i < s.messages * 2; i++) {
        int n = zmq_recv(pull, buf, s.body + 16, 0);
        if (n < 0) {
            fprintf(stderr, "zmq_push_pull: recv: %s\n", zmq_strerror(zmq_errno()));
            return 1;
        }
        bytes += n;
    }
    double elapsed = now() - start;
    pthread_join(t, NULL);
    if (bytes != s.messages * (long)(3 + s.body)) {
        fprintf(stderr, "zmq_push_pull: received %ld bytes, expected %ld\n", bytes,
                s.messages * (long)(3 + s.body));
        return 1;
    }
    printf("c_per_s %.0f\n", s.messages / elapsed);
    free(buf);
    zmq_close(pull);
    zmq_ctx_term(ctx);
    return 0;
}
