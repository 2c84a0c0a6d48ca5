/*
 * udp-load: an open-loop UDP load generator for latency benchmarks (bench/siq-server.ts).
 *
 *   udp-load HOST PORT RATE SECONDS PACKETS [ID_OFFSET]
 *
 * PACKETS is a file of queries, each a 2-octet big-endian length and the octets. The generator
 * sends RATE queries per second for SECONDS, cycling through the file and writing a 16-bit ID in
 * network order at ID_OFFSET (default 2) of each, paced against absolute times (it sleeps between
 * sends rather than spinning, so it leaves the CPU to the server). A second thread receives the
 * answers and measures each one's latency from its own send time (CLOCK_MONOTONIC), matched by the
 * ID read back from the same offset. After the last send it waits 200 ms for stragglers and prints
 * one JSON line: sent, answered, lost, p50Ms, p99Ms, maxMs, and its own CPU time.
 *
 * Written in C because a Node generator costs a core of its own at these rates: on a 2-core
 * machine it competes with the server it measures, and its event loop adds to the tail it reports.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_PACKETS 65536
#define MAX_LEN 2048

static int sock;
static size_t id_offset = 2;
static uint64_t sent_at[65536];
static double *samples;
static size_t capacity, answered;
static volatile int stopping;

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void die(const char *what) {
  fprintf(stderr, "udp-load: %s: %s\n", what, strerror(errno));
  exit(2);
}

static void *receiver(void *arg) {
  (void)arg;
  unsigned char buf[MAX_LEN];
  while (!stopping) {
    ssize_t n = recv(sock, buf, sizeof buf, 0);
    uint64_t t = now_ns();
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR || errno == ECONNREFUSED) continue;
      die("recv");
    }
    if ((size_t)n < id_offset + 2) continue;
    unsigned id = ((unsigned)buf[id_offset] << 8) | buf[id_offset + 1];
    uint64_t s = __atomic_load_n(&sent_at[id], __ATOMIC_ACQUIRE);
    if (s == 0 || answered >= capacity) continue;
    samples[answered++] = (double)(t - s) / 1e6;
  }
  return NULL;
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double pct(double p) {
  if (answered == 0) return 0;
  size_t i = (size_t)((double)answered * p);
  if (i >= answered) i = answered - 1;
  return samples[i];
}

int main(int argc, char **argv) {
  if (argc < 6) {
    fprintf(stderr, "usage: udp-load HOST PORT RATE SECONDS PACKETS [ID_OFFSET]\n");
    return 2;
  }
  const char *host = argv[1];
  int port = atoi(argv[2]);
  double rate = atof(argv[3]);
  double seconds = atof(argv[4]);
  if (argc > 6) id_offset = (size_t)atoi(argv[6]);
  if (port <= 0 || port > 65535 || !(rate > 0) || !(seconds > 0) || id_offset > MAX_LEN - 2) {
    fprintf(stderr, "udp-load: bad arguments\n");
    return 2;
  }

  FILE *f = fopen(argv[5], "rb");
  if (!f) die(argv[5]);
  static unsigned char packets[MAX_PACKETS][MAX_LEN];
  static size_t lens[MAX_PACKETS];
  size_t count = 0;
  unsigned char hdr[2];
  while (count < MAX_PACKETS && fread(hdr, 1, 2, f) == 2) {
    size_t len = ((size_t)hdr[0] << 8) | hdr[1];
    if (len > MAX_LEN || len < id_offset + 2 || fread(packets[count], 1, len, f) != len) {
      fprintf(stderr, "udp-load: %s: bad packet %zu\n", argv[5], count);
      return 2;
    }
    lens[count++] = len;
  }
  fclose(f);
  if (count == 0) {
    fprintf(stderr, "udp-load: %s: no packets\n", argv[5]);
    return 2;
  }

  prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
  sock = socket(AF_INET, SOCK_DGRAM, 0);
  if (sock < 0) die("socket");
  int size = 4 << 20;
  setsockopt(sock, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
  setsockopt(sock, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
  struct timeval tv = {0, 100000};
  setsockopt(sock, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  struct sockaddr_in to = {0};
  to.sin_family = AF_INET;
  to.sin_port = htons((uint16_t)port);
  if (inet_pton(AF_INET, host, &to.sin_addr) != 1) {
    fprintf(stderr, "udp-load: bad IPv4 address %s\n", host);
    return 2;
  }
  if (connect(sock, (struct sockaddr *)&to, sizeof to) < 0) die("connect");

  uint64_t total = (uint64_t)(rate * seconds);
  capacity = (size_t)total + 1024;
  samples = calloc(capacity, sizeof *samples);
  if (!samples) die("calloc");
  pthread_t rx;
  if (pthread_create(&rx, NULL, receiver, NULL) != 0) die("pthread_create");

  uint64_t t0 = now_ns();
  double interval = 1e9 / rate;
  uint64_t sent = 0;
  unsigned id = 0;
  while (sent < total) {
    uint64_t now = now_ns();
    uint64_t due = (uint64_t)((double)(now - t0) / interval) + 1;
    if (due > total) due = total;
    while (sent < due) {
      id = (id + 1) & 0xffff;
      if (id == 0) id = 1;
      unsigned char *p = packets[sent % count];
      p[id_offset] = (unsigned char)(id >> 8);
      p[id_offset + 1] = (unsigned char)(id & 0xff);
      __atomic_store_n(&sent_at[id], now_ns(), __ATOMIC_RELEASE);
      if (send(sock, p, lens[sent % count], 0) < 0 && errno != ENOBUFS && errno != ECONNREFUSED) die("send");
      sent++;
    }
    uint64_t next = t0 + (uint64_t)((double)sent * interval);
    struct timespec ts = {(time_t)(next / 1000000000ull), (long)(next % 1000000000ull)};
    clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
  }
  struct timespec wait = {0, 200000000};
  nanosleep(&wait, NULL);
  stopping = 1;
  pthread_join(rx, NULL);

  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  double cpu_ms = (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
                  (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
  qsort(samples, answered, sizeof *samples, cmp);
  printf("{\"rate\":%.0f,\"sent\":%llu,\"answered\":%zu,\"lost\":%lld,\"p50Ms\":%.3f,\"p99Ms\":%.3f,"
         "\"maxMs\":%.3f,\"generatorCpuMs\":%.0f}\n",
         rate, (unsigned long long)sent, answered, (long long)sent - (long long)answered, pct(0.5), pct(0.99),
         answered ? samples[answered - 1] : 0.0, cpu_ms);
  return 0;
}
