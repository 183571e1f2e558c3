// malloc_bench: malloc/free timing for 64-byte objects, comparable to the
// Go benchmarks in package bench (ns/op = one malloc + one free).
//
// Build (see run.sh, which does all three):
//   gcc -O2 -pthread malloc_bench.c -o mb_glibc
//   gcc -O2 -pthread -DUSE_JEMALLOC malloc_bench.c -o mb_jemalloc -ljemalloc
//   gcc -O2 -pthread -DUSE_MIMALLOC malloc_bench.c -o mb_mimalloc -lmimalloc
//
// Usage: malloc_bench [-n pairs] [-t threads] [-r reps] [-b bench]
//   -n  objects per timed run (default 20000000; cross64/handoff use n/4)
//   -t  threads for pair64-parallel (default: online CPUs)
//   -r  timed repetitions; the median is printed (default 5)
//   -b  run only this benchmark (pair64, pair64-parallel, bulk64, cross64,
//       handoff); with -b, n is used as is for every benchmark
//
// Benchmarks (each in its own child process, run reps times after a
// warm-up; the median is printed):
//   pair64           one thread: p = malloc(64); write p[0]; free(p)
//   pair64-parallel  the same on T threads at once; ns/op = wall / total
//                    pairs (like Go's b.RunParallel)
//   bulk64           64 mallocs then 64 frees; ns/op per object
//   cross64          malloc on one thread, free on another (SPSC ring,
//                    published in groups of 16, like BenchmarkCrossP64)
//   handoff          cross64's transport alone, no malloc/free
//
// Output: one line per benchmark, e.g.
//   c/glibc pair64 ns/op=12.30 min=12.10 reps=5
// preceded by an "allocator:" line that proves which malloc is in use.
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#if defined(USE_JEMALLOC)
#include <jemalloc/jemalloc.h>
#define ALLOC_NAME "jemalloc"
#elif defined(USE_MIMALLOC)
#include <mimalloc.h>
#define ALLOC_NAME "mimalloc"
#else
#include <gnu/libc-version.h>
#define ALLOC_NAME "glibc"
#endif

#define OBJ 64
#define BULK 64
#define RING 256
#define PUBLISH 16

// sink keeps every pointer observable, so the compiler cannot pair up
// and delete a malloc/free (GCC does that for unused allocations). It is
// thread-local so parallel threads do not share its cache line.
static _Thread_local void *volatile sink;

// spin_wait busy-waits briefly, then yields (the machine may be shared),
// like spinWait in the Go harness.
static void spin_wait(int *spins) {
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#endif
	if (++*spins > 64) {
		sched_yield();
		*spins = 0;
	}
}

static double now_ns(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static void touch(void *p, long i) {
	((volatile char *)p)[0] = (char)i;
	sink = p;
}

// ---- allocator identification and verification ----

static void verify_allocator(void) {
	char info[256];
	int ok = 0;
#if defined(USE_JEMALLOC)
	const char *ver = NULL;
	size_t sz = sizeof(ver);
	if (mallctl("version", &ver, &sz, NULL, 0) != 0)
		ver = "?";
	// thread.allocated counts bytes malloc'ed by this thread through
	// jemalloc: it only advances if malloc() really is jemalloc's.
	uint64_t before = 0, after = 0;
	sz = sizeof(before);
	mallctl("thread.allocated", &before, &sz, NULL, 0);
	void *p = malloc(OBJ);
	touch(p, 1);
	sz = sizeof(after);
	mallctl("thread.allocated", &after, &sz, NULL, 0);
	free(p);
	ok = after - before >= OBJ;
	snprintf(info, sizeof info, "jemalloc %s (mallctl thread.allocated +%llu after malloc(64))",
		 ver, (unsigned long long)(after - before));
#elif defined(USE_MIMALLOC)
	// A pointer from plain malloc() must lie in mimalloc's heap.
	void *p = malloc(OBJ);
	touch(p, 1);
	ok = mi_is_in_heap_region(p);
	free(p);
	snprintf(info, sizeof info, "mimalloc %d (mi_version), malloc() pointer in mimalloc heap: %s",
		 mi_version(), ok ? "yes" : "NO");
#else
	// glibc's arena statistics only move if malloc() is glibc's.
	struct mallinfo2 before = mallinfo2();
	void *p = malloc(4 * OBJ * 1024); // > tcache/fastbin, lands in the arena
	touch(p, 1);
	struct mallinfo2 after = mallinfo2();
	free(p);
	ok = after.uordblks > before.uordblks || after.hblkhd > before.hblkhd;
	snprintf(info, sizeof info, "glibc %s (mallinfo2 reflects malloc(): %s)",
		 gnu_get_libc_version(), ok ? "yes" : "NO");
#endif
	printf("c/%s allocator: %s\n", ALLOC_NAME, info);
	if (!ok) {
		fprintf(stderr, "malloc_bench: malloc() is not %s's\n", ALLOC_NAME);
		exit(2);
	}
}

// ---- benchmarks; each returns ns per object ----

static double bench_pair(long n) {
	double t0 = now_ns();
	for (long i = 0; i < n; i++) {
		void *p = malloc(OBJ);
		touch(p, i);
		free(p);
	}
	return (now_ns() - t0) / (double)n;
}

static double bench_bulk(long n) {
	void *objs[BULK];
	long batches = n / BULK;
	if (batches < 1)
		batches = 1;
	double t0 = now_ns();
	for (long b = 0; b < batches; b++) {
		for (int j = 0; j < BULK; j++) {
			objs[j] = malloc(OBJ);
			touch(objs[j], j);
		}
		for (int j = 0; j < BULK; j++)
			free(objs[j]);
	}
	return (now_ns() - t0) / (double)(batches * BULK);
}

struct par_arg {
	long n;
	pthread_barrier_t *start;
	double t0, t1; // this thread's start and end
};

static void *par_worker(void *a) {
	struct par_arg *pa = a;
	pthread_barrier_wait(pa->start);
	pa->t0 = now_ns();
	for (long i = 0; i < pa->n; i++) {
		void *p = malloc(OBJ);
		touch(p, i);
		free(p);
	}
	pa->t1 = now_ns();
	return NULL;
}

static double bench_parallel(long n, int threads) {
	pthread_t th[threads];
	struct par_arg args[threads];
	pthread_barrier_t start;
	long per = (n + threads - 1) / threads; // >= 1 pair per thread
	pthread_barrier_init(&start, NULL, threads + 1);
	for (int i = 0; i < threads; i++) {
		args[i] = (struct par_arg){.n = per, .start = &start};
		pthread_create(&th[i], NULL, par_worker, &args[i]);
	}
	pthread_barrier_wait(&start);
	// Wall time from the first thread starting to the last finishing
	// (timing in the main thread would race with the workers).
	double t0 = 0, t1 = 0;
	for (int i = 0; i < threads; i++) {
		pthread_join(th[i], NULL);
		if (i == 0 || args[i].t0 < t0)
			t0 = args[i].t0;
		if (i == 0 || args[i].t1 > t1)
			t1 = args[i].t1;
	}
	pthread_barrier_destroy(&start);
	return (t1 - t0) / (double)(per * threads);
}

struct ring {
	_Alignas(64) uint64_t n; // read-only while running
	int do_free;
	_Alignas(64) _Atomic uint64_t tail;
	_Alignas(64) _Atomic uint64_t head;
	_Alignas(64) void *buf[RING];
};

static void *cross_consumer(void *a) {
	struct ring *r = a;
	const uint64_t n = r->n;
	const int do_free = r->do_free;
	uint64_t h = 0;
	int spins = 0;
	while (h < n) {
		uint64_t t = atomic_load_explicit(&r->tail, memory_order_acquire);
		if (h == t) {
			spin_wait(&spins);
			continue;
		}
		for (; h < t; h++) {
			void *p = r->buf[h % RING];
			if (do_free)
				free(p);
			else
				sink = p;
		}
		atomic_store_explicit(&r->head, h, memory_order_release);
	}
	return NULL;
}

static double bench_cross(long n, int do_free) {
	static char prealloc[4 * RING][OBJ];
	struct ring *r = aligned_alloc(64, sizeof *r);
	memset(r, 0, sizeof *r);
	r->n = (uint64_t)n;
	r->do_free = do_free;
	pthread_t th;
	double t0 = now_ns();
	pthread_create(&th, NULL, cross_consumer, r);
	uint64_t head = 0;
	int spins = 0;
	for (uint64_t t = 0; t < (uint64_t)n; t++) {
		void *p = do_free ? malloc(OBJ) : prealloc[t % (4 * RING)];
		((volatile char *)p)[0] = (char)t;
		while (t - head >= RING) {
			atomic_store_explicit(&r->tail, t, memory_order_release);
			head = atomic_load_explicit(&r->head, memory_order_acquire);
			if (t - head >= RING)
				spin_wait(&spins);
		}
		r->buf[t % RING] = p;
		if ((t + 1) % PUBLISH == 0)
			atomic_store_explicit(&r->tail, t + 1, memory_order_release);
	}
	atomic_store_explicit(&r->tail, (uint64_t)n, memory_order_release);
	pthread_join(th, NULL);
	double t = now_ns() - t0;
	free(r);
	return t / (double)n;
}

// ---- driver ----

enum { PAIR, PARALLEL, BULK64, CROSS, HANDOFF };

static double run_one(int which, long n, int threads) {
	switch (which) {
	case PAIR:
		return bench_pair(n);
	case PARALLEL:
		return bench_parallel(n, threads);
	case BULK64:
		return bench_bulk(n);
	case CROSS:
		return bench_cross(n, 1);
	default:
		return bench_cross(n, 0);
	}
}

static const char *names[] = {"pair64", "pair64-parallel", "bulk64", "cross64", "handoff"};

static void report(const char *name, int which, long n, int threads, int reps) {
	double res[reps];
	run_one(which, n / 10 + 1, threads); // warm-up
	for (int i = 0; i < reps; i++)
		res[i] = run_one(which, n, threads);
	qsort(res, reps, sizeof res[0], cmp_double);
	printf("c/%s %s ns/op=%.2f min=%.2f max=%.2f reps=%d\n", ALLOC_NAME, name,
	       res[reps / 2], res[0], res[reps - 1], reps);
	fflush(stdout);
}

int main(int argc, char **argv) {
	long n = 20000000;
	int threads = (int)sysconf(_SC_NPROCESSORS_ONLN);
	int reps = 5;
	const char *only = NULL;
	int opt;
	while ((opt = getopt(argc, argv, "n:t:r:b:")) != -1) {
		switch (opt) {
		case 'n':
			n = atol(optarg);
			break;
		case 't':
			threads = atoi(optarg);
			break;
		case 'r':
			reps = atoi(optarg);
			break;
		case 'b':
			only = optarg;
			break;
		default:
			fprintf(stderr, "usage: %s [-n pairs] [-t threads] [-r reps] [-b bench]\n", argv[0]);
			return 1;
		}
	}
	if (n < 1 || threads < 1 || reps < 1) {
		fprintf(stderr, "malloc_bench: bad arguments\n");
		return 1;
	}
	verify_allocator();
	char name[64];
	if (only != NULL) {
		for (int w = PAIR; w <= HANDOFF; w++) {
			if (strcmp(only, names[w]) != 0)
				continue;
			if (w == PARALLEL)
				snprintf(name, sizeof name, "%s threads=%d", names[w], threads);
			else
				snprintf(name, sizeof name, "%s", names[w]);
			report(name, w, n, threads, reps);
			return 0;
		}
		fprintf(stderr, "malloc_bench: unknown benchmark %s\n", only);
		return 1;
	}
	// Run each benchmark in a fresh child process: allocator state left
	// behind by one benchmark (e.g. glibc bins after the threaded ones)
	// otherwise changes the next one's result.
	fflush(stdout);
	for (int w = PAIR; w <= HANDOFF; w++) {
		long wn = (w == CROSS || w == HANDOFF) ? n / 4 : n;
		if (w == PARALLEL)
			snprintf(name, sizeof name, "%s threads=%d", names[w], threads);
		else
			snprintf(name, sizeof name, "%s", names[w]);
		pid_t pid = fork();
		if (pid < 0) {
			perror("fork");
			return 1;
		}
		if (pid == 0) {
			report(name, w, wn > 0 ? wn : 1, threads, reps);
			_exit(0);
		}
		int status;
		if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
			fprintf(stderr, "malloc_bench: %s failed\n", name);
			return 1;
		}
	}
	return 0;
}
